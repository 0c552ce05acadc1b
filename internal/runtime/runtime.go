// Package runtime defines the contract between the node agent and the things
// that actually run containers on this machine: the process driver (each
// container a supervised local process) and, later, the Docker driver. Both
// pass the same harness, runtime/drivertest.
//
// Lifecycle of one container, as every driver reports it:
//
//	CreateSandbox ──► StartContainer ──► Running ──(exits, is stopped, OOM)──► Exited
//	                        ▲                                                   │
//	                        └───────────── StartContainer again (a restart) ────┘
//	Recover after a Slipway restart: Running containers are adopted, not restarted.
//	RemoveSandbox: kills what is left and releases the pod's address, files, cgroups.
//
// Restart decisions, probes, back-off and termination ordering belong to the
// caller; a driver only does what it is told and reports what it sees.
package runtime

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Errors drivers return wrapped (test with errors.Is).
var (
	// ErrNotFound: no such sandbox, container or log.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a config breaks a rule; the message names the field and value.
	ErrInvalid = errors.New("invalid")
	// ErrConflict: the request does not fit the container's state (starting a
	// running container, exec in a stopped one, acting before Recover).
	ErrConflict = errors.New("conflict")
	// ErrClosed: the driver was closed.
	ErrClosed = errors.New("driver closed")
)

// Driver runs the containers of this machine's pods. Methods are safe for
// concurrent use. Identifiers are the pod's UID and the container's name.
type Driver interface {
	// Name is the runtime's name as users select it ("process", "docker").
	Name() string

	// CreateSandbox prepares what a pod's containers share: its IP address
	// and, depending on the driver, directories, cgroups or a network
	// namespace. It is idempotent per pod UID: a second call returns the
	// first call's sandbox.
	CreateSandbox(ctx context.Context, pod PodConfig) (Sandbox, error)
	// RemoveSandbox kills whatever still runs in the pod (callers stop
	// containers gracefully first; the runs it kills are reported on Exits
	// like any other) and releases its address, logs, files and cgroups.
	// Removing an unknown pod is not an error.
	RemoveSandbox(ctx context.Context, podUID string) error

	// StartContainer starts (or restarts, once exited) one container and
	// returns once its process exists. The previous run's log becomes the
	// "previous" log.
	StartContainer(ctx context.Context, podUID string, c ContainerConfig) (ContainerStatus, error)
	// StopContainer sends SIGTERM to the container, waits up to grace, then
	// sends SIGKILL, and returns when the container is gone. Stopping an
	// exited container returns nil at once.
	StopContainer(ctx context.Context, podUID, name string, grace time.Duration) error
	// ContainerStatus reports the container's current or last run.
	ContainerStatus(ctx context.Context, podUID, name string) (ContainerStatus, error)
	// Exits delivers one ExitEvent per run that ended, in the order seen,
	// without dropping any while the driver is open. It is closed by Close.
	Exits() <-chan ExitEvent

	// Exec runs cmd in a running container's environment (its env, working
	// directory and resource limits), for exec probes. It returns when cmd
	// ends or ctx does; a command that ran and failed is not an error, its
	// ExitCode says so.
	Exec(ctx context.Context, podUID, name string, cmd []string) (ExecResult, error)
	// ExecStream runs a command as Exec does, its standard streams wired
	// to the caller's (`slipway exec`, `cp`): see ExecStreams. It returns
	// the command's exit code once the command ended and its output was
	// delivered, without waiting for Stdin to end (the caller closes what
	// Stdin reads from); a command that ran and failed is not an error.
	// The command's leftovers (its process group, or the engine's exec)
	// are killed when it ends or ctx does.
	ExecStream(ctx context.Context, podUID, name string, s ExecStreams) (exitCode int, err error)
	// Logs returns the container's output (stdout and stderr interleaved as
	// written). With Follow, the reader keeps delivering new output until
	// ctx ends, the reader is closed, or the run ends and its output is read.
	// Logs are size-capped with rotation; a log over its cap is rotated by
	// the time Logs reads it, so readers never see more than the cap allows.
	Logs(ctx context.Context, podUID, name string, opts LogOptions) (io.ReadCloser, error)

	// Recover lists the sandboxes and containers a previous Slipway left and
	// adopts the containers still running: they keep running and their exits
	// are reported on Exits from now on. Call it once, after the driver is
	// created and before starting anything; calling it again returns the
	// current view without adopting twice.
	Recover(ctx context.Context) ([]RecoveredSandbox, error)

	// Capabilities says what this driver can enforce on this machine.
	Capabilities() Capabilities

	// Close stops watching; it never stops containers, which keep running
	// for the next Slipway to Recover.
	Close() error
}

// PodConfig identifies a pod to its sandbox. UID must be unique for the life
// of the pod; it names directories, so it is restricted to [A-Za-z0-9._-].
type PodConfig struct {
	UID      string
	Name     string
	Project  string
	App      string
	Revision string
	Labels   map[string]string
	// Ports are what the pod's containers declare. A driver whose pods live
	// in their own network namespace publishes them on the pod's address
	// (Docker: on the infra container); the process driver needs nothing.
	Ports []Port
	// Volumes are what the pod's containers may mount (volume.go); only a
	// VolumeDriver accepts them.
	Volumes []Volume
}

// Port is one port a pod's container listens on.
type Port struct {
	Number   int32
	Protocol string // "TCP" or "UDP"
}

// Sandbox is what a pod's containers share.
type Sandbox struct {
	PodUID string
	// IP is the pod's address: apps bind it, probes and proxies reach it.
	IP netip.Addr
}

// Limits are the resources a container may use; zero means unlimited.
type Limits struct {
	MemoryBytes int64
	// CPUMillis is in thousandths of a CPU (Kubernetes' "500m" is 500).
	CPUMillis int64
}

// ContainerConfig is one container as the driver runs it. The caller has
// resolved everything (the env contract, secrets, the service variables):
// drivers add nothing to Env beyond what their medium forces on them, and
// never Slipway's own environment.
type ContainerConfig struct {
	Name string
	// Image is what the Docker driver runs; the process driver ignores it.
	Image string
	// Command and Args form argv (Kubernetes' command/args; the process
	// driver has no image entrypoint, so Command is required there).
	Command []string
	Args    []string
	// Env is "KEY=value" entries, passed as given.
	Env []string
	// WorkingDir defaults to the image's (Docker) or "/" (process).
	WorkingDir string
	// Limits that the machine cannot enforce are not an error: the
	// container runs, and Capabilities says why they are not enforced.
	Limits Limits
	// Mounts name volumes of the pod (left out of the hash when empty, so
	// that a container started before volumes existed keeps its hash).
	Mounts []Mount `json:",omitempty"`
}

// Hash identifies a config, so that a caller can tell whether a recovered
// container still runs what it wants now.
func (c ContainerConfig) Hash() string {
	b, _ := json.Marshal(c) // cannot fail: only strings and integers
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// State is a container's state as a driver sees it.
type State string

const (
	StateRunning State = "Running"
	StateExited  State = "Exited"
	// StateUnknown: the driver holds a record it has not verified yet
	// (before Recover) or cannot inspect.
	StateUnknown State = "Unknown"
)

// Reasons a run ended, as Kubernetes words them.
const (
	ReasonCompleted = "Completed" // exit code 0
	ReasonError     = "Error"     // non-zero exit code or killed by a signal
	ReasonOOMKilled = "OOMKilled" // killed by the kernel for exceeding its memory limit
	// ReasonUnknown: the run ended while its exit status could not be
	// observed (a process adopted after a restart, or one that exited while
	// Slipway was down). ExitCode is then -1.
	ReasonUnknown = "Unknown"
)

// ContainerStatus is one run of a container.
type ContainerStatus struct {
	Name  string
	State State
	// PID is the host process id of the container's main process.
	PID        int
	StartedAt  time.Time
	FinishedAt time.Time // zero while running, and when not observed
	// ExitCode follows the shell's convention: 128+n when killed by signal n,
	// -1 when unknown.
	ExitCode int
	// Signal is the number of the signal that killed the process, or 0.
	Signal    int
	OOMKilled bool
	Reason    string // empty while running; one of the Reason* constants
	// Message explains an unusual status in words.
	Message    string
	ConfigHash string
}

// ExitEvent reports the end of one run.
type ExitEvent struct {
	PodUID string
	Name   string
	Status ContainerStatus
}

// MaxExecOutput caps ExecResult.Output: probes need an excerpt, not a dump.
const MaxExecOutput = 64 << 10

// ExecOutput collects an exec's stdout and stderr for ExecResult: the
// first MaxExecOutput bytes, and whether more came. Writes never fail, so
// that a command writing more is never blocked (a blocked writer would
// hang its probe). Drivers share it.
type ExecOutput struct {
	mu        sync.Mutex
	b         []byte
	truncated bool
}

func (o *ExecOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	room := MaxExecOutput - len(o.b)
	if len(p) > room {
		o.b = append(o.b, p[:max(room, 0)]...)
		o.truncated = true
	} else {
		o.b = append(o.b, p...)
	}
	return len(p), nil
}

// Result is what was kept, and whether anything was cut.
func (o *ExecOutput) Result() (output []byte, truncated bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b, o.truncated
}

// ExecResult is the outcome of an Exec that ran.
type ExecResult struct {
	ExitCode int
	// Output is stdout and stderr combined, cut at MaxExecOutput bytes.
	Output    []byte
	Truncated bool
}

// ExecStreams is a command for ExecStream and where its streams go.
type ExecStreams struct {
	Command []string
	// Stdin is copied to the command's standard input, which is closed
	// when Stdin ends; nil gives the command an empty input.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (nil discards it).
	// With TTY the terminal carries both, to Stdout.
	Stdout, Stderr io.Writer
	// TTY runs the command on a terminal of its own (its controlling
	// terminal, in raw mode on the caller's side), Size its first size
	// and Resize the later ones.
	TTY    bool
	Size   TermSize
	Resize <-chan TermSize
}

// TermSize is a terminal's size in characters.
type TermSize struct {
	Cols, Rows uint16
}

// CheckCommand checks what every driver relies on in an exec's command.
func CheckCommand(container string, cmd []string) error {
	if len(cmd) == 0 {
		return fmt.Errorf("%w: exec in container %q: command: must not be empty", ErrInvalid, container)
	}
	for i, s := range cmd {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: exec in container %q: command[%d]: must not contain a NUL byte", ErrInvalid, container, i)
		}
	}
	return nil
}

// CollectExec is Exec over a driver's ExecStream: the command's stdout
// and stderr kept in one ExecOutput, its input empty. Drivers share it.
func CollectExec(ctx context.Context, d Driver, podUID, name string, cmd []string) (ExecResult, error) {
	out := &ExecOutput{}
	code, err := d.ExecStream(ctx, podUID, name, ExecStreams{Command: cmd, Stdout: out, Stderr: out})
	res := ExecResult{ExitCode: code}
	res.Output, res.Truncated = out.Result()
	return res, err
}

// LogOptions selects which log and how much of it.
type LogOptions struct {
	// Follow keeps the reader open for new output of the current run.
	Follow bool
	// Previous reads the log of the run before the current one.
	Previous bool
	// Tail limits the output to the last Tail lines; 0 or less means all.
	Tail int
}

// RecoveredSandbox is a pod found by Recover.
type RecoveredSandbox struct {
	Pod        PodConfig
	Sandbox    Sandbox
	Containers []RecoveredContainer
}

// RecoveredContainer is a container found by Recover: Running if adopted,
// Exited (often with ReasonUnknown) if it ended while no Slipway watched.
type RecoveredContainer struct {
	Config ContainerConfig
	Status ContainerStatus
}

// Capabilities is what a driver can enforce here.
type Capabilities struct {
	MemoryLimit Capability
	CPULimit    Capability
	// ExitCodeAfterRecover: whether the exit code of a container adopted by
	// Recover is known when it exits (false: ReasonUnknown, ExitCode -1).
	ExitCodeAfterRecover bool
	// Mounts: whether containers can mount volumes at their mountPath
	// (the process driver needs a private mount namespace, so root).
	Mounts Capability
	// SizeLimit: whether a claim's request and an emptyDir's sizeLimit are
	// enforced by the filesystem (else they are measured and reported).
	SizeLimit Capability
}

// Capability is one enforceable feature and, in words, how it is enforced
// or why it cannot be (shown by `describe`).
type Capability struct {
	Supported bool
	Reason    string
}

// ValidatePod checks what every driver relies on in a PodConfig.
func ValidatePod(p PodConfig) error {
	if err := validateID("pod.uid", p.UID, 128); err != nil {
		return err
	}
	for i, port := range p.Ports {
		if port.Number < 1 || port.Number > 65535 {
			return fmt.Errorf("%w: pod %q: ports[%d]: %d: must be between 1 and 65535", ErrInvalid, p.UID, i, port.Number)
		}
		if port.Protocol != "TCP" && port.Protocol != "UDP" {
			return fmt.Errorf("%w: pod %q: ports[%d]: protocol %q: must be TCP or UDP", ErrInvalid, p.UID, i, port.Protocol)
		}
	}
	return nil
}

// ValidateContainer checks what every driver relies on in a ContainerConfig.
func ValidateContainer(c ContainerConfig) error {
	if err := validateID("container.name", c.Name, 63); err != nil {
		return err
	}
	for i, s := range c.Command {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: container %q: command[%d]: must not contain a NUL byte", ErrInvalid, c.Name, i)
		}
	}
	for i, s := range c.Args {
		if strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: container %q: args[%d]: must not contain a NUL byte", ErrInvalid, c.Name, i)
		}
	}
	for i, e := range c.Env {
		k, _, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: container %q: env[%d]: %q: must be KEY=value with a non-empty KEY", ErrInvalid, c.Name, i, e)
		}
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("%w: container %q: env[%d] (%s): must not contain a NUL byte", ErrInvalid, c.Name, i, k)
		}
	}
	if strings.IndexByte(c.WorkingDir, 0) >= 0 {
		return fmt.Errorf("%w: container %q: workingDir: must not contain a NUL byte", ErrInvalid, c.Name)
	}
	if c.Limits.MemoryBytes < 0 {
		return fmt.Errorf("%w: container %q: limits.memory: %d: must not be negative", ErrInvalid, c.Name, c.Limits.MemoryBytes)
	}
	if c.Limits.CPUMillis < 0 {
		return fmt.Errorf("%w: container %q: limits.cpu: %dm: must not be negative", ErrInvalid, c.Name, c.Limits.CPUMillis)
	}
	return nil
}

// validateID accepts names that are safe as a single path element and a
// cgroup name: drivers use them as both.
func validateID(field, s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: %s: must not be empty", ErrInvalid, field)
	}
	if len(s) > max {
		return fmt.Errorf("%w: %s: %q: must be at most %d characters", ErrInvalid, field, s[:max]+"...", max)
	}
	if s[0] == '.' || s[0] == '-' {
		return fmt.Errorf("%w: %s: %q: must start with a letter or digit", ErrInvalid, field, s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%w: %s: %q: may contain only letters, digits, '-', '_' and '.'", ErrInvalid, field, s)
		}
	}
	return nil
}

package process

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// On-disk layout under Options.Dir:
//
//	lock                                    flock: one driver per directory
//	pods/<uid>/sandbox.json                 the pod and its address (the address's only record)
//	pods/<uid>/containers/<name>/state.json the last run: config, pid, start ticks, exit
//	pods/<uid>/containers/<name>/current.log[.N], previous.log[.N]
//	pods/<uid>/volumes/<name>/              emptyDirs and files volumes (volumes.go)
//
// Every state file is JSON with a schema version, written atomically
// (temporary file, fsync, rename, fsync of the directory) with mode 0600:
// container state holds the container's environment, which may hold secrets.
const stateVersion = 1

type sandboxFile struct {
	Version   int               `json:"version"`
	UID       string            `json:"uid"`
	Name      string            `json:"name,omitempty"`
	Project   string            `json:"project,omitempty"`
	App       string            `json:"app,omitempty"`
	Revision  string            `json:"revision,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Ports     []portFile        `json:"ports,omitempty"`
	IP        netip.Addr        `json:"ip"`
	CreatedAt time.Time         `json:"createdAt"`
	// Volumes: what the pod mounts; never the contents of files (secrets).
	Volumes []runtime.Volume `json:"volumes,omitempty"`
}

type portFile struct {
	Number   int32  `json:"number"`
	Protocol string `json:"protocol"`
}

func portsToFile(ps []runtime.Port) []portFile {
	var out []portFile
	for _, p := range ps {
		out = append(out, portFile(p))
	}
	return out
}

func portsFromFile(ps []portFile) []runtime.Port {
	var out []runtime.Port
	for _, p := range ps {
		out = append(out, runtime.Port(p))
	}
	return out
}

// Container phases as persisted.
const (
	phaseRunning = "running"
	phaseExited  = "exited"
)

type containerFile struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
	Phase   string `json:"phase"`

	Image       string   `json:"image,omitempty"`
	Command     []string `json:"command,omitempty"`
	Args        []string `json:"args,omitempty"`
	Env         []string `json:"env,omitempty"`
	WorkingDir  string   `json:"workingDir,omitempty"`
	MemoryBytes int64    `json:"memoryBytes,omitempty"`
	CPUMillis   int64    `json:"cpuMillis,omitempty"`
	ConfigHash  string   `json:"configHash"`

	Mounts []runtime.Mount `json:"mounts,omitempty"`

	// Identity of the process: all of pid, start ticks and boot id must
	// match before a restarted driver touches it.
	PID        int    `json:"pid"`
	PGID       int    `json:"pgid"`
	StartTicks uint64 `json:"startTicks"`
	BootID     string `json:"bootID"`
	OOMBase    uint64 `json:"oomBase,omitempty"`

	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	ExitCode   int       `json:"exitCode"`
	Signal     int       `json:"signal,omitempty"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	Reason     string    `json:"reason,omitempty"`
	Message    string    `json:"message,omitempty"`
}

func (f *containerFile) config() runtime.ContainerConfig {
	return runtime.ContainerConfig{
		Name: f.Name, Image: f.Image, Command: f.Command, Args: f.Args, Env: f.Env,
		WorkingDir: f.WorkingDir, Mounts: f.Mounts,
		Limits: runtime.Limits{MemoryBytes: f.MemoryBytes, CPUMillis: f.CPUMillis},
	}
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, werr := f.Write(append(b, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	serr := d.Sync()
	return errors.Join(serr, d.Close())
}

// readJSON reads a state file, refusing versions this code does not know:
// misreading a newer schema could make a driver signal the wrong process.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var head struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if head.Version != stateVersion {
		return fmt.Errorf("reading %s: schema version %d, this Slipway reads version %d", path, head.Version, stateVersion)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	return nil
}

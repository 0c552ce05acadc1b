// Package process is the runtime driver that runs each container as a
// supervised local process, for machines with nothing installed:
//
//   - a pod is an address from a loopback range (127.20.0.0/16 by default;
//     Linux routes all of 127/8 to lo), so containers of one pod bind
//     different ports on one IP and pods can reuse a port;
//   - a container is a process in its own process group, with exactly the
//     env the caller gives, its output appended to a log file it holds
//     itself, and its own cgroup when the machine allows (limits, OOM
//     detection, killing what escaped the group);
//   - a restarted Slipway adopts the processes a previous one left, after
//     checking pid, start time and boot id: a reused pid is never touched.
//
// Slipway is not the parent of an adopted process, so its exit code cannot
// be observed: it is reported with runtime.ReasonUnknown and ExitCode -1
// (or as OOMKilled, or as killed when Slipway sent the SIGKILL).
package process

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/runtime"
)

// Options configure a Driver. Zero values take the documented defaults.
type Options struct {
	// Dir holds the driver's state and logs: <data-dir>/runtime. Required.
	Dir string
	// IPRange is where pod addresses come from (default 127.20.0.0/16). It
	// must lie inside 127.0.0.0/8 and not contain 127.0.0.1.
	IPRange netip.Prefix
	Logger  *slog.Logger
	// Clock stamps StartedAt and FinishedAt. Grace periods are waited in
	// real time whatever the clock, since the processes live in real time.
	Clock clock.Clock
	// LogMaxBytes is the size at which a container's log is rotated
	// (default 10 MiB). LogKeep is how many rotated files are kept per run
	// (default 1; negative keeps none). LogCheckInterval is how often sizes
	// are checked (default 1 s).
	LogMaxBytes      int64
	LogKeep          int
	LogCheckInterval time.Duration
	// ArtifactDir holds build artifacts (<data-dir>/artifacts): a
	// container whose image is <project>/<app>:<n> runs from
	// ArtifactDir/<project>/<app>/<n> (see artifact.go). Empty: images are
	// ignored.
	ArtifactDir string
	// CgroupName names Slipway's cgroup under its own (default "slipway").
	CgroupName string
	// NoCgroups keeps the driver away from cgroups: limits are then not
	// enforced, and Capabilities says so.
	NoCgroups bool
	// ClaimsDir holds the claims' data, <ClaimsDir>/<project>/<claim>
	// (default <Dir>/claims; Slipway uses <data-dir>/volumes).
	ClaimsDir string
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Dir: must be set (the driver's state directory, <data-dir>/runtime)", runtime.ErrInvalid)
	}
	if !o.IPRange.IsValid() {
		o.IPRange = DefaultIPRange
	}
	if err := validateIPRange(o.IPRange); err != nil {
		return fmt.Errorf("%w: %v", runtime.ErrInvalid, err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	switch {
	case o.LogMaxBytes == 0:
		o.LogMaxBytes = 10 << 20
	case o.LogMaxBytes < 1024:
		return fmt.Errorf("%w: LogMaxBytes: %d: must be at least 1024", runtime.ErrInvalid, o.LogMaxBytes)
	}
	switch {
	case o.LogKeep == 0:
		o.LogKeep = 1
	case o.LogKeep < 0:
		o.LogKeep = 0
	}
	if o.LogCheckInterval <= 0 {
		o.LogCheckInterval = time.Second
	}
	if o.CgroupName == "" {
		o.CgroupName = "slipway"
	}
	if o.ClaimsDir == "" {
		o.ClaimsDir = filepath.Join(o.Dir, "claims")
	}
	o.ClaimsDir = filepath.Clean(o.ClaimsDir)
	o.Dir = filepath.Clean(o.Dir)
	if err := runtime.ValidatePod(runtime.PodConfig{UID: o.CgroupName}); err != nil {
		return fmt.Errorf("%w: CgroupName: %q: may contain only letters, digits, '-', '_' and '.'", runtime.ErrInvalid, o.CgroupName)
	}
	return nil
}

// Driver implements runtime.Driver with local processes.
type Driver struct {
	opts   Options
	log    *slog.Logger
	clock  clock.Clock
	bootID string
	cg     *cgroups
	lock   *os.File
	exits  *runtime.ExitQueue
	stop   chan struct{}  // closed by Close
	bg     sync.WaitGroup // rotation loop and watchers of adopted processes
	logMu  sync.Mutex     // serialises log rotation against restarts and readers
	// recoverMu makes concurrent Recover calls adopt each process once.
	recoverMu sync.Mutex

	mu        sync.Mutex
	closed    bool
	finishing sync.WaitGroup // exits being recorded; Close waits for them
	pods      map[string]*pod
	ipam      *ipam
}

type pod struct {
	cfg        runtime.PodConfig
	ip         netip.Addr
	dir        string
	createdAt  time.Time
	ready      chan struct{} // closed once sandbox.json is durable (or creation failed)
	failed     error
	removing   bool
	containers map[string]*container
}

// In-memory phases of a container run, beyond the persisted two.
const (
	phaseStarting   = "starting"
	phaseUnverified = "unverified" // loaded as running; Recover has not checked it yet
)

// container is one run of a container; a restart replaces it.
type container struct {
	podUID, name, dir string
	cfg               runtime.ContainerConfig
	hash              string

	// Guarded by Driver.mu.
	phase   string
	status  runtime.ContainerStatus
	pid     int
	pgid    int
	ticks   uint64
	bootID  string
	oomBase uint64
	adopted bool
	pidfd   *os.File    // adopted: the watch handle, closed by Close
	proc    *os.Process // ours: signalled through Go's pidfd

	done    chan struct{} // closed when the run has ended and is recorded
	writeMu sync.Mutex    // orders writes of state.json

	// sigMu orders signals against reaping: after the leader is reaped its
	// pid (the group id) may be reused, so no group signal may follow.
	sigMu    sync.Mutex
	reaped   bool
	killSent bool
}

var _ runtime.Driver = (*Driver)(nil)

// New opens (or creates) the driver's directory, takes its lock and loads
// what a previous driver recorded. Call Recover next.
func New(o Options) (*Driver, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.Dir, "pods"), 0o700); err != nil {
		return nil, err
	}
	lock, err := os.OpenFile(filepath.Join(o.Dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("runtime directory %s is in use by another driver (is another Slipway running on this data directory?): %w", o.Dir, err)
	}
	bootID, err := readBootID()
	if err != nil {
		lock.Close()
		return nil, err
	}
	cg := offCgroups("cgroups disabled by configuration")
	if !o.NoCgroups {
		cg = detectCgroups(o.CgroupName)
	}
	d := &Driver{
		opts: o, log: o.Logger, clock: o.Clock, bootID: bootID, cg: cg, lock: lock,
		stop: make(chan struct{}), pods: map[string]*pod{}, ipam: newIPAM(o.IPRange),
	}
	if err := d.load(); err != nil {
		lock.Close()
		return nil, err
	}
	d.exits = runtime.NewExitQueue()
	d.bg.Add(1)
	go d.rotateLoop()
	d.log.Debug("process runtime ready", "dir", o.Dir, "ipRange", o.IPRange,
		"memoryLimits", cg.memCap.Reason, "cpuLimits", cg.cpuCap.Reason)
	return d, nil
}

func (d *Driver) load() error {
	podsDir := filepath.Join(d.opts.Dir, "pods")
	ents, err := os.ReadDir(podsDir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		uid, dir := e.Name(), filepath.Join(podsDir, e.Name())
		var sb sandboxFile
		err := readJSON(filepath.Join(dir, "sandbox.json"), &sb)
		if errors.Is(err, fs.ErrNotExist) {
			// RemoveSandbox deletes the record first: finish its work.
			if runtime.ValidatePod(runtime.PodConfig{UID: uid}) == nil {
				_ = d.cg.removePod(uid)
			}
			if err := unmountVolumes(dir); err != nil {
				return err
			}
			if err := os.RemoveAll(dir); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if sb.UID != uid {
			return fmt.Errorf("%s names pod %q, but lies in the directory of pod %q", filepath.Join(dir, "sandbox.json"), sb.UID, uid)
		}
		if err := d.ipam.reserve(sb.IP, uid); err != nil {
			return err
		}
		p := &pod{
			cfg: runtime.PodConfig{UID: uid, Name: sb.Name, Project: sb.Project, App: sb.App, Revision: sb.Revision,
				Labels: sb.Labels, Ports: portsFromFile(sb.Ports), Volumes: sb.Volumes},
			ip: sb.IP, dir: dir, createdAt: sb.CreatedAt, ready: make(chan struct{}),
			containers: map[string]*container{},
		}
		close(p.ready)
		cents, _ := os.ReadDir(filepath.Join(dir, "containers"))
		for _, ce := range cents {
			cdir := filepath.Join(dir, "containers", ce.Name())
			var cf containerFile
			err := readJSON(filepath.Join(cdir, "state.json"), &cf)
			if errors.Is(err, fs.ErrNotExist) {
				continue // a start that failed before anything ran
			}
			if err != nil {
				return err
			}
			p.containers[cf.Name] = loadContainer(uid, cdir, &cf)
		}
		d.pods[uid] = p
	}
	return nil
}

func loadContainer(uid, dir string, cf *containerFile) *container {
	c := &container{
		podUID: uid, name: cf.Name, dir: dir, cfg: cf.config(), hash: cf.ConfigHash,
		pid: cf.PID, pgid: cf.PGID, ticks: cf.StartTicks, bootID: cf.BootID, oomBase: cf.OOMBase,
		done: make(chan struct{}),
		status: runtime.ContainerStatus{
			Name: cf.Name, State: runtime.StateExited, PID: cf.PID, StartedAt: cf.StartedAt,
			FinishedAt: cf.FinishedAt, ExitCode: cf.ExitCode, Signal: cf.Signal, OOMKilled: cf.OOMKilled,
			Reason: cf.Reason, Message: cf.Message, ConfigHash: cf.ConfigHash,
		},
	}
	if cf.Phase == phaseRunning {
		c.phase = phaseUnverified
		c.status.State = runtime.StateRunning
	} else {
		c.phase = phaseExited
		close(c.done)
	}
	return c
}

func (c *container) file() *containerFile {
	phase := phaseRunning
	if c.phase == phaseExited {
		phase = phaseExited
	}
	s := c.status
	return &containerFile{
		Version: stateVersion, Name: c.name, Phase: phase,
		Image: c.cfg.Image, Command: c.cfg.Command, Args: c.cfg.Args, Env: c.cfg.Env, WorkingDir: c.cfg.WorkingDir, Mounts: c.cfg.Mounts,
		MemoryBytes: c.cfg.Limits.MemoryBytes, CPUMillis: c.cfg.Limits.CPUMillis, ConfigHash: c.hash,
		PID: c.pid, PGID: c.pgid, StartTicks: c.ticks, BootID: c.bootID, OOMBase: c.oomBase,
		StartedAt: s.StartedAt, FinishedAt: s.FinishedAt, ExitCode: s.ExitCode, Signal: s.Signal,
		OOMKilled: s.OOMKilled, Reason: s.Reason, Message: s.Message,
	}
}

// snapshot is the status callers see. Guarded by Driver.mu.
func (c *container) snapshot() runtime.ContainerStatus {
	s := c.status
	switch c.phase {
	case phaseUnverified:
		s.State, s.Message = runtime.StateUnknown, "recorded as running by a previous Slipway; not verified until Recover"
	case phaseStarting:
		s.State, s.Message = runtime.StateUnknown, "starting"
	}
	return s
}

func (d *Driver) persist(c *container) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	d.mu.Lock()
	f := c.file()
	d.mu.Unlock()
	return writeJSONAtomic(filepath.Join(c.dir, "state.json"), f)
}

// Name implements runtime.Driver.
func (d *Driver) Name() string { return "process" }

// Capabilities implements runtime.Driver.
func (d *Driver) Capabilities() runtime.Capabilities {
	ok, why := mountCapability()
	return runtime.Capabilities{MemoryLimit: d.cg.memCap, CPULimit: d.cg.cpuCap, ExitCodeAfterRecover: false,
		Mounts:    runtime.Capability{Supported: ok, Reason: why},
		SizeLimit: runtime.Capability{Reason: "claims are directories on the data directory's filesystem: their size is measured, not enforced (an emptyDir of medium Memory is a tmpfs of its sizeLimit)"}}
}

// Exits implements runtime.Driver.
func (d *Driver) Exits() <-chan runtime.ExitEvent { return d.exits.Out() }

// lookup finds a container's current run. Guarded by d.mu.
func (d *Driver) lookup(uid, name string) (*container, error) {
	p := d.pods[uid]
	if p == nil {
		return nil, fmt.Errorf("pod %q: %w", uid, runtime.ErrNotFound)
	}
	c := p.containers[name]
	if c == nil {
		return nil, fmt.Errorf("container %q in pod %q: %w", name, uid, runtime.ErrNotFound)
	}
	return c, nil
}

// CreateSandbox implements runtime.Driver.
func (d *Driver) CreateSandbox(ctx context.Context, cfg runtime.PodConfig) (runtime.Sandbox, error) {
	if err := runtime.ValidatePod(cfg); err != nil {
		return runtime.Sandbox{}, err
	}
	if err := runtime.ValidateVolumes(cfg.Volumes, nil); err != nil {
		return runtime.Sandbox{}, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.Sandbox{}, runtime.ErrClosed
	}
	if p := d.pods[cfg.UID]; p != nil {
		removing := p.removing
		d.mu.Unlock()
		if removing {
			return runtime.Sandbox{}, fmt.Errorf("pod %q is being removed: %w", cfg.UID, runtime.ErrConflict)
		}
		select {
		case <-p.ready:
		case <-ctx.Done():
			return runtime.Sandbox{}, ctx.Err()
		}
		if p.failed != nil {
			return runtime.Sandbox{}, p.failed
		}
		return runtime.Sandbox{PodUID: cfg.UID, IP: p.ip}, nil
	}
	ip, err := d.ipam.allocate(cfg.UID, cfg.Ports)
	if err != nil {
		d.mu.Unlock()
		return runtime.Sandbox{}, err
	}
	p := &pod{
		cfg: cfg, ip: ip, dir: filepath.Join(d.opts.Dir, "pods", cfg.UID), createdAt: d.clock.Now(),
		ready: make(chan struct{}), containers: map[string]*container{},
	}
	d.pods[cfg.UID] = p
	d.mu.Unlock()

	err = os.MkdirAll(filepath.Join(p.dir, "containers"), 0o700)
	if err == nil {
		err = d.setupVolumes(p)
	}
	if err == nil {
		err = writeJSONAtomic(filepath.Join(p.dir, "sandbox.json"), &sandboxFile{
			Version: stateVersion, UID: cfg.UID, Name: cfg.Name, Project: cfg.Project, App: cfg.App,
			Revision: cfg.Revision, Labels: cfg.Labels, Ports: portsToFile(cfg.Ports), IP: ip, CreatedAt: p.createdAt,
			Volumes: runtime.Recorded(cfg.Volumes),
		})
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		p.failed = fmt.Errorf("creating sandbox of pod %q: %w", cfg.UID, err)
		delete(d.pods, cfg.UID)
		d.ipam.release(ip)
		_ = unmountVolumes(p.dir)
		_ = os.RemoveAll(p.dir)
	}
	close(p.ready)
	if p.failed != nil {
		return runtime.Sandbox{}, p.failed
	}
	return runtime.Sandbox{PodUID: cfg.UID, IP: ip}, nil
}

// RemoveSandbox implements runtime.Driver.
func (d *Driver) RemoveSandbox(ctx context.Context, uid string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ErrClosed
	}
	p := d.pods[uid]
	if p == nil || p.removing {
		d.mu.Unlock()
		return nil
	}
	select {
	case <-p.ready:
	default: // being created: let that finish first
		d.mu.Unlock()
		select {
		case <-p.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		return d.RemoveSandbox(ctx, uid)
	}
	var live []*container
	for _, c := range p.containers {
		switch c.phase {
		case phaseUnverified:
			d.mu.Unlock()
			return fmt.Errorf("pod %q: container %q is not verified yet; call Recover first: %w", uid, c.name, runtime.ErrConflict)
		case phaseStarting:
			d.mu.Unlock()
			return fmt.Errorf("pod %q: container %q is starting: %w", uid, c.name, runtime.ErrConflict)
		case phaseRunning:
			live = append(live, c)
		}
	}
	p.removing = true
	d.mu.Unlock()

	for _, c := range live {
		d.signal(c, unix.SIGKILL)
		var err error
		select {
		case <-c.done:
		case <-ctx.Done():
			err = ctx.Err()
		case <-d.stop:
			err = runtime.ErrClosed
		}
		if err != nil {
			d.mu.Lock()
			p.removing = false
			d.mu.Unlock()
			return err
		}
	}
	// The record goes first: once it is gone the address is free, and a
	// restart finishes an interrupted removal (see load).
	err := os.Remove(filepath.Join(p.dir, "sandbox.json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.mu.Lock()
		p.removing = false
		d.mu.Unlock()
		return err
	}
	cgErr := d.cg.removePod(uid)
	rmErr := unmountVolumes(p.dir)
	if rmErr == nil { // never remove what a mount still covers
		rmErr = os.RemoveAll(p.dir)
	}
	d.mu.Lock()
	delete(d.pods, uid)
	d.ipam.release(p.ip)
	d.mu.Unlock()
	return errors.Join(cgErr, rmErr)
}

// ContainerStatus implements runtime.Driver.
func (d *Driver) ContainerStatus(ctx context.Context, uid, name string) (runtime.ContainerStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, err := d.lookup(uid, name)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	return c.snapshot(), nil
}

// StartContainer implements runtime.Driver.
func (d *Driver) StartContainer(ctx context.Context, uid string, cfg runtime.ContainerConfig) (runtime.ContainerStatus, error) {
	if err := runtime.ValidateContainer(cfg); err != nil {
		return runtime.ContainerStatus{}, err
	}
	if len(cfg.Command) == 0 {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: container %q: command: must be set: the process runtime has no image entrypoint to fall back on", runtime.ErrInvalid, cfg.Name)
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ContainerStatus{}, runtime.ErrClosed
	}
	p := d.pods[uid]
	if p == nil {
		d.mu.Unlock()
		return runtime.ContainerStatus{}, fmt.Errorf("pod %q: %w", uid, runtime.ErrNotFound)
	}
	old := p.containers[cfg.Name]
	switch {
	case p.removing:
		d.mu.Unlock()
		return runtime.ContainerStatus{}, fmt.Errorf("pod %q is being removed: %w", uid, runtime.ErrConflict)
	case old != nil && old.phase != phaseExited:
		d.mu.Unlock()
		return runtime.ContainerStatus{}, fmt.Errorf("container %q in pod %q is %s: %w", cfg.Name, uid, old.phase, runtime.ErrConflict)
	}
	c := &container{
		podUID: uid, name: cfg.Name, dir: filepath.Join(p.dir, "containers", cfg.Name),
		cfg: cfg, hash: cfg.Hash(), phase: phaseStarting, done: make(chan struct{}),
	}
	p.containers[cfg.Name] = c
	d.mu.Unlock()

	st, err := d.start(p, c)
	if err != nil {
		d.mu.Lock()
		if old != nil {
			p.containers[cfg.Name] = old
		} else {
			delete(p.containers, cfg.Name)
		}
		d.mu.Unlock()
		return runtime.ContainerStatus{}, err
	}
	return st, nil
}

func (d *Driver) start(p *pod, c *container) (runtime.ContainerStatus, error) {
	cfg := c.cfg
	mounts, err := d.mountSpecFor(p, cfg)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	wd, prog, err := d.runFrom(cfg, cfg.Command[0]) // a build artifact stands for the image (artifact.go)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	if fi, err := os.Stat(wd); err != nil || !fi.IsDir() {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: container %q: workingDir: %q: not a directory on this machine", runtime.ErrInvalid, cfg.Name, wd)
	}
	path, err := lookPath(prog, cfg.Env, wd)
	var nip *notInPathError
	if errors.As(err, &nip) {
		return runtime.ContainerStatus{}, err // the node names the container
	}
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: container %q: command[0]: %v", runtime.ErrInvalid, cfg.Name, err)
	}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return runtime.ContainerStatus{}, err
	}
	d.logMu.Lock()
	err = rotateRun(c.dir, d.opts.LogKeep)
	d.logMu.Unlock()
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("keeping the previous log of container %q: %w", cfg.Name, err)
	}
	logf, err := os.OpenFile(filepath.Join(c.dir, currentLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	defer logf.Close() // the child holds its own descriptors
	oomBase, err := d.cg.prepare(c.podUID, cfg.Name, cfg.Limits)
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("preparing the cgroup of container %q: %w", cfg.Name, err)
	}
	env := make([]string, 0, len(cfg.Env)) // never nil: nil would mean Slipway's own environment
	env = append(env, cfg.Env...)
	argv := append(append([]string{}, cfg.Command...), cfg.Args...)
	pidfd := -1
	h, err := newHelper(mounts)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	defer h.close()
	newCmd := func() *exec.Cmd {
		pidfd = -1
		cmd := &exec.Cmd{
			Path: path, Args: argv, Env: env, Dir: wd, Stdout: logf, Stderr: logf,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true, PidFD: &pidfd},
		}
		h.wrap(cmd)
		return cmd
	}
	cmd, err := d.cg.start(c.podUID, cfg.Name, newCmd)
	if err = h.started(err); err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("starting container %q: %w", cfg.Name, err)
	}
	if msg := h.failure(); msg != "" {
		_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		_ = cmd.Wait()
		if pidfd >= 0 {
			_ = unix.Close(pidfd)
		}
		return runtime.ContainerStatus{}, fmt.Errorf("%w: starting container %q: %s", runtime.ErrInvalid, cfg.Name, msg)
	}
	started := d.clock.Now()
	pid := cmd.Process.Pid
	st, err := readStat(pid) // the child is unreaped, so this is it
	if err != nil {
		d.log.Warn("reading the start time of a container process; it cannot be adopted after a restart", "pod", c.podUID, "container", cfg.Name, "pid", pid, "err", err)
	}
	d.mu.Lock()
	c.pid, c.pgid, c.ticks, c.bootID, c.oomBase, c.proc = pid, pid, st.StartTicks, d.bootID, oomBase, cmd.Process
	c.status = runtime.ContainerStatus{Name: cfg.Name, State: runtime.StateRunning, PID: pid, StartedAt: started, ConfigHash: c.hash}
	c.phase = phaseRunning
	status := c.status
	d.mu.Unlock()
	if err := d.persist(c); err != nil {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = cmd.Wait()
		if pidfd >= 0 {
			_ = unix.Close(pidfd)
		}
		return runtime.ContainerStatus{}, fmt.Errorf("recording container %q (its process was killed, since it could not be recovered after a restart): %w", cfg.Name, err)
	}
	go d.watchChild(c, cmd, pidfdFile(pidfd, pid))
	return status, nil
}

// StopContainer implements runtime.Driver.
func (d *Driver) StopContainer(ctx context.Context, uid, name string, grace time.Duration) error {
	d.mu.Lock()
	c, err := d.lookup(uid, name)
	if err != nil {
		d.mu.Unlock()
		return err
	}
	phase := c.phase
	d.mu.Unlock()
	switch phase {
	case phaseExited:
		return nil
	case phaseUnverified:
		return fmt.Errorf("container %q in pod %q is not verified yet; call Recover first: %w", name, uid, runtime.ErrConflict)
	case phaseStarting:
		return fmt.Errorf("container %q in pod %q is starting: %w", name, uid, runtime.ErrConflict)
	}
	d.signal(c, unix.SIGTERM)
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-d.stop:
			return runtime.ErrClosed
		case <-t.C:
		}
	}
	d.signal(c, unix.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.stop: // an adopted run is no longer watched
		return runtime.ErrClosed
	}
}

// Close implements runtime.Driver.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	var watches []*os.File
	for _, p := range d.pods {
		for _, c := range p.containers {
			if c.pidfd != nil {
				watches = append(watches, c.pidfd)
			}
		}
	}
	d.mu.Unlock()
	close(d.stop)
	for _, f := range watches {
		f.Close()
	}
	d.finishing.Wait()
	d.bg.Wait()
	d.exits.Close()
	return d.lock.Close()
}

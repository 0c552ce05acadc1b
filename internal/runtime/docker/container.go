package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// StartContainer implements runtime.Driver: each run is a new Docker
// container joining the pod's namespace. The run before becomes the
// "previous" one; the one before that is removed.
func (d *Driver) StartContainer(ctx context.Context, podUID string, c runtime.ContainerConfig) (runtime.ContainerStatus, error) {
	if err := runtime.ValidateContainer(c); err != nil {
		return runtime.ContainerStatus{}, err
	}
	if c.Image == "" {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: container %q: image: must be set: the docker runtime runs images", runtime.ErrInvalid, c.Name)
	}
	p, err := d.getPod(ctx, podUID)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	p.opMu.Lock()
	defer p.opMu.Unlock()
	d.mu.Lock()
	removed, cur := p.removed, p.containers[c.Name]
	d.mu.Unlock()
	if removed {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: pod %q", runtime.ErrNotFound, podUID)
	}
	if cur != nil && !isDone(cur.done) {
		return runtime.ContainerStatus{}, fmt.Errorf("%w: container %q of pod %q is running", runtime.ErrConflict, c.Name, podUID)
	}
	// The engine would not pull on create either; asking first gives the
	// error words that say what to do.
	if _, err := d.cli.ImageInspect(ctx, c.Image); err != nil {
		if cerrdefs.IsNotFound(err) {
			return runtime.ContainerStatus{}, imageMissing{c.Image}
		}
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: inspecting image %q: %w", c.Name, c.Image, err)
	}

	run := 1
	if cur != nil {
		run = cur.run + 1
	}
	hash := c.Hash()
	labels := d.labels(podUID, roleApp, c.Name, run)
	labels[LabelConfig], labels[LabelHash] = configLabel(c), hash
	// The engine's init (tini) is PID 1 and the app its child: an app as
	// PID 1 would be immune to its own default signal actions (a Go app
	// would exit 2 on SIGTERM instead of dying of it), and nobody would
	// reap the zombies of apps that spawn processes.
	init := true
	hc := &container.HostConfig{
		Init:        &init,
		NetworkMode: container.NetworkMode("container:" + p.infraID),
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": strconv.FormatInt(d.opts.LogMaxBytes, 10),
			"max-file": strconv.Itoa(d.opts.LogKeep + 1),
		}},
	}
	if m := c.Limits.MemoryBytes; m > 0 {
		// Swap equal to the limit: no swap, so the limit is an OOM kill
		// rather than a slow-down.
		hc.Resources.Memory, hc.Resources.MemorySwap = m, m
	}
	if c.Limits.CPUMillis > 0 {
		hc.Resources.NanoCPUs = c.Limits.CPUMillis * 1_000_000
	}
	if err := d.mounts(p, c, hc); err != nil { // volumes.go
		return runtime.ContainerStatus{}, err
	}
	opts := client.ContainerCreateOptions{
		Name: d.containerName(podUID, c.Name, run),
		Config: &container.Config{
			Image: c.Image, Entrypoint: c.Command, Cmd: c.Args, Env: c.Env,
			WorkingDir: c.WorkingDir, Labels: labels,
		},
		HostConfig: hc,
	}
	created, err := d.cli.ContainerCreate(ctx, opts)
	if cerrdefs.IsConflict(err) {
		// Left by a start that failed half-way: the name holds our id and
		// a run number no record names.
		d.forceRemove(ctx, opts.Name)
		created, err = d.cli.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: creating: %w", c.Name, err)
	}
	if _, err := d.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		d.forceRemove(context.WithoutCancel(ctx), created.ID)
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: starting: %w", c.Name, err)
	}
	ins, err := d.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		// It runs, but unobserved it could not be stopped or reported:
		// better not to have started it.
		d.forceRemove(context.WithoutCancel(ctx), created.ID)
		return runtime.ContainerStatus{}, fmt.Errorf("container %q: inspecting after start: %w", c.Name, err)
	}
	st := runtime.ContainerStatus{
		Name: c.Name, State: runtime.StateRunning, PID: ins.Container.State.Pid,
		StartedAt: parseTime(ins.Container.State.StartedAt), ConfigHash: hash,
	}
	nc := &ctr{cfg: c, run: run, id: created.ID, status: st, done: make(chan struct{})}
	var older string
	if cur != nil {
		nc.prevID, older = cur.id, cur.prevID
	}
	d.mu.Lock()
	p.containers[c.Name] = nc
	closed := d.closed
	if !closed {
		d.watchers.Add(1)
	}
	d.mu.Unlock()
	if !closed {
		go d.watch(podUID, nc)
	}
	if older != "" {
		d.forceRemove(context.WithoutCancel(ctx), older)
	}
	return st, nil
}

// configLabel is the config as its label keeps it: env names only, since
// values may be secrets and labels are shown by every `docker ps`. Recover
// takes the values from the container's environment.
func configLabel(c runtime.ContainerConfig) string {
	keys := make([]string, len(c.Env))
	for i, e := range c.Env {
		keys[i], _, _ = strings.Cut(e, "=")
	}
	c.Env = keys
	b, _ := json.Marshal(c) // cannot fail: strings and integers
	return string(b)
}

// configFromLabel is configLabel's inverse, given the container's
// environment (the image's variables, overridden by the config's).
func configFromLabel(label string, env []string) (runtime.ContainerConfig, error) {
	var c runtime.ContainerConfig
	if err := json.Unmarshal([]byte(label), &c); err != nil {
		return c, err
	}
	values := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		values[k] = v
	}
	for i, k := range c.Env {
		c.Env[i] = k + "=" + values[k]
	}
	return c, nil
}

// watch waits for a run to end, then records and reports its status. It
// gives up silently when the driver closes: the next one recovers the run.
func (d *Driver) watch(podUID string, c *ctr) {
	defer d.watchers.Done()
	for {
		res := d.cli.ContainerWait(d.bg, c.id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})
		var werr error
		select {
		case <-res.Result:
		case werr = <-res.Error:
		}
		if d.bg.Err() != nil {
			return
		}
		ins, err := d.cli.ContainerInspect(d.bg, c.id, client.ContainerInspectOptions{})
		var st runtime.ContainerStatus
		switch {
		case d.bg.Err() != nil:
			return
		case cerrdefs.IsNotFound(err):
			st = c.status
			st.State, st.ExitCode, st.Reason = runtime.StateExited, -1, runtime.ReasonUnknown
			st.Message = "the container was removed outside Slipway"
		case err != nil || ins.Container.State == nil || ins.Container.State.Running:
			// The engine went away or the wait ended early: wait again.
			d.log.Warn("watching a container", "pod", podUID, "container", c.cfg.Name, "wait", werr, "inspect", err)
			select {
			case <-time.After(time.Second): // pace retries against an engine that is down
			case <-d.bg.Done():
				return
			}
			continue
		default:
			st = exitedStatus(c.cfg.Name, c.status.ConfigHash, c.status.PID, ins.Container.State)
			if st.ExitCode == 137 && !st.OOMKilled && c.cfg.Limits.MemoryBytes > 0 && !d.sentKill(c) {
				st = d.awaitOOMFlag(c, st)
			}
		}
		d.mu.Lock()
		c.status = st
		d.exits.Push(runtime.ExitEvent{PodUID: podUID, Name: c.cfg.Name, Status: st})
		close(c.done)
		d.mu.Unlock()
		return
	}
}

// awaitOOMFlag re-reads a run that was SIGKILLed by someone other than
// Slipway under a memory limit: the engine handles the kernel's OOM event
// apart from the exit, and may set OOMKilled a moment after the exit.
func (d *Driver) awaitOOMFlag(c *ctr, st runtime.ContainerStatus) runtime.ContainerStatus {
	for range 60 { // 3 s: the engine is slow to record it on a loaded machine
		select {
		case <-time.After(50 * time.Millisecond): // poll interval for the engine's OOM record
		case <-d.bg.Done():
			return st
		}
		ins, err := d.cli.ContainerInspect(d.bg, c.id, client.ContainerInspectOptions{})
		if err != nil || ins.Container.State == nil {
			return st
		}
		if ins.Container.State.OOMKilled {
			return exitedStatus(c.cfg.Name, c.status.ConfigHash, c.status.PID, ins.Container.State)
		}
	}
	return st
}

func (d *Driver) sentKill(c *ctr) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return c.killSent
}

// exitedStatus reads a finished run's status from the engine's state.
// The engine reports a run killed by signal n as exit code 128+n, so that
// is how a signal is recognised (an app exiting with 143 itself reads the
// same).
func exitedStatus(name, hash string, pid int, s *container.State) runtime.ContainerStatus {
	st := runtime.ContainerStatus{
		Name: name, State: runtime.StateExited, PID: pid, ExitCode: s.ExitCode,
		StartedAt: parseTime(s.StartedAt), FinishedAt: parseTime(s.FinishedAt),
		ConfigHash: hash, Message: s.Error,
	}
	if s.ExitCode > 128 && s.ExitCode <= 128+64 {
		st.Signal = s.ExitCode - 128
	}
	switch {
	case s.OOMKilled:
		st.OOMKilled, st.Reason = true, runtime.ReasonOOMKilled
	case s.ExitCode == 0:
		st.Reason = runtime.ReasonCompleted
	default:
		st.Reason = runtime.ReasonError
	}
	return st
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// StopContainer implements runtime.Driver with `docker stop`'s semantics
// at millisecond precision: SIGTERM, the grace period, SIGKILL.
func (d *Driver) StopContainer(ctx context.Context, podUID, name string, grace time.Duration) error {
	c, err := d.lookup(ctx, podUID, name)
	if err != nil {
		return err
	}
	return d.kill(ctx, c, grace)
}

// kill stops one run and returns once its exit is recorded.
func (d *Driver) kill(ctx context.Context, c *ctr, grace time.Duration) error {
	if isDone(c.done) {
		return nil
	}
	if grace > 0 {
		if err := d.signal(ctx, c, "SIGTERM"); err != nil {
			return err
		}
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
			return nil
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := d.signal(ctx, c, "SIGKILL"); err != nil {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-d.bg.Done():
		return runtime.ErrClosed
	}
}

func (d *Driver) signal(ctx context.Context, c *ctr, sig string) error {
	if sig == "SIGKILL" {
		d.mu.Lock()
		c.killSent = true
		d.mu.Unlock()
	}
	_, err := d.cli.ContainerKill(ctx, c.id, client.ContainerKillOptions{Signal: sig})
	if err != nil && !cerrdefs.IsConflict(err) && !cerrdefs.IsNotFound(err) {
		// Conflict: it is not running any more; the watcher records that.
		return fmt.Errorf("container %q: sending %s: %w", c.cfg.Name, sig, err)
	}
	return nil
}

// ContainerStatus implements runtime.Driver from what the driver recorded:
// the start's inspection, then the watcher's.
func (d *Driver) ContainerStatus(ctx context.Context, podUID, name string) (runtime.ContainerStatus, error) {
	c, err := d.lookup(ctx, podUID, name)
	if err != nil {
		return runtime.ContainerStatus{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return c.status, nil
}

func (d *Driver) lookup(ctx context.Context, podUID, name string) (*ctr, error) {
	p, err := d.getPod(ctx, podUID)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c := p.containers[name]
	if c == nil || p.removed {
		return nil, fmt.Errorf("%w: container %q of pod %q", runtime.ErrNotFound, name, podUID)
	}
	return c, nil
}

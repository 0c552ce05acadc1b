package process

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/runtime"
)

// defaultPath is searched when the container's env sets no PATH, as Docker
// does for images without one. It is used for the lookup only: nothing is
// added to the container's environment.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// lookPath resolves a command as the container would: a name with a slash is
// a path (relative to the working directory), any other is searched in the
// container's PATH, not Slipway's.
func lookPath(name string, env []string, wd string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("must not be empty")
	}
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			p = filepath.Join(wd, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("%q: %w", name, err)
		}
		return p, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for dir := range strings.SplitSeq(path, ":") {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(wd, dir)
		}
		p := filepath.Join(dir, name)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", &notInPathError{name: name}
}

// notInPathError is a command found nowhere in the container's PATH. It
// says so once, without the PATH itself (which can be long and would be
// repeated in every Event), and is runtime.ErrInvalid: retrying will not
// help until the spec changes.
type notInPathError struct{ name string }

func (e *notInPathError) Error() string {
	return fmt.Sprintf("executable %q not found in the pod's PATH", e.name)
}

func (e *notInPathError) Is(target error) bool { return target == runtime.ErrInvalid }

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("is not executable")
	}
	return nil
}

// Exec implements runtime.Driver over ExecStream.
func (d *Driver) Exec(ctx context.Context, uid, name string, argv []string) (runtime.ExecResult, error) {
	return runtime.CollectExec(ctx, d, uid, name, argv)
}

// ExecStream implements runtime.Driver. The command runs as the container
// does: with its env and working directory, its program resolved in its
// PATH, in its cgroup (so within its limits), seeing its mounts (in a
// mount namespace of its own: a Go program cannot join another's), in a
// process group of its own (a session, with a TTY), which is killed when
// the command ends or ctx does.
func (d *Driver) ExecStream(ctx context.Context, uid, name string, s runtime.ExecStreams) (int, error) {
	argv := s.Command
	if err := runtime.CheckCommand(name, argv); err != nil {
		return -1, err
	}
	d.mu.Lock()
	c, err := d.lookup(uid, name)
	if err != nil {
		d.mu.Unlock()
		return -1, err
	}
	phase, cfg, p := c.phase, c.cfg, d.pods[uid]
	d.mu.Unlock()
	if phase != phaseRunning {
		return -1, fmt.Errorf("exec in container %q of pod %q: container is not running: %w", name, uid, runtime.ErrConflict)
	}
	wd, prog, err := d.runFrom(cfg, argv[0])
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	path, err := lookPath(prog, cfg.Env, wd)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	if err := ctx.Err(); err != nil {
		return -1, err
	}
	mounts, err := d.mountSpecFor(p, cfg)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	h, err := newHelper(mounts)
	if err != nil {
		return -1, err
	}
	defer h.close()
	st, err := newExecStdio(s)
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	defer st.close()
	env := append(make([]string, 0, len(cfg.Env)), cfg.Env...)
	newCmd := func() *exec.Cmd {
		cmd := exec.CommandContext(ctx, path)
		cmd.Args = append([]string{}, argv...)
		cmd.Env, cmd.Dir = env, wd
		st.wire(cmd)
		cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
		// Something the command left behind may hold an output pipe.
		cmd.WaitDelay = time.Second
		h.wrap(cmd)
		return cmd
	}
	cmd, err := d.cg.start(uid, name, newCmd)
	if err = h.started(err); err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	st.started(ctx, s)
	pid := cmd.Process.Pid
	// Kill leftovers while the leader is an unreaped zombie, so that its
	// pid, the group id, is still ours.
	_ = waitExitedChild(pid)
	_ = unix.Kill(-pid, unix.SIGKILL)
	_ = cmd.Wait()
	st.wait()
	code := -1
	if ps := cmd.ProcessState; ps != nil {
		code, _ = exitOf(ps.Sys().(syscall.WaitStatus))
	}
	if msg := h.failure(); msg != "" {
		return code, fmt.Errorf("exec %q in container %q: %s", argv[0], name, msg)
	}
	if err := ctx.Err(); err != nil {
		return code, fmt.Errorf("exec %q in container %q: %w", argv[0], name, err)
	}
	return code, nil
}

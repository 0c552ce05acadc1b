package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// Logs implements runtime.Driver through the engine's log API (json-file,
// rotated by the engine at LogMaxBytes). stdout and stderr are merged in
// the order the engine recorded them.
func (d *Driver) Logs(ctx context.Context, podUID, name string, opts runtime.LogOptions) (io.ReadCloser, error) {
	c, err := d.lookup(ctx, podUID, name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	id := c.id
	if opts.Previous {
		id = c.prevID
	}
	d.mu.Unlock()
	if id == "" {
		return nil, fmt.Errorf("%w: container %q of pod %q has no previous run", runtime.ErrNotFound, name, podUID)
	}
	tail := "all"
	if opts.Tail > 0 {
		tail = strconv.Itoa(opts.Tail)
	}
	rc, err := d.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: opts.Follow, Tail: tail})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("%w: logs of container %q of pod %q: %v", runtime.ErrNotFound, name, podUID, err)
		}
		return nil, fmt.Errorf("logs of container %q of pod %q: %w", name, podUID, err)
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := stdcopy.StdCopy(pw, pw, rc)
		if ctx.Err() != nil {
			err = nil // the caller ended the follow: a clean end
		}
		pw.CloseWithError(err)
		rc.Close()
	}()
	return &logReader{PipeReader: pr, body: rc}, nil
}

type logReader struct {
	*io.PipeReader
	body io.Closer
}

func (r *logReader) Close() error {
	r.body.Close()
	return r.PipeReader.Close()
}

// Exec implements runtime.Driver with an engine exec in the container (its
// env, working directory and cgroup).
func (d *Driver) Exec(ctx context.Context, podUID, name string, cmd []string) (runtime.ExecResult, error) {
	if len(cmd) == 0 {
		return runtime.ExecResult{}, fmt.Errorf("%w: exec in container %q: the command is empty", runtime.ErrInvalid, name)
	}
	for i, s := range cmd {
		if strings.IndexByte(s, 0) >= 0 {
			return runtime.ExecResult{}, fmt.Errorf("%w: exec in container %q: command[%d]: must not contain a NUL byte", runtime.ErrInvalid, name, i)
		}
	}
	c, err := d.lookup(ctx, podUID, name)
	if err != nil {
		return runtime.ExecResult{}, err
	}
	if isDone(c.done) {
		return runtime.ExecResult{}, fmt.Errorf("%w: container %q of pod %q is not running", runtime.ErrConflict, name, podUID)
	}
	ex, err := d.cli.ExecCreate(ctx, c.id, client.ExecCreateOptions{AttachStdout: true, AttachStderr: true, Cmd: cmd})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) {
			return runtime.ExecResult{}, fmt.Errorf("%w: container %q of pod %q: %v", runtime.ErrConflict, name, podUID, err)
		}
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", name, err)
	}
	att, err := d.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", name, err)
	}
	defer att.Close()
	out := &runtime.ExecOutput{}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = stdcopy.StdCopy(out, out, att.Reader)
	}()
	select {
	case <-copied:
	case <-ctx.Done():
		att.Close()
		<-copied
		d.killExec(ex.ID)
		return runtime.ExecResult{}, ctx.Err()
	}
	// The stream ends when the command does; the engine records the exit
	// code a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return runtime.ExecResult{}, fmt.Errorf("exec in container %q: %w", name, err)
		}
		if !ins.Running {
			output, truncated := out.Result()
			return runtime.ExecResult{ExitCode: ins.ExitCode, Output: output, Truncated: truncated}, nil
		}
		if time.Now().After(deadline) {
			return runtime.ExecResult{}, fmt.Errorf("exec in container %q: its output ended but the engine still reports it running after 10s", name)
		}
		select {
		case <-time.After(10 * time.Millisecond): // poll interval for the engine's record
		case <-ctx.Done():
			return runtime.ExecResult{}, ctx.Err()
		}
	}
}

// killExec ends a command whose caller gave up: the engine has no API to
// stop an exec, so its process (a pid on this host, where the engine runs)
// gets SIGKILL. It is best effort: a remote engine's pids are not ours.
func (d *Driver) killExec(id string) {
	ins, err := d.cli.ExecInspect(context.Background(), id, client.ExecInspectOptions{})
	if err != nil || !ins.Running || ins.PID <= 0 {
		return
	}
	if d.opts.Host == "" || strings.HasPrefix(d.opts.Host, "unix://") {
		_ = syscall.Kill(ins.PID, syscall.SIGKILL)
	}
}

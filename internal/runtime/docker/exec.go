package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// Exec implements runtime.Driver over ExecStream.
func (d *Driver) Exec(ctx context.Context, podUID, name string, cmd []string) (runtime.ExecResult, error) {
	return runtime.CollectExec(ctx, d, podUID, name, cmd)
}

// ExecStream implements runtime.Driver with an engine exec in the
// container (its env, working directory, namespaces and cgroup): the
// engine's attach stream carries the command's input and output (one
// stream with a TTY, stdout and stderr multiplexed without), its resize
// endpoint the terminal's size.
func (d *Driver) ExecStream(ctx context.Context, podUID, name string, s runtime.ExecStreams) (int, error) {
	if err := runtime.CheckCommand(name, s.Command); err != nil {
		return -1, err
	}
	c, err := d.lookup(ctx, podUID, name)
	if err != nil {
		return -1, err
	}
	if isDone(c.done) {
		return -1, fmt.Errorf("%w: container %q of pod %q is not running", runtime.ErrConflict, name, podUID)
	}
	size := client.ConsoleSize{Height: uint(s.Size.Rows), Width: uint(s.Size.Cols)}
	if !s.TTY || s.Size.Rows == 0 || s.Size.Cols == 0 {
		size = client.ConsoleSize{}
	}
	ex, err := d.cli.ExecCreate(ctx, c.id, client.ExecCreateOptions{
		AttachStdin: s.Stdin != nil, AttachStdout: true, AttachStderr: true,
		TTY: s.TTY, ConsoleSize: size, Cmd: s.Command,
	})
	if err != nil {
		if cerrdefs.IsConflict(err) || cerrdefs.IsNotFound(err) {
			return -1, fmt.Errorf("%w: container %q of pod %q: %v", runtime.ErrConflict, name, podUID, err)
		}
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	att, err := d.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{TTY: s.TTY, ConsoleSize: size})
	if err != nil {
		return -1, fmt.Errorf("exec in container %q: %w", name, err)
	}
	defer att.Close()
	if size.Width > 0 {
		// An engine before API 1.42 ignores the size given at creation.
		_, _ = d.cli.ExecResize(ctx, ex.ID, client.ExecResizeOptions{Height: size.Height, Width: size.Width})
	}
	stdout, stderr := orDiscard(s.Stdout), orDiscard(s.Stderr)
	if s.Stdin != nil {
		go func() {
			_, _ = io.Copy(att.Conn, s.Stdin)
			_ = att.CloseWrite()
		}()
	}
	rctx, stopResize := context.WithCancel(ctx)
	defer stopResize()
	if s.TTY && s.Resize != nil {
		go func() {
			for {
				select {
				case <-rctx.Done():
					return
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					_, _ = d.cli.ExecResize(rctx, ex.ID, client.ExecResizeOptions{Height: uint(sz.Rows), Width: uint(sz.Cols)})
				}
			}
		}()
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		if s.TTY {
			_, _ = io.Copy(stdout, att.Reader)
		} else {
			_, _ = stdcopy.StdCopy(stdout, stderr, att.Reader)
		}
	}()
	select {
	case <-copied:
	case <-ctx.Done():
		att.Close()
		<-copied
		d.killExec(ex.ID)
		return -1, ctx.Err()
	}
	// The stream ends when the command does; the engine records the exit
	// code a moment later.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{})
		if err != nil {
			return -1, fmt.Errorf("exec in container %q: %w", name, err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("exec in container %q: its output ended but the engine still reports it running after 10s", name)
		}
		select {
		case <-time.After(10 * time.Millisecond): // poll interval for the engine's record
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

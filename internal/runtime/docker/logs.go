package docker

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"

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

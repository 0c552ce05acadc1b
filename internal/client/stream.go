package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/stream"
)

// ExecOptions is a command to run in a pod's container and its streams.
type ExecOptions struct {
	// Container may be empty when the pod has exactly one container.
	Container string
	Command   []string
	// Stdin, when set, is sent as the command's input (its end closes
	// the command's input); nil gives the command an empty input.
	Stdin io.Reader
	// Stdout and Stderr receive the command's output (nil discards it);
	// with TTY everything comes on Stdout.
	Stdout, Stderr io.Writer
	TTY            bool
	Size           stream.TermSize
	Resize         <-chan stream.TermSize
}

// ExecError is a command that could not run, or was cut short, in the
// pod: the runtime's words (e.g. a program not in the pod's PATH).
type ExecError struct{ Message string }

func (e *ExecError) Error() string { return e.Message }

// Exec runs a command in a pod's container over the exec stream
// (internal/stream) and returns its exit code once its output is
// delivered. Refusals (no such pod, not running, a token that may not)
// come back as *api.Error before anything runs.
func (c *Client) Exec(ctx context.Context, project, pod string, o ExecOptions) (int, error) {
	if len(o.Command) == 0 {
		return -1, errors.New("exec: no command")
	}
	q := url.Values{"command": o.Command}
	if o.Container != "" {
		q.Set("container", o.Container)
	}
	if o.Stdin != nil {
		q.Set("stdin", "true")
	}
	if o.TTY {
		q.Set("tty", "true")
		if o.Size.Cols > 0 && o.Size.Rows > 0 {
			q.Set("cols", strconv.Itoa(int(o.Size.Cols)))
			q.Set("rows", strconv.Itoa(int(o.Size.Rows)))
		}
	}
	conn, err := c.upgrade(ctx, podPath(project, pod, "exec"), q, stream.ExecProtocol)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	fw := stream.NewWriter(conn)
	if o.Stdin != nil {
		go func() {
			if _, err := io.Copy(fw.Channel(stream.Stdin), o.Stdin); err == nil {
				_ = fw.Frame(stream.StdinEOF, nil)
			}
		}()
	}
	done := make(chan struct{})
	defer close(done)
	if o.Resize != nil {
		go func() {
			for {
				select {
				case <-done:
					return
				case sz, ok := <-o.Resize:
					if !ok {
						return
					}
					_ = fw.Frame(stream.Resize, stream.EncodeResize(sz))
				}
			}
		}()
	}
	stdout, stderr := o.Stdout, o.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	fr := stream.NewReader(conn)
	for {
		ch, data, err := fr.Next()
		if err != nil {
			if ctx.Err() != nil {
				return -1, ctx.Err()
			}
			return -1, fmt.Errorf("exec in pod %s: the stream ended before the command's exit status: %w", pod, err)
		}
		switch ch {
		case stream.Stdout:
			if _, err := stdout.Write(data); err != nil {
				return -1, err
			}
		case stream.Stderr:
			if _, err := stderr.Write(data); err != nil {
				return -1, err
			}
		case stream.Exit:
			st, err := stream.DecodeExit(data)
			if err != nil {
				return -1, err
			}
			if st.Error != "" {
				return st.ExitCode, &ExecError{Message: st.Error}
			}
			return st.ExitCode, nil
		}
	}
}

// DialPod opens a connection to a port of a pod through the API's
// port-forward stream: what is written reaches the pod's port, what it
// answers is read. Close ends it (the stream cannot half-close).
func (c *Client) DialPod(ctx context.Context, project, pod string, port int) (io.ReadWriteCloser, error) {
	return c.upgrade(ctx, podPath(project, pod, "portforward"), url.Values{"port": {strconv.Itoa(port)}}, stream.TCPProtocol)
}

func podPath(project, pod, sub string) string {
	if project == "" {
		project = api.DefaultProject
	}
	return "/api/v1/projects/" + url.PathEscape(project) + "/pods/" + url.PathEscape(pod) + "/" + sub
}

// upgrade sends a POST asking to switch to protocol and returns the
// connection once the server has; any other answer is its error.
func (c *Client) upgrade(ctx context.Context, path string, query url.Values, protocol string) (io.ReadWriteCloser, error) {
	if c.base == "" {
		return nil, errors.New("no API server configured: set --server or SLIPWAY_SERVER")
	}
	u := c.base + path + "?" + query.Encode()
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, u, nil)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", protocol)
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// The request's own context must outlive this call (it would close
	// the connection): the caller's ctx bounds only the handshake.
	type result struct {
		resp *http.Response
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		resp, err := c.hc.Do(req)
		ch <- result{resp, err}
	}()
	var r result
	select {
	case r = <-ch:
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if r.err != nil {
		if unreachable(r.err) {
			return nil, &UnreachableError{Server: c.base, Err: r.err}
		}
		return nil, fmt.Errorf("POST %s: %w", u, r.err)
	}
	if r.resp.StatusCode != http.StatusSwitchingProtocols {
		defer r.resp.Body.Close()
		if r.resp.StatusCode >= 200 && r.resp.StatusCode < 300 {
			return nil, fmt.Errorf("POST %s: the server answered %s instead of switching to %s", path, r.resp.Status, protocol)
		}
		return nil, decodeError(r.resp)
	}
	rwc, ok := r.resp.Body.(io.ReadWriteCloser)
	if !ok {
		r.resp.Body.Close()
		return nil, fmt.Errorf("POST %s: the switched connection is not writable", path)
	}
	return rwc, nil
}

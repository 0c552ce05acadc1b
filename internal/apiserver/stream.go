package apiserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/stream"
)

// PodStreams runs commands in pods' containers and connects to pods'
// ports; the node agent implements it (the API server never imports the
// runtime). The API server has checked that the pod exists, runs, and
// that container is one of its containers.
type PodStreams interface {
	// Exec runs a command as the container would run it (see
	// runtime.Driver's ExecStream), returning its exit code; errors are
	// for a command that could not run or was cut short.
	Exec(ctx context.Context, project, pod, container string, s ExecStreams) (exitCode int, err error)
	// DialPod opens a TCP connection to the pod's address and port.
	DialPod(ctx context.Context, project, pod string, port int) (net.Conn, error)
}

// ExecStreams is a command and its streams, as PodStreams.Exec takes them.
type ExecStreams struct {
	Command []string
	// Stdin is nil unless the client sends input (stdin=true).
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	TTY            bool
	Size           stream.TermSize
	Resize         <-chan stream.TermSize
}

type principalKey struct{}

func principalOf(ctx context.Context) registry.Principal {
	p, _ := ctx.Value(principalKey{}).(registry.Principal)
	return p
}

// authorizeStream is the one place where who may exec into a pod or
// forward its ports is decided. Today a token that may write may (the
// request is a POST, which ServeHTTP already refused to read-only
// tokens); the teams issue checks "edit role and above" in the project
// here, and these requests are audited by the callers' log line.
func authorizeStream(p registry.Principal, verb, project, pod string) error {
	if !p.CanWrite() {
		return api.Errorf(api.ReasonForbidden, "token %q has role %q, which may not %s in pod %s/%s", p.Name, p.Role, verb, project, pod)
	}
	return nil
}

// streamPod checks what both streaming endpoints need: the method, the
// protocol asked for, a running pod, the authorization and a PodStreams.
func (s *server) streamPod(w http.ResponseWriter, r *http.Request, protocol, verb string) (*api.Pod, error) {
	if r.Method != http.MethodPost {
		return nil, methodNotAllowed(w, r, http.MethodPost)
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), protocol) {
		return nil, api.Errorf(api.ReasonBadRequest, "%s is a streaming endpoint: send Connection: Upgrade and Upgrade: %s (see internal/stream)", r.URL.Path, protocol)
	}
	project, name := r.PathValue("project"), r.PathValue("name")
	obj, err := s.reg.Get(r.Context(), podKind, project, name)
	if err != nil {
		return nil, err
	}
	pod, ok := obj.(*api.Pod)
	if !ok {
		return nil, fmt.Errorf("the registry returned %T for a pod", obj)
	}
	if err := authorizeStream(principalOf(r.Context()), verb, project, name); err != nil {
		return nil, err
	}
	if pod.Status.Phase != "Running" {
		phase := pod.Status.Phase
		if phase == "" {
			phase = "Pending"
		}
		return nil, api.Errorf(api.ReasonConflict, "cannot %s in pod %s: it is %s, not Running", verb, name, phase)
	}
	if s.opts.Streams == nil {
		return nil, api.Errorf(api.ReasonUnavailable, "%s is not available: this API server runs without a node agent", verb)
	}
	return pod, nil
}

// headerHasToken reports whether a comma-separated header lists token.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for f := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), token) {
				return true
			}
		}
	}
	return false
}

// switchProtocols answers 101 and hands over the connection; reads
// already buffered are in the returned reader.
func switchProtocols(w http.ResponseWriter, protocol string) (net.Conn, *bufio.Reader, error) {
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return nil, nil, fmt.Errorf("hijacking the connection: %w", err)
	}
	if sw, ok := w.(*statusWriter); ok {
		sw.status, sw.wrote = http.StatusSwitchingProtocols, true
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "+protocol+"\r\n\r\n"); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, brw.Reader, nil
}

// podExec serves POST .../pods/{name}/exec (the protocol: internal/stream).
func (s *server) podExec(w http.ResponseWriter, r *http.Request) error {
	pod, err := s.streamPod(w, r, stream.ExecProtocol, "exec")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	container, err := pickContainer(pod, q.Get("container"))
	if err != nil {
		return err
	}
	cmd := q["command"]
	if len(cmd) == 0 || cmd[0] == "" {
		return api.Errorf(api.ReasonBadRequest, "exec needs a command: command=<argv[0]>&command=<argv[1]>…")
	}
	withStdin, err := queryBool(q.Get("stdin"), "stdin")
	if err != nil {
		return err
	}
	tty, err := queryBool(q.Get("tty"), "tty")
	if err != nil {
		return err
	}
	var size stream.TermSize
	if tty {
		if size, err = parseSize(q.Get("cols"), q.Get("rows")); err != nil {
			return err
		}
	}
	project := r.PathValue("project")
	s.log.Info("exec", "user", principalOf(r.Context()).Name, "project", project, "pod", pod.Metadata.Name,
		"container", container, "program", cmd[0], "tty", tty) // the arguments may hold secrets
	conn, br, err := switchProtocols(w, stream.ExecProtocol)
	if err != nil {
		return err
	}
	defer conn.Close()
	// After the switch the request's context no longer notices the client
	// leaving (it still ends with the server): the frame reader does.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fw := stream.NewWriter(conn)
	es := ExecStreams{Command: cmd, Stdout: fw.Channel(stream.Stdout), Stderr: fw.Channel(stream.Stderr), TTY: tty, Size: size}
	var stdin *io.PipeWriter
	if withStdin {
		var pr *io.PipeReader
		pr, stdin = io.Pipe()
		defer pr.Close()
		es.Stdin = pr
	}
	resize := make(chan stream.TermSize, 1)
	es.Resize = resize
	go func() {
		defer cancel()
		fr := stream.NewReader(br)
		for {
			ch, data, err := fr.Next()
			if err != nil {
				if stdin != nil {
					stdin.CloseWithError(io.ErrUnexpectedEOF)
				}
				return
			}
			switch ch {
			case stream.Stdin:
				if stdin != nil {
					if _, err := stdin.Write(data); err != nil {
						stdin = nil // the command's input is closed: drop the rest
					}
				}
			case stream.StdinEOF:
				if stdin != nil {
					stdin.Close()
					stdin = nil
				}
			case stream.Resize:
				if sz, err := stream.DecodeResize(data); err == nil {
					select { // the newest size wins
					case <-resize:
					default:
					}
					resize <- sz
				}
			}
		}
	}()
	code, err := s.opts.Streams.Exec(ctx, project, pod.Metadata.Name, container, es)
	st := stream.ExitStatus{ExitCode: code}
	if err != nil {
		// The runtime's words (a program not in the PATH, a mount that
		// failed) are the user's to read: they name nothing secret.
		st.Error = err.Error()
		if ae, ok := err.(*api.Error); ok {
			st.Error = ae.Message
		}
	}
	_ = fw.Exit(st)
	if tc, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
	}
	return nil
}

func parseSize(cols, rows string) (stream.TermSize, error) {
	if cols == "" && rows == "" {
		return stream.TermSize{}, nil
	}
	c, err1 := strconv.ParseUint(cols, 10, 16)
	r, err2 := strconv.ParseUint(rows, 10, 16)
	if err1 != nil || err2 != nil {
		return stream.TermSize{}, api.Errorf(api.ReasonBadRequest, "invalid terminal size cols=%q rows=%q: both must be integers from 0 to 65535", cols, rows)
	}
	return stream.TermSize{Cols: uint16(c), Rows: uint16(r)}, nil
}

// podPortForward serves POST .../pods/{name}/portforward?port=N: one TCP
// connection to the pod's port per request (the protocol: internal/stream).
func (s *server) podPortForward(w http.ResponseWriter, r *http.Request) error {
	pod, err := s.streamPod(w, r, stream.TCPProtocol, "port-forward")
	if err != nil {
		return err
	}
	v := r.URL.Query().Get("port")
	port, err := strconv.Atoi(v)
	if err != nil || port < 1 || port > 65535 {
		return api.Errorf(api.ReasonBadRequest, "invalid port=%q: must be an integer from 1 to 65535", v)
	}
	project := r.PathValue("project")
	s.log.Info("port-forward", "user", principalOf(r.Context()).Name, "project", project, "pod", pod.Metadata.Name, "port", port)
	up, err := s.opts.Streams.DialPod(r.Context(), project, pod.Metadata.Name, port)
	if err != nil {
		var ae *api.Error
		if errors.As(err, &ae) {
			return err
		}
		return api.Errorf(api.ReasonUnavailable, "cannot connect to port %d of pod %s: %v", port, pod.Metadata.Name, err)
	}
	defer up.Close()
	conn, br, err := switchProtocols(w, stream.TCPProtocol)
	if err != nil {
		return err
	}
	defer conn.Close()
	stream.Splice(conn, br, up)
	return nil
}

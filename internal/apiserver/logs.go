package apiserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
)

// LogSource streams a container's log; the node agent implements it (the
// API server never imports the runtime).
//
// The API server has already checked that the pod exists and that
// container is one of its containers. PodLogs returns once the log can be
// read (or an error if it cannot): errors the caller should see with their
// status must be *api.Error, e.g. ReasonNotFound when the pod has no log on
// this node yet or Previous is asked of a container that never restarted,
// ReasonBadRequest for a request the source cannot serve. Any other error
// is answered as an internal error, its text only logged. Mapping the
// runtime's conditions to reasons is the source's job.
//
// The reader ends (io.EOF) when the log is read; with Follow it keeps
// delivering new output until ctx ends or the run ends and its output is
// read. Close may be called while a Read is blocked and must make that Read
// return: the server closes the reader when the client goes away.
type LogSource interface {
	PodLogs(ctx context.Context, project, pod, container string, opts PodLogOptions) (io.ReadCloser, error)
}

// PodLogOptions selects which log of a container and how much of it.
type PodLogOptions struct {
	// Follow keeps the stream open for new output.
	Follow bool
	// Previous reads the log of the run before the current one.
	Previous bool
	// TailLines, when positive, limits the output to the last TailLines
	// lines written before the request; 0 means the whole log.
	TailLines int
}

// MaxTailLines bounds tailLines so that a source never has to hold an
// absurd number of lines to serve it.
const MaxTailLines = 1_000_000

var podKind, _ = api.LookupKind("Pod")

// unsupportedLogParams are Kubernetes' log parameters this server does not
// implement: refusing them beats silently ignoring what the caller asked.
var unsupportedLogParams = []string{"sinceSeconds", "sinceTime", "timestamps", "limitBytes", "insecureSkipTLSVerifyBackend", "stream"}

// podLog serves GET /api/v1/projects/{project}/pods/{name}/log with
// Kubernetes' parameters: container, follow, previous, tailLines.
func (s *server) podLog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r, http.MethodGet)
	}
	project, name := r.PathValue("project"), r.PathValue("name")
	q := r.URL.Query()
	for _, p := range unsupportedLogParams {
		if q.Has(p) {
			return api.Errorf(api.ReasonBadRequest, "the log parameter %s is not supported: use container, follow, previous and tailLines", p)
		}
	}
	var opts PodLogOptions
	var err error
	if opts.Follow, err = queryBool(q.Get("follow"), "follow"); err != nil {
		return err
	}
	if opts.Previous, err = queryBool(q.Get("previous"), "previous"); err != nil {
		return err
	}
	if opts.TailLines, err = parseTailLines(q.Get("tailLines")); err != nil {
		return err
	}
	ctx := r.Context()
	obj, err := s.reg.Get(ctx, podKind, project, name)
	if err != nil {
		return err
	}
	pod, ok := obj.(*api.Pod)
	if !ok {
		return fmt.Errorf("the registry returned %T for a pod", obj)
	}
	container, err := pickContainer(pod, q.Get("container"))
	if err != nil {
		return err
	}
	if s.opts.Logs == nil {
		return api.Errorf(api.ReasonUnavailable, "pod logs are not available: this API server runs without a node agent to read them from")
	}
	rc, err := s.opts.Logs.PodLogs(ctx, project, name, container, opts)
	if err != nil {
		return err
	}
	s.streamLog(ctx, w, r, rc, opts.Follow)
	return nil
}

// parseTailLines reads tailLines: absent means the whole log.
func parseTailLines(v string) (int, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxTailLines {
		return 0, api.Errorf(api.ReasonBadRequest, "invalid tailLines=%q: must be an integer from 1 to %d (omit it for the whole log)", v, MaxTailLines)
	}
	return n, nil
}

// pickContainer resolves the container parameter against the pod's
// containers, worded as Kubernetes words it.
func pickContainer(pod *api.Pod, container string) (string, error) {
	names := make([]string, len(pod.Spec.Containers))
	for i, c := range pod.Spec.Containers {
		names[i] = c.Name
	}
	choices := "[" + strings.Join(names, " ") + "]"
	if container == "" {
		switch len(names) {
		case 1:
			return names[0], nil
		case 0:
			return "", api.Errorf(api.ReasonBadRequest, "pod %s has no containers", pod.Metadata.Name)
		}
		return "", api.Errorf(api.ReasonBadRequest, "a container name must be specified for pod %s, choose one of: %s", pod.Metadata.Name, choices)
	}
	for _, n := range names {
		if n == container {
			return n, nil
		}
	}
	return "", api.Errorf(api.ReasonBadRequest, "container %s is not valid for pod %s, choose one of: %s", container, pod.Metadata.Name, choices)
}

// streamLog copies the log to the client, flushing each chunk when
// following so that a line is seen as soon as it is written, and closes
// it. The client going away closes it at once, which ends a Read blocked
// on a quiet follow even if the source does not watch ctx itself.
func (s *server) streamLog(ctx context.Context, w http.ResponseWriter, r *http.Request, rd io.ReadCloser, follow bool) {
	closeOnCancel := context.AfterFunc(ctx, func() { rd.Close() })
	defer func() {
		if closeOnCancel() {
			rd.Close()
		}
	}()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	// A server-wide WriteTimeout must not cut a followed or a long log short.
	_ = rc.SetWriteDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	if follow {
		// The client learns at once that the log exists, before any output.
		if rc.Flush() != nil {
			return
		}
	}
	buf := make([]byte, 32<<10)
	for {
		n, rerr := rd.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return // the client went away
			}
			if follow && rc.Flush() != nil {
				return
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF), ctx.Err() != nil:
			return
		default:
			// The status is sent, so the only way left to tell the client
			// that the log is cut short is to break the connection instead
			// of ending the body cleanly.
			s.log.Warn("reading a pod log failed", "path", r.URL.Path, "err", rerr)
			_ = rc.Flush()
			panic(http.ErrAbortHandler)
		}
	}
}

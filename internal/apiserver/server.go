// Package apiserver serves Slipway's HTTP/JSON API: authentication,
// authorisation, strict decoding, then the registry. It never calls
// controllers, the runtime or the router: they learn of changes by watching.
package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes      = 3 << 20
	DefaultMaxApplyBodyBytes = 8 << 20
	DefaultWatchHeartbeat    = 30 * time.Second
)

// Options configures the handler. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// MaxBodyBytes bounds the body of a request carrying one object.
	MaxBodyBytes int64
	// MaxApplyBodyBytes bounds the body of POST /api/v1/apply.
	MaxApplyBodyBytes int64
	// WatchHeartbeat is how often an idle watch stream is written to, so
	// that both ends notice a dead connection.
	WatchHeartbeat time.Duration
	// Version and Commit are reported by GET /version.
	Version string
	Commit  string
	// Generations, when set, lists the `slipway up` processes serving
	// this data dir for GET /version: this one, and during a hand-over
	// the one draining.
	Generations func() []Generation
	// Ready, when set, is consulted by GET /readyz besides the store.
	Ready func(ctx context.Context) error
	// Metrics, when set, serves GET /metrics (authenticated like the API:
	// Prometheus sends the token with bearer_token_file).
	Metrics http.Handler
	// Logs serves GET .../pods/{name}/log; without it that path answers 503.
	Logs LogSource
	// Builds takes POST .../apps/{name}/builds and serves
	// GET .../builds/{name}/log; without it those paths answer 503.
	Builds BuildSources
	// Streams serves POST .../pods/{name}/exec and .../portforward; without
	// it those paths answer 503.
	Streams PodStreams
}

type server struct {
	reg  *registry.Registry
	log  *slog.Logger
	opts Options
	mux  *http.ServeMux
}

// New returns the API's http.Handler.
func New(reg *registry.Registry, opts Options) http.Handler {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxApplyBodyBytes <= 0 {
		opts.MaxApplyBodyBytes = DefaultMaxApplyBodyBytes
	}
	if opts.WatchHeartbeat <= 0 {
		opts.WatchHeartbeat = DefaultWatchHeartbeat
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	s := &server{reg: reg, log: opts.Logger, opts: opts, mux: http.NewServeMux()}
	// Methods are dispatched in the handlers, not in the patterns, so that
	// a wrong method gets a JSON 405 like every other error.
	s.mux.HandleFunc("/healthz", s.handle(s.healthz))
	s.mux.HandleFunc("/readyz", s.handle(s.readyz))
	s.mux.HandleFunc("/version", s.handle(s.version))
	s.mux.HandleFunc("/api/v1", s.handle(s.discovery))
	s.mux.HandleFunc("/api/v1/apply", s.handle(s.apply))
	s.mux.HandleFunc("/api/v1/{plural}", s.handle(s.allProjects))
	s.mux.HandleFunc("/api/v1/projects/{project}", s.handle(s.projectItem))
	s.mux.HandleFunc("/api/v1/projects/{project}/{plural}", s.handle(s.collection))
	s.mux.HandleFunc("/api/v1/projects/{project}/{plural}/{name}", s.handle(s.item))
	s.mux.HandleFunc("/api/v1/projects/{project}/{plural}/{name}/status", s.handle(s.status))
	s.mux.HandleFunc("/api/v1/projects/{project}/pods/{name}/log", s.handle(s.podLog))
	s.mux.HandleFunc("/api/v1/projects/{project}/pods/{name}/exec", s.handle(s.podExec))
	s.mux.HandleFunc("/api/v1/projects/{project}/pods/{name}/portforward", s.handle(s.podPortForward))
	s.mux.HandleFunc("/api/v1/projects/{project}/apps/{name}/builds", s.handle(s.startBuild))
	s.mux.HandleFunc("/api/v1/projects/{project}/builds/{name}/log", s.handle(s.buildLog))
	if opts.Metrics != nil {
		s.mux.Handle("GET /metrics", opts.Metrics)
	}
	s.mux.HandleFunc("/", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return api.Errorf(api.ReasonNotFound, "no such path %q: the API is under /api/v1", r.URL.Path)
	}))
	return s
}

// ServeHTTP recovers panics, authenticates, authorises and logs.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	var who string
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !sw.wrote {
				s.writeError(sw, r, api.Errorf(api.ReasonInternal, "internal error: see the server log"))
			}
		}
		lvl := slog.LevelDebug
		if sw.status >= 500 {
			lvl = slog.LevelError
		}
		// Never the Authorization header, never a body: both may hold secrets.
		s.log.Log(r.Context(), lvl, "request", "method", r.Method, "path", r.URL.Path,
			"status", sw.status, "user", who, "duration", time.Since(start))
	}()
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		s.mux.ServeHTTP(sw, r)
		return
	}
	p, err := s.authenticate(r)
	if err != nil {
		s.writeError(sw, r, err)
		return
	}
	who = p.Name
	if !p.CanWrite() && r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.writeError(sw, r, api.Errorf(api.ReasonForbidden, "token %q has role %q, which may only read: %s %s is not allowed", p.Name, p.Role, r.Method, r.URL.Path))
		return
	}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
}

func (s *server) authenticate(r *http.Request) (registry.Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return registry.Principal{}, api.Errorf(api.ReasonUnauthorized, "missing bearer token: send Authorization: Bearer <token> (see <data-dir>/admin.token)")
	}
	p, err := s.reg.Authenticate(r.Context(), strings.TrimSpace(token))
	if err != nil {
		if api.ReasonOf(err) == api.ReasonUnauthorized {
			return p, api.Errorf(api.ReasonUnauthorized, "invalid bearer token")
		}
		return p, err
	}
	return p, nil
}

// statusWriter remembers the status written, for logs and for knowing
// whether an error can still be sent.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and SetWriteDeadline.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// handle adapts a handler that returns its error, so that errors are
// mapped to statuses in one place.
func (s *server) handle(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			if sw, ok := w.(*statusWriter); ok && sw.wrote {
				s.log.Warn("error after the response began", "path", r.URL.Path, "err", err)
				return
			}
			s.writeError(w, r, err)
		}
	}
}

// toAPIError maps any error to the *api.Error sent to the client.
func toAPIError(err error) *api.Error {
	var ae *api.Error
	if errors.As(err, &ae) {
		e := *ae
		if e.Code == 0 {
			e.Code = api.Errorf(e.Reason, "").Code
		}
		return &e
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return api.Errorf(api.ReasonTooLarge, "request body is larger than the limit of %d bytes", tooLarge.Limit)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return api.Errorf(api.ReasonUnavailable, "the request was cancelled or timed out")
	}
	return api.Errorf(api.ReasonInternal, "internal error: see the server log")
}

func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toAPIError(err)
	if e.Code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if e.Code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
	}
	s.writeJSON(w, e.Code, e)
}

func (s *server) writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("cannot encode response", "err", err)
		code = http.StatusInternalServerError
		b, _ = json.Marshal(api.Errorf(api.ReasonInternal, "internal error: cannot encode the response"))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// methodNotAllowed answers a method a path does not serve.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) error {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	return api.Errorf(api.ReasonMethodNotAllowd, "method %s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allowed, ", "))
}

func (s *server) healthz(w http.ResponseWriter, r *http.Request) error {
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *server) readyz(w http.ResponseWriter, r *http.Request) error {
	if err := s.reg.Ping(r.Context()); err != nil {
		return api.Errorf(api.ReasonUnavailable, "the store is not ready: %v", err)
	}
	if s.opts.Ready != nil {
		if err := s.opts.Ready(r.Context()); err != nil {
			return api.Errorf(api.ReasonUnavailable, "not ready: %v", err)
		}
	}
	s.writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// VersionInfo is the body of GET /version.
type VersionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	APIVersion string `json:"apiVersion"`
	GoVersion  string `json:"goVersion"`
	// Generations are the processes serving: during a hand-over the
	// new one and the one draining.
	Generations []Generation `json:"generations,omitempty"`
}

// Generation is one `slipway up` process on the data dir.
type Generation struct {
	Number  int    `json:"number"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	// State is "serving" or "draining".
	State string `json:"state"`
}

func (s *server) version(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r, http.MethodGet)
	}
	v := VersionInfo{Version: s.opts.Version, Commit: s.opts.Commit, APIVersion: api.Version, GoVersion: runtime.Version()}
	if s.opts.Generations != nil {
		v.Generations = s.opts.Generations()
	}
	s.writeJSON(w, http.StatusOK, v)
	return nil
}

// Resource describes one kind in GET /api/v1.
type Resource struct {
	Kind       string   `json:"kind"`
	Plural     string   `json:"plural"`
	ShortNames []string `json:"shortNames,omitempty"`
	// Projects: the kind lives in a project.
	Projects bool `json:"projects"`
	// Status: the kind has a status subresource.
	Status bool     `json:"status"`
	Verbs  []string `json:"verbs"`
}

// Discovery is the body of GET /api/v1.
type Discovery struct {
	APIVersion string     `json:"apiVersion"`
	Resources  []Resource `json:"resources"`
}

func (s *server) discovery(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r, http.MethodGet)
	}
	d := Discovery{APIVersion: api.Version}
	for _, k := range api.Kinds {
		d.Resources = append(d.Resources, Resource{Kind: k.Kind, Plural: k.Plural, ShortNames: k.Short,
			Projects: k.Projects, Status: k.Status,
			Verbs: []string{"create", "delete", "get", "list", "update", "watch"}})
	}
	s.writeJSON(w, http.StatusOK, d)
	return nil
}

// kindByPlural resolves the kind path segment, which must be a plural.
func kindByPlural(plural string) (api.KindInfo, error) {
	names := make([]string, 0, len(api.Kinds))
	for _, k := range api.Kinds {
		if k.Plural == plural {
			return k, nil
		}
		names = append(names, k.Plural)
	}
	hint := ""
	if k, ok := api.LookupKind(plural); ok {
		hint = fmt.Sprintf(" (did you mean %q? paths use the plural)", k.Plural)
	}
	return api.KindInfo{}, api.Errorf(api.ReasonNotFound, "unknown kind %q%s: the server knows %s", plural, hint, strings.Join(names, ", "))
}

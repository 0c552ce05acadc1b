// Package clitest runs slipway commands in tests against the real API
// (apiserver over loopback on a temporary bolt store), as Main runs them
// but without signal handling, and holds the objects and writers those
// tests share. It is imported by the tests of internal/cli and its
// command groups only.
package clitest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// RootFunc builds the command tree a test runs, as internal/cli's root
// does.
type RootFunc func(e *cmdutil.Env) *cobra.Command

// Root is a root command like slipway's (the connection flags, errors
// left to cmdutil.ExitStatus) with the commands cmds build: a command
// group's tests run its commands without the other groups.
func Root(cmds ...func(*cmdutil.Env, *cmdutil.Globals) *cobra.Command) RootFunc {
	return func(e *cmdutil.Env) *cobra.Command {
		g := &cmdutil.Globals{}
		root := &cobra.Command{Use: "slipway", SilenceUsage: true, SilenceErrors: true}
		g.AddFlags(root)
		for _, c := range cmds {
			root.AddCommand(c(e, g))
		}
		return root
	}
}

// API is the real API over loopback on a temporary bolt store, and the
// commands Run runs against it.
type API struct {
	URL, Token string
	Reg        *registry.Registry
	root       RootFunc
}

// Start serves the API with src as its log source; wrap, when set, wraps
// the handler (to interfere with requests in flight). Run runs the
// commands root builds.
func Start(t *testing.T, src apiserver.LogSource, wrap func(http.Handler) http.Handler, root RootFunc) *API {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	ctx := context.Background()
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _, err := reg.EnsureAdminToken(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	h := apiserver.New(reg, apiserver.Options{Logs: src})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &API{URL: srv.URL, Token: tok, Reg: reg, root: root}
}

// Run runs the CLI against the API as Main does, without signal handling,
// and returns its exit status.
func (a *API) Run(t *testing.T, ctx context.Context, stdout, stderr io.Writer, args ...string) int {
	t.Helper()
	vars := map[string]string{
		"SLIPWAY_SERVER": a.URL,
		"SLIPWAY_TOKEN":  a.Token,
		"SLIPWAY_CONFIG": filepath.Join(t.TempDir(), "absent.yaml"),
	}
	e := &cmdutil.Env{Stdin: strings.NewReader(""), Stdout: stdout, Stderr: stderr, Getenv: func(k string) string { return vars[k] }}
	root := a.root(e)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return cmdutil.ExitStatus(ctx, root.ExecuteContext(ctx), stderr)
}

// RunOut runs the CLI to its end and returns stdout, stderr and the status.
func (a *API) RunOut(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := a.Run(t, t.Context(), &out, &errOut, args...)
	return out.String(), errOut.String(), code
}

// Create stores obj in the default project.
func (a *API) Create(t *testing.T, obj api.Object) {
	t.Helper()
	obj.GetMeta().Project = api.DefaultProject
	if _, err := a.Reg.Create(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
}

// App reads an App of the default project.
func (a *API) App(t *testing.T, name string) *api.App {
	t.Helper()
	obj, err := a.Reg.Get(context.Background(), cmdutil.AppKind, api.DefaultProject, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.App)
}

// SetAppStatus writes the App's status as the deploy controller would.
func (a *API) SetAppStatus(t *testing.T, name string, mutate func(*api.App)) {
	t.Helper()
	app := a.App(t, name)
	mutate(app)
	if _, err := a.Reg.UpdateStatus(context.Background(), app); err != nil {
		t.Fatal(err)
	}
}

// NewPod is a pod of app (none when "") with the named containers.
func NewPod(name, app string, containers ...string) *api.Pod {
	p := &api.Pod{Metadata: api.ObjectMeta{Name: name}}
	if app != "" {
		p.Metadata.Labels = map[string]string{api.LabelApp: app}
		p.Spec.App = app
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: c, Command: []string{"/bin/true"}})
	}
	return p
}

// NewApp is an App of one container, web.
func NewApp(name string, replicas int32) *api.App {
	return &api.App{Metadata: api.ObjectMeta{Name: name}, Spec: api.AppSpec{Replicas: &replicas,
		Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: []string{"/bin/true"}}}}}}
}

// NewService is a Service selecting app=name on port 80.
func NewService(name string, labels map[string]string) *api.Service {
	return &api.Service{Metadata: api.ObjectMeta{Name: name, Labels: labels},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []api.ServicePort{{Port: 80}}}}
}

// SignalWriter closes Seen once what was written contains the text it was
// made with, and the channels of later Waits likewise.
type SignalWriter struct {
	// Seen is closed once the output contains the text given to
	// NewSignalWriter.
	Seen    chan struct{}
	mu      sync.Mutex
	buf     bytes.Buffer
	want    string
	once    sync.Once
	waiters map[string]chan struct{}
}

// NewSignalWriter is a SignalWriter whose Seen waits for want.
func NewSignalWriter(want string) *SignalWriter {
	return &SignalWriter{want: want, Seen: make(chan struct{})}
}

// Write records p and closes the channels whose text is now written.
func (w *SignalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.check()
	return len(p), nil
}

func (w *SignalWriter) check() {
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.Seen) })
	}
	for s, ch := range w.waiters {
		if strings.Contains(w.buf.String(), s) {
			close(ch)
			delete(w.waiters, s)
		}
	}
}

// Wait returns a channel closed once what was written contains s.
func (w *SignalWriter) Wait(s string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.waiters == nil {
		w.waiters = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	w.waiters[s] = ch
	w.check()
	return ch
}

// String is what was written so far.
func (w *SignalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

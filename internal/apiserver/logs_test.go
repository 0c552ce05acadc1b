package apiserver_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/store/bolt"
)

// logCall is one PodLogs call the fake saw.
type logCall struct {
	Project, Pod, Container string
	Opts                    apiserver.PodLogOptions
}

// fakeLogSource stands in for the node agent, which needs real processes.
// It records each call and answers with open, or with the log text "log of
// POD/CONTAINER\n" when open is nil.
type fakeLogSource struct {
	open  func(c logCall) (io.ReadCloser, error)
	mu    sync.Mutex
	calls []logCall
}

func (f *fakeLogSource) PodLogs(_ context.Context, project, pod, container string, opts apiserver.PodLogOptions) (io.ReadCloser, error) {
	c := logCall{project, pod, container, opts}
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
	if f.open != nil {
		return f.open(c)
	}
	return io.NopCloser(strings.NewReader("log of " + pod + "/" + container + "\n")), nil
}

func (f *fakeLogSource) seen() []logCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]logCall(nil), f.calls...)
}

// createPod stores a pod in project default with the named containers.
func createPod(t *testing.T, s *testServer, name string, containers ...string) {
	t.Helper()
	p := &api.Pod{Metadata: api.ObjectMeta{Name: name, Project: "default"}}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, api.Container{Name: c, Command: []string{"/bin/true"}})
	}
	if _, err := s.Reg.Create(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

const podsPath = "/api/v1/projects/default/pods/"

func TestPodLogPassesParameters(t *testing.T) {
	src := &fakeLogSource{}
	s := newServer(t, apiserver.Options{Logs: src}, bolt.Options{})
	createPod(t, s, "one", "web")
	createPod(t, s, "two", "web", "sidecar")
	cases := []struct {
		query string
		want  logCall
	}{
		{"", logCall{"default", "one", "web", apiserver.PodLogOptions{}}},
		{"?container=web&follow=true&previous=true&tailLines=25", logCall{"default", "one", "web", apiserver.PodLogOptions{Follow: true, Previous: true, TailLines: 25}}},
		{"?follow=false&previous=0&tailLines=1", logCall{"default", "one", "web", apiserver.PodLogOptions{TailLines: 1}}},
		{"?container=sidecar&follow=1", logCall{"default", "two", "sidecar", apiserver.PodLogOptions{Follow: true}}},
		{"?container=web&tailLines=1000000", logCall{"default", "two", "web", apiserver.PodLogOptions{TailLines: 1000000}}},
	}
	for _, tc := range cases {
		before := len(src.seen())
		// A view token may read logs.
		r := s.do(t, "GET", podsPath+tc.want.Pod+"/log"+tc.query, s.View, "")
		if r.Status != 200 {
			t.Fatalf("%s: status %d: %s", tc.query, r.Status, r.Body)
		}
		if got, want := string(r.Body), "log of "+tc.want.Pod+"/"+tc.want.Container+"\n"; got != want {
			t.Errorf("%s: body %q, want %q", tc.query, got, want)
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.query, ct)
		}
		calls := src.seen()[before:]
		if diff := cmp.Diff([]logCall{tc.want}, calls); diff != "" {
			t.Errorf("%s: calls (-want +got):\n%s", tc.query, diff)
		}
	}
}

func TestPodLogRefusesBadRequests(t *testing.T) {
	src := &fakeLogSource{}
	s := newServer(t, apiserver.Options{Logs: src}, bolt.Options{})
	createPod(t, s, "one", "web")
	createPod(t, s, "two", "web", "sidecar")
	cases := []struct {
		method, path, token string
		code                int
		reason, message     string
	}{
		{"GET", podsPath + "missing/log", s.View, 404, api.ReasonNotFound, `pods "missing" not found in project "default"`},
		{"GET", "/api/v1/projects/nope/pods/one/log", s.View, 404, api.ReasonNotFound, ""},
		{"GET", podsPath + "two/log", s.View, 400, api.ReasonBadRequest, "a container name must be specified for pod two, choose one of: [web sidecar]"},
		{"GET", podsPath + "two/log?container=db", s.View, 400, api.ReasonBadRequest, "container db is not valid for pod two, choose one of: [web sidecar]"},
		{"GET", podsPath + "one/log?container=sidecar", s.View, 400, api.ReasonBadRequest, "container sidecar is not valid for pod one, choose one of: [web]"},
		{"GET", podsPath + "one/log?tailLines=0", s.View, 400, api.ReasonBadRequest, `invalid tailLines="0": must be an integer from 1 to 1000000 (omit it for the whole log)`},
		{"GET", podsPath + "one/log?tailLines=-1", s.View, 400, api.ReasonBadRequest, `invalid tailLines="-1": must be an integer from 1 to 1000000 (omit it for the whole log)`},
		{"GET", podsPath + "one/log?tailLines=ten", s.View, 400, api.ReasonBadRequest, `invalid tailLines="ten": must be an integer from 1 to 1000000 (omit it for the whole log)`},
		{"GET", podsPath + "one/log?tailLines=1000001", s.View, 400, api.ReasonBadRequest, `invalid tailLines="1000001": must be an integer from 1 to 1000000 (omit it for the whole log)`},
		{"GET", podsPath + "one/log?follow=yes", s.View, 400, api.ReasonBadRequest, `invalid follow="yes": must be true or false`},
		{"GET", podsPath + "one/log?previous=maybe", s.View, 400, api.ReasonBadRequest, `invalid previous="maybe": must be true or false`},
		{"GET", podsPath + "one/log?sinceSeconds=10", s.View, 400, api.ReasonBadRequest, "the log parameter sinceSeconds is not supported: use container, follow, previous and tailLines"},
		{"POST", podsPath + "one/log", s.Admin, 405, api.ReasonMethodNotAllowd, "method POST is not allowed on /api/v1/projects/default/pods/one/log: use GET"},
		{"POST", podsPath + "one/log", s.View, 403, api.ReasonForbidden, ""},
		{"GET", podsPath + "one/log", "", 401, api.ReasonUnauthorized, ""},
		{"GET", podsPath + "one/log", "slw_wrong", 401, api.ReasonUnauthorized, "invalid bearer token"},
	}
	for _, tc := range cases {
		e := apiError(t, s.do(t, tc.method, tc.path, tc.token, ""), tc.code, tc.reason)
		if tc.message != "" && e.Message != tc.message {
			t.Errorf("%s %s: message %q, want %q", tc.method, tc.path, e.Message, tc.message)
		}
	}
	if calls := src.seen(); len(calls) != 0 {
		t.Fatalf("the source was asked for a log on a refused request: %+v", calls)
	}
}

func TestPodLogWithoutSource(t *testing.T) {
	s := newServer(t, apiserver.Options{}, bolt.Options{})
	createPod(t, s, "one", "web")
	e := apiError(t, s.do(t, "GET", podsPath+"one/log", s.Admin, ""), 503, api.ReasonUnavailable)
	if want := "pod logs are not available: this API server runs without a node agent to read them from"; e.Message != want {
		t.Fatalf("message %q, want %q", e.Message, want)
	}
	// The pod is checked first: a missing pod is still a 404.
	apiError(t, s.do(t, "GET", podsPath+"missing/log", s.Admin, ""), 404, api.ReasonNotFound)
}

func TestPodLogSourceErrors(t *testing.T) {
	var fail error
	src := &fakeLogSource{open: func(logCall) (io.ReadCloser, error) { return nil, fail }}
	s := newServer(t, apiserver.Options{Logs: src}, bolt.Options{})
	createPod(t, s, "one", "web")

	fail = api.Errorf(api.ReasonNotFound, `previous terminated container "web" in pod "one" not found`)
	e := apiError(t, s.do(t, "GET", podsPath+"one/log?previous=true", s.Admin, ""), 404, api.ReasonNotFound)
	if e.Message != fail.Error() {
		t.Fatalf("message %q, want the source's %q", e.Message, fail.Error())
	}
	// Wrapped, the *api.Error still decides the status.
	fail = errors.Join(errors.New("context"), api.Errorf(api.ReasonBadRequest, "no such run"))
	apiError(t, s.do(t, "GET", podsPath+"one/log", s.Admin, ""), 400, api.ReasonBadRequest)

	fail = errors.New("open /var/lib/slipway/logs/secret-path: disk on fire")
	e = apiError(t, s.do(t, "GET", podsPath+"one/log", s.Admin, ""), 500, api.ReasonInternal)
	if strings.Contains(e.Message, "disk on fire") {
		t.Fatalf("an internal error's text reached the client: %q", e.Message)
	}
}

// pipeLog is a followed log the test writes to. Close is observable so a
// test can see the server let go of it.
type pipeLog struct {
	*io.PipeReader
	w      *io.PipeWriter
	once   sync.Once
	closed chan struct{}
}

func (p *pipeLog) Close() error {
	p.once.Do(func() { close(p.closed) })
	return p.PipeReader.Close()
}

const waitLimit = 10 * time.Second

// followLog starts a followed log request and returns the writer the test
// feeds, the lines the client receives (closed at the end of the body) and
// the reader the server holds.
func followLog(t *testing.T, ctx context.Context, s *testServer, logs chan *pipeLog) (*io.PipeWriter, <-chan string, *pipeLog) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", s.URL+podsPath+"one/log?follow=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.View)
	// Do returns with the headers, before any output: the server flushes
	// them as soon as the log is open.
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	var pl *pipeLog
	select {
	case pl = <-logs:
	case <-time.After(waitLimit):
		t.Fatal("the source was not asked for the log")
	}
	// Ends the handler even when a test fails while it is blocked reading,
	// so that closing the server does not hang.
	t.Cleanup(func() { pl.w.CloseWithError(errors.New("test over")) })
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(resp.Body)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	return pl.w, lines, pl
}

func TestPodLogFollowStreamsIncrementally(t *testing.T) {
	logs := make(chan *pipeLog, 1)
	src := &fakeLogSource{open: func(logCall) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		pl := &pipeLog{PipeReader: pr, closed: make(chan struct{}), w: pw}
		logs <- pl
		return pl, nil
	}}
	s := newServer(t, apiserver.Options{Logs: src}, bolt.Options{})
	createPod(t, s, "one", "web")

	write := func(w *io.PipeWriter, s string) {
		t.Helper()
		done := make(chan error, 1)
		go func() { _, err := w.Write([]byte(s)); done <- err }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("writing %q: %v", s, err)
			}
		case <-time.After(waitLimit):
			t.Fatalf("the server did not read %q", s)
		}
	}
	expect := func(lines <-chan string, want string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if !ok {
				t.Fatalf("the body ended before %q", want)
			}
			if got != want {
				t.Fatalf("read %q, want %q", got, want)
			}
		case <-time.After(waitLimit):
			t.Fatalf("%q did not reach the client: the stream is not flushed", want)
		}
	}
	expectEnd := func(lines <-chan string) {
		t.Helper()
		select {
		case got, ok := <-lines:
			if ok {
				t.Fatalf("read %q, want the end of the body", got)
			}
		case <-time.After(waitLimit):
			t.Fatal("the body did not end")
		}
	}

	t.Run("source ends", func(t *testing.T) {
		w, lines, _ := followLog(t, t.Context(), s, logs)
		write(w, "line 1\n")
		// Line 2 is not written until line 1 arrived: each write is flushed.
		expect(lines, "line 1\n")
		write(w, "line 2\n")
		expect(lines, "line 2\n")
		w.Close()
		expectEnd(lines)
	})

	t.Run("client goes away", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		w, lines, pl := followLog(t, ctx, s, logs)
		write(w, "only line\n")
		expect(lines, "only line\n")
		// The fake ignores ctx: the server itself must close the reader,
		// or a quiet follow would hold the handler forever.
		cancel()
		select {
		case <-pl.closed:
		case <-time.After(waitLimit):
			t.Fatal("the server did not close the log reader after the client went away")
		}
		expectEnd(lines)
	})
}

func TestPodLogReadErrorBreaksTheStream(t *testing.T) {
	src := &fakeLogSource{open: func(logCall) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(strings.NewReader("partial\n"), errReader{})), nil
	}}
	s := newServer(t, apiserver.Options{Logs: src}, bolt.Options{})
	createPod(t, s, "one", "web")
	req, _ := http.NewRequest("GET", s.URL+podsPath+"one/log", nil)
	req.Header.Set("Authorization", "Bearer "+s.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	// A clean end would tell the reader it has the whole log.
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("reading a log cut short by a source error: err = %v, want unexpected EOF", err)
	}
	if string(b) != "partial\n" {
		t.Fatalf("body %q, want what was read before the error", b)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("log file vanished") }

// BenchmarkPodLogStream measures reading a 4 MiB log of 100-byte lines
// through the API over loopback.
func BenchmarkPodLogStream(b *testing.B) {
	line := strings.Repeat("x", 99) + "\n"
	log := strings.Repeat(line, (4<<20)/len(line))
	src := &fakeLogSource{open: func(logCall) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(log)), nil
	}}
	s := newServer(b, apiserver.Options{Logs: src}, bolt.Options{})
	p := &api.Pod{Metadata: api.ObjectMeta{Name: "one", Project: "default"},
		Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Command: []string{"/bin/true"}}}}}
	if _, err := s.Reg.Create(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(log)))
	b.ResetTimer()
	for range b.N {
		req, _ := http.NewRequest("GET", s.URL+podsPath+"one/log", nil)
		req.Header.Set("Authorization", "Bearer "+s.Admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || n != int64(len(log)) {
			b.Fatalf("read %d bytes (%v), want %d", n, err, len(log))
		}
	}
}

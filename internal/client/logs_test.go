package client_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

type logCall struct {
	Project, Pod, Container string
	Opts                    apiserver.PodLogOptions
}

// fakeLogSource stands in for the node agent, which needs real processes:
// it records calls and answers with open, or "log of POD/CONTAINER\n".
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

func (f *fakeLogSource) last() logCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

// newLogClient serves the real API with src as its log source and returns
// an admin client and the registry.
func newLogClient(t *testing.T, src apiserver.LogSource) (*client.Client, *registry.Registry) {
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
	srv := httptest.NewServer(apiserver.New(reg, apiserver.Options{Logs: src}))
	t.Cleanup(srv.Close)
	for _, p := range []*api.Pod{
		{Metadata: api.ObjectMeta{Name: "one"}, Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Command: []string{"/bin/true"}}}}},
		{Metadata: api.ObjectMeta{Name: "two"}, Spec: api.PodSpec{Containers: []api.Container{
			{Name: "web", Command: []string{"/bin/true"}}, {Name: "sidecar", Command: []string{"/bin/true"}}}}},
	} {
		p.Metadata.Project = api.DefaultProject
		if _, err := reg.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	return client.New(client.Config{Server: srv.URL, Token: tok}), reg
}

func readAll(t *testing.T, rc io.ReadCloser) string {
	t.Helper()
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestClientPodLogs(t *testing.T) {
	src := &fakeLogSource{}
	c, _ := newLogClient(t, src)
	ctx := t.Context()
	cases := []struct {
		project, pod string
		opts         client.LogOptions
		want         logCall
	}{
		{"", "one", client.LogOptions{}, logCall{"default", "one", "web", apiserver.PodLogOptions{}}},
		{"default", "one", client.LogOptions{TailLines: -1}, logCall{"default", "one", "web", apiserver.PodLogOptions{}}},
		{"default", "two", client.LogOptions{Container: "sidecar", Follow: true, Previous: true, TailLines: 7},
			logCall{"default", "two", "sidecar", apiserver.PodLogOptions{Follow: true, Previous: true, TailLines: 7}}},
	}
	for _, tc := range cases {
		rc, err := c.PodLogs(ctx, tc.project, tc.pod, tc.opts)
		if err != nil {
			t.Fatalf("%+v: %v", tc.opts, err)
		}
		if got, want := readAll(t, rc), "log of "+tc.pod+"/"+tc.want.Container+"\n"; got != want {
			t.Errorf("%+v: log %q, want %q", tc.opts, got, want)
		}
		if diff := cmp.Diff(tc.want, src.last()); diff != "" {
			t.Errorf("%+v: call (-want +got):\n%s", tc.opts, diff)
		}
	}
}

func TestClientPodLogsErrors(t *testing.T) {
	c, _ := newLogClient(t, &fakeLogSource{})
	ctx := t.Context()
	_, err := c.PodLogs(ctx, "default", "missing", client.LogOptions{})
	if !api.IsNotFound(err) {
		t.Fatalf("missing pod: %v, want NotFound", err)
	}
	_, err = c.PodLogs(ctx, "default", "two", client.LogOptions{})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != 400 || ae.Message != "a container name must be specified for pod two, choose one of: [web sidecar]" {
		t.Fatalf("pod with two containers and no container: %#v", err)
	}
	if _, err := c.PodLogs(ctx, "default", "", client.LogOptions{}); err == nil || err.Error() != "PodLogs: no pod name" {
		t.Fatalf("empty pod name: %v", err)
	}
}

func TestClientPodLogsFollow(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	c, _ := newLogClient(t, &fakeLogSource{open: func(logCall) (io.ReadCloser, error) { return pr, nil }})
	rc, err := c.PodLogs(t.Context(), "default", "one", client.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(rc)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	for _, l := range []string{"first\n", "second\n"} {
		go pw.Write([]byte(l))
		select {
		case got := <-lines:
			if got != l {
				t.Fatalf("read %q, want %q", got, l)
			}
		case <-time.After(10 * time.Second):
			// The next line is not written before this one arrives.
			t.Fatalf("%q did not arrive while the log was followed", l)
		}
	}
}

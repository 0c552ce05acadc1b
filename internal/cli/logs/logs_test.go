package logs

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/cli/clitest"
)

// logCall is one PodLogs call the fake saw.
type logCall struct {
	Pod, Container string
	Opts           apiserver.PodLogOptions
}

// fakeLogSource stands in for the node agent, which needs real processes.
// It records calls and answers with open, or "log of POD/CONTAINER\n".
type fakeLogSource struct {
	open  func(c logCall) (io.ReadCloser, error)
	mu    sync.Mutex
	calls []logCall
}

func (f *fakeLogSource) PodLogs(_ context.Context, _, pod, container string, opts apiserver.PodLogOptions) (io.ReadCloser, error) {
	c := logCall{pod, container, opts}
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

func TestLogsOfAPod(t *testing.T) {
	src := &fakeLogSource{}
	a := startTestAPI(t, src, nil)
	a.Create(t, clitest.NewPod("one", "", "web"))
	a.Create(t, clitest.NewPod("two", "", "web", "sidecar"))

	cases := []struct {
		args []string
		out  string
		call logCall
	}{
		{[]string{"logs", "one"}, "log of one/web\n", logCall{"one", "web", apiserver.PodLogOptions{}}},
		{[]string{"logs", "pod/one", "--tail", "-1"}, "log of one/web\n", logCall{"one", "web", apiserver.PodLogOptions{}}},
		{[]string{"logs", "po/two", "-c", "sidecar", "--previous", "--tail", "5"}, "log of two/sidecar\n",
			logCall{"two", "sidecar", apiserver.PodLogOptions{Previous: true, TailLines: 5}}},
		{[]string{"logs", "two", "--container=web", "-f"}, "log of two/web\n", logCall{"two", "web", apiserver.PodLogOptions{Follow: true}}},
	}
	for _, tc := range cases {
		before := len(src.seen())
		out, errOut, code := a.RunOut(t, tc.args...)
		// A pod's log is printed as it is, without a prefix.
		if code != 0 || out != tc.out || errOut != "" {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 0, %q", tc.args, code, out, errOut, tc.out)
		}
		if diff := cmp.Diff([]logCall{tc.call}, src.seen()[before:]); diff != "" {
			t.Errorf("%q: calls (-want +got):\n%s", tc.args, diff)
		}
	}

	out, errOut, code := a.RunOut(t, "logs", "two")
	if want := "error: a container name must be specified for pod two, choose one of: [web sidecar]\n"; code != 1 || out != "" || errOut != want {
		t.Fatalf("pod with two containers: code %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
}

func TestLogsRefusesBadArguments(t *testing.T) {
	src := &fakeLogSource{}
	a := startTestAPI(t, src, nil)
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"logs"}, "error: logs takes one pod or app: slipway logs POD or slipway logs app/NAME (got 0 arguments)"},
		{[]string{"logs", "a", "b"}, "error: logs takes one pod or app: slipway logs POD or slipway logs app/NAME (got 2 arguments)"},
		{[]string{"logs", "svc/web"}, "error: services have no logs: logs are read from pods (pod/NAME) and apps (app/NAME)"},
		{[]string{"logs", "frob/web"}, `error: unknown kind "frob" in "frob/web": logs are read from pods (pod/NAME) and apps (app/NAME)`},
		{[]string{"logs", "app/"}, `error: "app/": missing name after the slash`},
		{[]string{"logs", "one", "--tail", "0"}, "error: invalid --tail 0: must be -1 (the whole log) or a positive number of lines"},
		{[]string{"logs", "one", "--tail", "-2"}, "error: invalid --tail -2: must be -1 (the whole log) or a positive number of lines"},
		{[]string{"logs", "missing"}, `error: pods "missing" not found in project "default"`},
		{[]string{"logs", "app/missing"}, `error: apps "missing" not found in project "default"`},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, tc.args...)
		if code != 1 || out != "" || errOut != tc.err+"\n" {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.err)
		}
	}
	if calls := src.seen(); len(calls) != 0 {
		t.Fatalf("logs were read for refused commands: %+v", calls)
	}
}

func TestLogsOfAnApp(t *testing.T) {
	src := &fakeLogSource{open: func(c logCall) (io.ReadCloser, error) {
		// The last line lacks its newline: the prefixer must add one so the
		// next stream's first line starts on a line of its own.
		return io.NopCloser(strings.NewReader("1 " + c.Container + "\n2 " + c.Container)), nil
	}}
	a := startTestAPI(t, src, nil)
	a.Create(t, clitest.NewApp("hello", 2))
	a.Create(t, clitest.NewPod("hello-1-bbbbb", "hello", "web", "sidecar"))
	a.Create(t, clitest.NewPod("hello-1-aaaaa", "hello", "web"))
	a.Create(t, clitest.NewPod("other-1-ccccc", "other", "web"))

	out, errOut, code := a.RunOut(t, "logs", "app/hello", "--tail", "2")
	want := `[hello-1-aaaaa] 1 web
[hello-1-aaaaa] 2 web
[hello-1-bbbbb/web] 1 web
[hello-1-bbbbb/web] 2 web
[hello-1-bbbbb/sidecar] 1 sidecar
[hello-1-bbbbb/sidecar] 2 sidecar
`
	if code != 0 || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Fatalf("stdout (-want +got):\n%s", diff)
	}
	tail := apiserver.PodLogOptions{TailLines: 2}
	wantCalls := []logCall{{"hello-1-aaaaa", "web", tail}, {"hello-1-bbbbb", "web", tail}, {"hello-1-bbbbb", "sidecar", tail}}
	if diff := cmp.Diff(wantCalls, src.seen()); diff != "" {
		t.Fatalf("calls (-want +got):\n%s", diff)
	}

	// With -c, one container per pod, prefixed with the pod only.
	out, _, code = a.RunOut(t, "logs", "apps/hello", "-c", "web")
	want = "[hello-1-aaaaa] 1 web\n[hello-1-aaaaa] 2 web\n[hello-1-bbbbb] 1 web\n[hello-1-bbbbb] 2 web\n"
	if code != 0 || out != want {
		t.Fatalf("-c web: code %d, stdout %q, want %q", code, out, want)
	}
}

func TestLogsOfAnAppReportsEachFailure(t *testing.T) {
	src := &fakeLogSource{open: func(c logCall) (io.ReadCloser, error) {
		if c.Pod == "hello-1-aaaaa" {
			return nil, api.Errorf(api.ReasonNotFound, "previous terminated container %q in pod %q not found", c.Container, c.Pod)
		}
		return io.NopCloser(strings.NewReader("up\n")), nil
	}}
	a := startTestAPI(t, src, nil)
	a.Create(t, clitest.NewApp("hello", 2))
	a.Create(t, clitest.NewApp("empty", 0))
	a.Create(t, clitest.NewPod("hello-1-aaaaa", "hello", "web"))
	a.Create(t, clitest.NewPod("hello-1-bbbbb", "hello", "web"))

	out, errOut, code := a.RunOut(t, "logs", "app/hello", "--previous")
	wantErr := `error: [hello-1-aaaaa] previous terminated container "web" in pod "hello-1-aaaaa" not found
error: 1 of 2 logs of app hello could not be read: [hello-1-aaaaa]
`
	if code != 1 || out != "[hello-1-bbbbb] up\n" || errOut != wantErr {
		t.Fatalf("code %d, stdout %q, stderr:\n%s\nwant 1, the other pod's log and:\n%s", code, out, errOut, wantErr)
	}

	out, errOut, code = a.RunOut(t, "logs", "app/empty")
	if want := "error: app empty has no pods in project \"default\"\n"; code != 1 || out != "" || errOut != want {
		t.Fatalf("app without pods: code %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// followedPod is the log of one pod the test writes to.
type followedPod struct {
	w      *io.PipeWriter
	closed chan struct{}
}

type closeNotifier struct {
	io.ReadCloser
	once   sync.Once
	closed chan struct{}
}

func (c *closeNotifier) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.ReadCloser.Close()
}

func TestLogsFollowsAnAppsPodsConcurrently(t *testing.T) {
	var mu sync.Mutex
	pods := map[string]*followedPod{}
	opened := make(chan string, 2)
	src := &fakeLogSource{open: func(c logCall) (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		fp := &followedPod{w: pw, closed: make(chan struct{})}
		mu.Lock()
		pods[c.Pod] = fp
		mu.Unlock()
		opened <- c.Pod
		return &closeNotifier{ReadCloser: pr, closed: fp.closed}, nil
	}}
	a := startTestAPI(t, src, nil)
	a.Create(t, clitest.NewApp("hello", 2))
	a.Create(t, clitest.NewPod("hello-1-aaaaa", "hello", "web"))
	a.Create(t, clitest.NewPod("hello-1-bbbbb", "hello", "web"))

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	var errOut bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- a.Run(t, ctx, stdoutW, &errOut, "logs", "app/hello", "-f")
		stdoutW.Close()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		br := bufio.NewReader(stdoutR)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	const limit = 10 * time.Second
	for range 2 {
		select {
		case <-opened:
		case <-time.After(limit):
			t.Fatal("the logs of both pods were not opened together")
		}
	}
	mu.Lock()
	a1, b1 := pods["hello-1-aaaaa"], pods["hello-1-bbbbb"]
	mu.Unlock()
	t.Cleanup(func() {
		a1.w.CloseWithError(io.ErrClosedPipe)
		b1.w.CloseWithError(io.ErrClosedPipe)
	})
	write := func(w *io.PipeWriter, s string) {
		t.Helper()
		res := make(chan error, 1)
		go func() { _, err := w.Write([]byte(s)); res <- err }()
		select {
		case err := <-res:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(limit):
			t.Fatalf("%q was not read", s)
		}
	}
	expect := func(want string) {
		t.Helper()
		select {
		case got := <-lines:
			if got != want {
				t.Fatalf("printed %q, want %q", got, want)
			}
		case <-time.After(limit):
			t.Fatalf("%q was not printed", want)
		}
	}
	// Each line is printed while both streams stay open: B's line does not
	// wait for A's log to end, nor A's second line for B's.
	write(a1.w, "a one\n")
	expect("[hello-1-aaaaa] a one\n")
	write(b1.w, "b one\n")
	expect("[hello-1-bbbbb] b one\n")
	write(a1.w, "a two\n")
	expect("[hello-1-aaaaa] a two\n")

	// One pod's log ending leaves the other followed.
	a1.w.Close()
	write(b1.w, "b two\n")
	expect("[hello-1-bbbbb] b two\n")

	// Ctrl-C ends the command without an error and lets go of the logs.
	cancel()
	select {
	case code := <-done:
		if code != 0 || errOut.String() != "" {
			t.Fatalf("after cancel: code %d, stderr %q", code, errOut.String())
		}
	case <-time.After(limit):
		t.Fatal("logs -f did not end when its context was cancelled")
	}
	select {
	case <-b1.closed:
	case <-time.After(limit):
		t.Fatal("the server did not close the followed log after the CLI went away")
	}
}

func TestCopyPrefixedSplitsLongLines(t *testing.T) {
	long := strings.Repeat("x", maxLogLine+10)
	var out bytes.Buffer
	if err := copyPrefixed(&lineWriter{w: &out}, "[p] ", strings.NewReader("short\n"+long+"\nend")); err != nil {
		t.Fatal(err)
	}
	want := "[p] short\n[p] " + long[:maxLogLine] + "\n[p] " + long[maxLogLine:] + "\n[p] end\n"
	if got := out.String(); got != want {
		t.Fatalf("got %d bytes, want %d: a line longer than %d bytes must be split into prefixed lines", len(got), len(want), maxLogLine)
	}
}

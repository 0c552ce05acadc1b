package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/stream"
)

// fakeStreams stands in for the node agent (which needs real processes:
// the runtimes' harness and test/e2e run the real thing). Its "command"
// is Go: echo upper-cases stdin to stdout, reports to stderr, and exits
// with the code its second argument names; tty reports each resize.
type fakeStreams struct {
	dial func(port int) (net.Conn, error)
}

func (f *fakeStreams) Exec(ctx context.Context, project, pod, container string, s apiserver.ExecStreams) (int, error) {
	switch s.Command[0] {
	case "echo":
		if s.Stdin != nil {
			b, _ := io.ReadAll(s.Stdin)
			fmt.Fprint(s.Stdout, strings.ToUpper(string(b)))
		}
		fmt.Fprintf(s.Stderr, "%s/%s/%s tty=%v\n", project, pod, container, s.TTY)
		var code int
		fmt.Sscan(s.Command[1], &code)
		return code, nil
	case "tty":
		fmt.Fprintf(s.Stdout, "size %dx%d\n", s.Size.Cols, s.Size.Rows)
		for {
			select {
			case sz := <-s.Resize:
				fmt.Fprintf(s.Stdout, "size %dx%d\n", sz.Cols, sz.Rows)
				if sz.Cols == 1 {
					return 0, nil
				}
			case <-ctx.Done():
				return -1, ctx.Err()
			}
		}
	case "hang":
		fmt.Fprintln(s.Stdout, "started")
		<-ctx.Done()
		return -1, ctx.Err()
	}
	return -1, errors.New(`executable "` + s.Command[0] + `" not found in the pod's PATH`)
}

func (f *fakeStreams) DialPod(ctx context.Context, project, pod string, port int) (net.Conn, error) {
	return f.dial(port)
}

// runningPod stores a pod whose status says Running.
func runningPod(t *testing.T, s *testServer, name string, containers ...string) {
	t.Helper()
	createPod(t, s, name, containers...)
	ctx := context.Background()
	o, err := s.Reg.Get(ctx, podKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	p := o.(*api.Pod)
	p.Status.Phase, p.Status.PodIP = "Running", "127.0.0.1"
	if _, err := s.Reg.UpdateStatus(ctx, p); err != nil {
		t.Fatal(err)
	}
}

var podKind, _ = api.LookupKind("Pod")

func TestExecStreamsBothWays(t *testing.T) {
	s := newServer(t, apiserver.Options{Streams: &fakeStreams{}}, bolt.Options{})
	runningPod(t, s, "one", "web")
	c := client.New(client.Config{Server: s.URL, Token: s.Admin})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var out, errOut bytes.Buffer
	code, err := c.Exec(ctx, "default", "one", client.ExecOptions{Command: []string{"echo", "7"},
		Stdin: strings.NewReader(strings.Repeat("abc", 20000)), Stdout: &out, Stderr: &errOut})
	if err != nil || code != 7 || out.String() != strings.Repeat("ABC", 20000) || errOut.String() != "default/one/web tty=false\n" {
		t.Errorf("exec echo: code %d, err %v, %d bytes out, stderr %q", code, err, out.Len(), errOut.String())
	}

	// The command's own failure comes back as an ExecError, after the switch.
	_, err = c.Exec(ctx, "default", "one", client.ExecOptions{Command: []string{"nope"}})
	var ee *client.ExecError
	if !errors.As(err, &ee) || ee.Message != `executable "nope" not found in the pod's PATH` {
		t.Errorf("exec of a missing program: %v", err)
	}

	// A TTY: the first size from the request, the next ones as frames.
	pr, pw := io.Pipe()
	resize := make(chan stream.TermSize)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "default", "one", client.ExecOptions{Command: []string{"tty"}, TTY: true,
			Size: stream.TermSize{Cols: 80, Rows: 24}, Resize: resize, Stdout: pw})
		pw.CloseWithError(err)
		done <- err
	}()
	buf := make([]byte, 64)
	readLine := func() string {
		n, err := pr.Read(buf)
		if err != nil {
			t.Fatalf("reading the tty's output: %v", err)
		}
		return string(buf[:n])
	}
	if l := readLine(); l != "size 80x24\n" {
		t.Errorf("first size %q", l)
	}
	resize <- stream.TermSize{Cols: 100, Rows: 50}
	if l := readLine(); l != "size 100x50\n" {
		t.Errorf("after a resize %q", l)
	}
	resize <- stream.TermSize{Cols: 1, Rows: 1}
	readLine()
	if err := <-done; err != nil {
		t.Errorf("tty exec: %v", err)
	}

	// Cancelling the caller ends the command on the server.
	hctx, hcancel := context.WithCancel(ctx)
	cancelOnOutput := writerFunc(func(p []byte) (int, error) { hcancel(); return len(p), nil })
	if _, err := c.Exec(hctx, "default", "one", client.ExecOptions{Command: []string{"hang"}, Stdout: cancelOnOutput}); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled exec: %v", err)
	}
}

func TestStreamRefusalsBeforeTheSwitch(t *testing.T) {
	s := newServer(t, apiserver.Options{Streams: &fakeStreams{}}, bolt.Options{})
	runningPod(t, s, "one", "web", "side")
	createPod(t, s, "pending", "web")
	ctx := context.Background()
	admin := client.New(client.Config{Server: s.URL, Token: s.Admin})
	view := client.New(client.Config{Server: s.URL, Token: s.View})
	cases := []struct {
		name   string
		c      *client.Client
		pod    string
		o      client.ExecOptions
		reason string
		msg    string
	}{
		{"no such pod", admin, "nope", client.ExecOptions{Command: []string{"echo", "0"}}, api.ReasonNotFound, "nope"},
		{"not running", admin, "pending", client.ExecOptions{Container: "web", Command: []string{"echo", "0"}}, api.ReasonConflict, "cannot exec in pod pending: it is Pending, not Running"},
		{"container to name", admin, "one", client.ExecOptions{Command: []string{"echo", "0"}}, api.ReasonBadRequest, "choose one of: [web side]"},
		{"no such container", admin, "one", client.ExecOptions{Container: "db", Command: []string{"echo", "0"}}, api.ReasonBadRequest, "container db is not valid"},
		{"read-only token", view, "one", client.ExecOptions{Container: "web", Command: []string{"echo", "0"}}, api.ReasonForbidden, "may only read"},
	}
	for _, tc := range cases {
		_, err := tc.c.Exec(ctx, "default", tc.pod, tc.o)
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Reason != tc.reason || !strings.Contains(ae.Message, tc.msg) {
			t.Errorf("%s: %v, want %s containing %q", tc.name, err, tc.reason, tc.msg)
		}
	}
	// Without the Upgrade header it is a plain 400 saying what to send.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/v1/projects/default/pods/one/exec?command=ls", nil)
	req.Header.Set("Authorization", "Bearer "+s.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "Upgrade: slipway-exec.v1") {
		t.Errorf("exec without Upgrade: %d %s", resp.StatusCode, b)
	}
	// Without a node agent: 503.
	s2 := newServer(t, apiserver.Options{}, bolt.Options{})
	runningPod(t, s2, "one", "web")
	_, err = client.New(client.Config{Server: s2.URL, Token: s2.Admin}).DialPod(ctx, "default", "one", 80)
	if api.ReasonOf(err) != api.ReasonUnavailable {
		t.Errorf("port-forward without a node agent: %v", err)
	}
}

func TestPortForwardCarriesConnections(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // an upper-casing echo
				defer conn.Close()
				b := make([]byte, 4096)
				for {
					n, err := conn.Read(b)
					if err != nil {
						return
					}
					conn.Write(bytes.ToUpper(b[:n]))
				}
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	f := &fakeStreams{dial: func(p int) (net.Conn, error) { return net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p)) }}
	s := newServer(t, apiserver.Options{Streams: f}, bolt.Options{})
	runningPod(t, s, "one", "web")
	c := client.New(client.Config{Server: s.URL, Token: s.Admin})
	ctx := context.Background()

	// Several connections at once, each with its own bytes back.
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := c.DialPod(ctx, "default", "one", port)
			if err != nil {
				t.Errorf("DialPod: %v", err)
				return
			}
			defer conn.Close()
			for j := range 50 {
				msg := fmt.Sprintf("conn %d message %d", i, j)
				if _, err := io.WriteString(conn, msg); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(conn, got); err != nil || string(got) != strings.ToUpper(msg) {
					t.Errorf("read %q, %v; want %q", got, err, strings.ToUpper(msg))
					return
				}
			}
		}()
	}
	wg.Wait()

	// A port nothing listens on is refused before the switch.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln2.Addr().(*net.TCPAddr).Port
	ln2.Close()
	if _, err := c.DialPod(ctx, "default", "one", closed); api.ReasonOf(err) != api.ReasonUnavailable || !strings.Contains(err.Error(), fmt.Sprintf("cannot connect to port %d of pod one", closed)) {
		t.Errorf("port-forward to a closed port: %v", err)
	}
	if _, err := c.DialPod(ctx, "default", "one", 0); api.ReasonOf(err) != api.ReasonBadRequest {
		t.Errorf("port 0: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

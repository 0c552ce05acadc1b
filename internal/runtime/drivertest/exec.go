package drivertest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// lockedBuffer is a buffer written by a driver's goroutines and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// testExecStream: an exec's input reaches the command and its stdout and
// stderr come back apart, with its exit code; with a TTY the command has
// a terminal of the size asked, resized on request.
func (h *harness) testExecStream(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uid, ip := e.pod()
	e.startServing(uid, ip, "web", nil)
	cmd := func(args ...string) []string { return append(append([]string{}, e.h.command...), args...) }

	var out, errOut lockedBuffer
	code, err := e.d.ExecStream(ctx, uid, "web", runtime.ExecStreams{
		Command: cmd("-cat", "-exit", "5"), Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out, Stderr: &errOut,
	})
	if err != nil || code != 5 || out.String() != "hello\nworld\n" || errOut.String() != "stdin closed\n" {
		t.Errorf("ExecStream with stdin: code %d, err %v, stdout %q, stderr %q; want 5, stdout the input, stderr \"stdin closed\\n\"", code, err, out.String(), errOut.String())
	}

	// No stdin: the command reads an empty input at once.
	out = lockedBuffer{}
	code, err = e.d.ExecStream(ctx, uid, "web", runtime.ExecStreams{Command: cmd("-cat", "-exit", "0"), Stdout: &out})
	if err != nil || code != 0 || out.String() != "" {
		t.Errorf("ExecStream without stdin: code %d, err %v, stdout %q; want 0 and nothing", code, err, out.String())
	}

	// A terminal: its size, a resize, and the exit code.
	inR, inW := io.Pipe()
	defer inW.Close()
	outR, outW := io.Pipe()
	resize := make(chan runtime.TermSize, 1)
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := e.d.ExecStream(ctx, uid, "web", runtime.ExecStreams{
			Command: cmd("-tty"), Stdin: inR, Stdout: outW, TTY: true,
			Size: runtime.TermSize{Cols: 91, Rows: 27}, Resize: resize,
		})
		outW.Close()
		done <- result{code, err}
	}()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
		close(lines)
	}()
	waitLinePrefix := func(want string) bool {
		t.Helper()
		timeout := time.After(20 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Errorf("exec -tty: output ended before %q", want)
					return false
				}
				if strings.HasPrefix(l, want) {
					return true
				}
			case <-timeout:
				t.Errorf("exec -tty: no line %q within 20s", want)
				return false
			}
		}
	}
	// The first size may be applied just after the start (an engine
	// before API 1.42 takes no size at creation): ask until it shows.
	if !waitLinePrefix("tty ") {
		return
	}
	waitSize := func(want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for seen := false; !seen; {
			fmt.Fprintln(inW, "size")
			select {
			case l := <-lines:
				seen = l == "size "+want
			case <-time.After(200 * time.Millisecond):
			}
			if !seen && time.Now().After(deadline) {
				t.Fatalf("exec -tty: the terminal never reported %s", want)
			}
		}
	}
	waitSize("91x27")
	resize <- runtime.TermSize{Cols: 120, Rows: 40}
	waitSize("120x40")
	fmt.Fprintln(inW, "exit")
	go func() {
		for range lines {
		}
	}()
	select {
	case r := <-done:
		if r.err != nil || r.code != 3 {
			t.Errorf("exec -tty: code %d, err %v; want 3", r.code, r.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("exec -tty did not return within 20s of its command exiting")
	}

	// A command that is not there is said once, without a PATH.
	_, err = e.d.ExecStream(ctx, uid, "web", runtime.ExecStreams{Command: []string{"no-such-command-xyz"}})
	if err == nil && h.image == "" {
		t.Errorf("ExecStream of a missing command: no error")
	}
}

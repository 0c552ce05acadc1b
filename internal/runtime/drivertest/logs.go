package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/runtime"
)

func (h *harness) testLogs(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	ctx := context.Background()
	uid, ip := e.pod()
	e.startServing(uid, ip, "web", []string{"-lines", "3"}, "LOG_TAG=run1")
	run1 := "out 1 run1\nerr 1 run1\nout 2 run1\nerr 2 run1\nout 3 run1\nerr 3 run1\n"
	full := h.logsOf(t, e.d, uid, "web", runtime.LogOptions{}, run1)
	if !h.sameLog(full, run1) {
		t.Errorf("logs:\n%q\nwant\n%q", full, run1)
	}
	if got, want := readLogs(t, e.d, uid, "web", runtime.LogOptions{Tail: 2}), h.tail(full, "out 3 run1\nerr 3 run1\n", 2); got != want {
		t.Errorf("logs --tail 2: %q, want %q", got, want)
	}
	if got := readLogs(t, e.d, uid, "web", runtime.LogOptions{Tail: 100}); got != full {
		t.Errorf("logs --tail 100 of 6 lines: %q, want all of them", got)
	}
	if _, err := e.d.Logs(ctx, uid, "web", runtime.LogOptions{Previous: true}); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("logs --previous of a first run: %v, want ErrNotFound", err)
	}
	if _, err := e.d.Logs(ctx, uid, "nope", runtime.LogOptions{}); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("logs of an unknown container: %v, want ErrNotFound", err)
	}

	e.stop(uid, "web", 5*time.Second)
	e.exit(uid, "web", 1)
	e.startServing(uid, ip, "web", []string{"-lines", "1"}, "LOG_TAG=run2")
	if got, want := h.logsOf(t, e.d, uid, "web", runtime.LogOptions{}, "out 1 run2\nerr 1 run2\n"), "out 1 run2\nerr 1 run2\n"; !h.sameLog(got, want) {
		t.Errorf("logs after a restart: %q, want only the new run's %q", got, want)
	}
	if got := readLogs(t, e.d, uid, "web", runtime.LogOptions{Previous: true}); got != full {
		t.Errorf("logs --previous: %q, want the first run's %q", got, full)
	}
	if got, want := readLogs(t, e.d, uid, "web", runtime.LogOptions{Previous: true, Tail: 1}), h.tail(full, "err 3 run1\n", 1); got != want {
		t.Errorf("logs --previous --tail 1: %q, want %q", got, want)
	}
}

// syncBuffer collects what a follow reader delivers.
type syncBuffer struct {
	mu  sync.Mutex
	b   bytes.Buffer
	err error // how the reader ended; nil while it runs
	end chan struct{}
}

func drain(r io.Reader) *syncBuffer {
	sb := &syncBuffer{end: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := r.Read(buf)
			sb.mu.Lock()
			sb.b.Write(buf[:n])
			if err != nil {
				sb.err = err
			}
			sb.mu.Unlock()
			if err != nil {
				close(sb.end)
				return
			}
		}
	}()
	return sb
}

func (sb *syncBuffer) String() string {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return sb.b.String()
}

func (sb *syncBuffer) waitFor(t *testing.T, h *harness, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("follow output to be %q", want), func() (bool, string) {
		got := sb.String()
		return h.sameLog(got, want), got
	})
}

// sameLog compares logs of the test app, whose stderr lines start with
// "err " and stdout lines with anything else: exactly, or stream by
// stream for a driver with AsyncLogs.
func (h *harness) sameLog(got, want string) bool {
	if !h.cfg.AsyncLogs {
		return got == want
	}
	go1, ge := streams(got)
	wo, we := streams(want)
	return go1 == wo && ge == we
}

// tail is what a tail of n lines of full must be: ordered is the answer
// for a driver that keeps the streams interleaved as written; otherwise
// the last n lines of the driver's own full log.
func (h *harness) tail(full, ordered string, n int) string {
	if !h.cfg.AsyncLogs {
		return ordered
	}
	ls := lines(strings.TrimSuffix(full, "\n"))
	return strings.Join(ls[max(0, len(ls)-n):], "") + "\n"
}

func streams(s string) (stdout, stderr string) {
	var o, e strings.Builder
	for _, l := range lines(s) {
		if strings.HasPrefix(l, "err ") {
			e.WriteString(l)
		} else {
			o.WriteString(l)
		}
	}
	return o.String(), e.String()
}

func (sb *syncBuffer) waitEnd(t *testing.T, what string) error {
	t.Helper()
	select {
	case <-sb.end:
		sb.mu.Lock()
		defer sb.mu.Unlock()
		return sb.err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the follow reader did not end within 10s", what)
		return nil
	}
}

func (h *harness) testLogsFollow(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	_, _, port := e.startServing(uid, ip, "web", []string{"-lines", "1"}, "LOG_TAG=boot")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := e.d.Logs(ctx, uid, "web", runtime.LogOptions{Follow: true, Tail: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out := drain(r)
	first := h.tail(h.logsOf(t, e.d, uid, "web", runtime.LogOptions{}, "out 1 boot\nerr 1 boot\n"), "err 1 boot\n", 1)
	out.waitFor(t, h, first)
	get(t, ip, port, "/print?n=2&tag=f1")
	out.waitFor(t, h, first+"out 1 f1\nerr 1 f1\nout 2 f1\nerr 2 f1\n")
	get(t, ip, port, "/print?n=1&tag=f2")
	out.waitFor(t, h, first+"out 1 f1\nerr 1 f1\nout 2 f1\nerr 2 f1\nout 1 f2\nerr 1 f2\n")
	cancel()
	if err := out.waitEnd(t, "after its context was cancelled"); !errors.Is(err, io.EOF) {
		t.Errorf("follow reader ended with %v after cancel, want io.EOF", err)
	}

	// A follow ends by itself once the run ends and its output is read.
	r2, err := e.d.Logs(context.Background(), uid, "web", runtime.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	out2 := drain(r2)
	get(t, ip, port, "/print?n=1&tag=last")
	e.stop(uid, "web", 5*time.Second)
	if err := out2.waitEnd(t, "after the container stopped"); !errors.Is(err, io.EOF) {
		t.Errorf("follow reader ended with %v, want io.EOF", err)
	}
	gotOut, gotErr := streams(out2.String())
	if got := out2.String(); !strings.HasSuffix(gotOut, "out 1 last\n") || !strings.HasSuffix(gotErr, "err 1 last\n") || !strings.HasPrefix(gotOut, "out 1 boot\n") || !strings.HasPrefix(gotErr, "err 1 boot\n") ||
		!h.cfg.AsyncLogs && (!strings.HasSuffix(got, "out 1 last\nerr 1 last\n") || !strings.HasPrefix(got, "out 1 boot\n")) {
		t.Errorf("follow until stop delivered %q; want all of the run from \"out 1 boot\" to \"err 1 last\"", got)
	}
}

// testLogRotation relies on the rule that a log over the cap is rotated by
// the time Logs reads it (and in the background anyway).
func (h *harness) testLogRotation(t *testing.T) {
	capBytes, keep := h.cfg.LogMaxBytes, h.cfg.LogKeep
	if capBytes == 0 {
		t.Skip("Config.LogMaxBytes is 0: the driver's log cap is not known to the harness")
	}
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	_, _, port := e.startServing(uid, ip, "web", nil)
	// Each round writes more than the cap in one write, so each rotation
	// takes exactly one round; the rotated files keep the newest keep rounds.
	const rounds = 4
	size := 1000
	nlines := int(capBytes)/size + 2
	chunk := nlines*size + len("mark-0\n")
	for i := 1; i <= rounds; i++ {
		get(t, ip, port, fmt.Sprintf("/write?lines=%d&size=%d&last=mark-%d", nlines, size, i))
		logs := readLogs(t, e.d, uid, "web", runtime.LogOptions{})
		var want []string
		for j := max(1, i-keep+1); j <= i; j++ {
			want = append(want, fmt.Sprintf("mark-%d", j))
		}
		if diff := cmp.Diff(want, marks(logs)); diff != "" {
			t.Errorf("round %d: marks in the logs with %d rotated file(s) kept (-want +got):\n%s", i, keep, diff)
		}
		if n := len(want) * chunk; len(logs) != n {
			t.Errorf("round %d: %d bytes of logs, want %d (%d round(s) of %d bytes)", i, len(logs), n, len(want), chunk)
		}
	}
	if got, want := readLogs(t, e.d, uid, "web", runtime.LogOptions{Tail: 1}), fmt.Sprintf("mark-%d\n", rounds); got != want {
		t.Errorf("logs --tail 1 after rotation: %q, want %q", got, want)
	}
}

func marks(logs string) []string {
	var out []string
	for _, l := range lines(logs) {
		if strings.HasPrefix(l, "mark-") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func (h *harness) testExec(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	ctx := context.Background()
	uid, ip := e.pod()
	wd := t.TempDir()
	port := freePort(t, ip)
	c := e.app("web", ip, port, nil, "MARK=exec-env")
	c.WorkingDir = wd
	e.start(uid, c)
	get(t, ip, port, "/healthz")

	cmd := func(args ...string) []string { return append(append([]string{}, e.h.command...), args...) }
	res, err := e.d.Exec(ctx, uid, "web", cmd("-print-env", "-exit", "4"))
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	out := string(res.Output)
	if res.ExitCode != 4 || res.Truncated || !strings.HasPrefix(out, "cwd="+wd+"\n") || !strings.Contains(out, "\nMARK=exec-env\n") {
		t.Errorf("Exec: code %d, truncated %v, output %q; want code 4, cwd=%s and MARK=exec-env", res.ExitCode, res.Truncated, out, wd)
	}
	if strings.Contains(out, leakVar) {
		t.Errorf("Slipway's environment leaked into Exec: %q", out)
	}

	res, err = e.d.Exec(ctx, uid, "web", cmd("-bytes", "200000", "-exit", "0"))
	if err != nil || res.ExitCode != 0 || !res.Truncated || len(res.Output) != runtime.MaxExecOutput {
		t.Errorf("Exec printing 200000 bytes: err %v, code %d, truncated %v, %d bytes; want code 0, truncated, %d bytes", err, res.ExitCode, res.Truncated, len(res.Output), runtime.MaxExecOutput)
	}

	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	began := time.Now()
	_, err = e.d.Exec(tctx, uid, "web", cmd("-sleep", "1m"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Exec past its deadline: %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Exec with a 300ms deadline returned after %v", took)
	}

	if _, err := e.d.Exec(ctx, uid, "web", nil); !isErr(err, runtime.ErrInvalid) {
		t.Errorf("Exec of an empty command: %v, want ErrInvalid", err)
	}
	e.stop(uid, "web", 5*time.Second)
	if _, err := e.d.Exec(ctx, uid, "web", cmd("-exit", "0")); !isErr(err, runtime.ErrConflict) {
		t.Errorf("Exec in a stopped container: %v, want ErrConflict", err)
	}
}

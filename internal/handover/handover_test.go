package handover

import (
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeHandler is the owner's composition root, reduced to what the
// protocol calls: it records the calls. (The server's real one is held
// by test/e2e's restart tests.)
type fakeHandler struct {
	lns      []Listener
	mu       sync.Mutex
	released int
	drained  chan struct{}
}

func (h *fakeHandler) Listeners() []Listener { return h.lns }
func (h *fakeHandler) Release(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.released++
	return nil
}
func (h *fakeHandler) Drain() Report {
	for _, l := range h.lns {
		l.L.Close()
	}
	close(h.drained)
	return Report{Open: 3, Finished: 2, Cut: 1}
}
func (h *fakeHandler) Restart() (int, <-chan error, error) { return 0, nil, errors.New("not here") }

// TestTakeoverSharesTheSocket: the taker's listener is the owner's
// socket, so a connection made while the owner has stopped accepting is
// not refused but accepted by the taker.
func TestTakeoverSharesTheSocket(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	h := &fakeHandler{lns: []Listener{{Name: "http", L: ln}}, drained: make(chan struct{})}
	path := filepath.Join(dir, SocketName)
	o, err := Listen(path, Generation{Number: 4, Version: "v1", PID: 1}, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	go o.Serve()
	defer o.Close()

	tk, err := Dial(path, Generation{Version: "v2", PID: 2})
	if err != nil || tk == nil {
		t.Fatalf("Dial: %v, %v", tk, err)
	}
	defer tk.Close()
	if tk.Old.Number != 4 || tk.Old.Version != "v1" {
		t.Errorf("old generation %+v", tk.Old)
	}
	got := tk.Take("http")
	if got == nil || got.Addr().String() != addr {
		t.Fatalf("listener %v, want one on %s", got, addr)
	}
	if err := tk.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait, err := tk.Drain()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep != (Report{Open: 3, Finished: 2, Cut: 1}) || rep.Outcome() != "deadline" {
		t.Errorf("report %+v", rep)
	}
	<-o.Drained()
	// The owner closed its copy: the socket still takes connections, for
	// the taker.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect after the owner closed its listener: %v", err)
	}
	defer c.Close()
	got.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	ac, err := got.Accept()
	if err != nil {
		t.Fatal(err)
	}
	ac.Write([]byte("hi"))
	b := make([]byte, 2)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "hi" {
		t.Fatalf("read %q, %v", b, err)
	}
	ac.Close()
	if h.released != 1 {
		t.Errorf("released %d times", h.released)
	}
}

// TestNoOwner: a socket file nobody answers (a crash left it) is no
// owner, and neither is no file.
func TestNoOwner(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketName)
	if tk, err := Dial(path, Generation{}); tk != nil || err != nil {
		t.Fatalf("no file: %v, %v", tk, err)
	}
	o, err := Listen(path, Generation{Number: 1}, &fakeHandler{drained: make(chan struct{})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.ln.Close() // as a crash leaves it: the file stays, nobody listens
	if tk, err := Dial(path, Generation{}); tk != nil || err != nil {
		t.Fatalf("stale file: %v, %v", tk, err)
	}
}

// TestTakerGoneBeforeRelease leaves the owner as it was: a second taker
// gets the listeners again.
func TestTakerGoneBeforeRelease(t *testing.T) {
	dir := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	h := &fakeHandler{lns: []Listener{{Name: "http", L: ln}}, drained: make(chan struct{})}
	path := filepath.Join(dir, SocketName)
	o, err := Listen(path, Generation{Number: 1}, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	go o.Serve()
	defer o.Close()
	tk, err := Dial(path, Generation{})
	if err != nil {
		t.Fatal(err)
	}
	tk.Close()
	var tk2 *Takeover
	deadline := time.Now().Add(5 * time.Second)
	for {
		tk2, err = Dial(path, Generation{})
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the owner notices the first one left
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tk2.Close()
	if tk2.Take("http") == nil {
		t.Fatal("second taker got no listener")
	}
	if h.released != 0 {
		t.Errorf("released %d times", h.released)
	}
}

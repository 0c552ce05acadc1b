package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Tests take their addresses from corners of the loopback ranges nothing
// else in Slipway's tests uses, and always let the kernel choose ports.
var (
	nextVIP     atomic.Uint32
	nextBackend atomic.Uint32
)

// freeVIP returns a VIP:port from 127.30.250.0/24 that is free right now.
func freeVIP(t testing.TB) netip.AddrPort {
	t.Helper()
	ip := fmt.Sprintf("127.30.250.%d", 1+nextVIP.Add(1)%250)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	ap := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return ap
}

func backendIP() string {
	n := nextBackend.Add(1)
	return fmt.Sprintf("127.20.%d.%d", 240+n/250%10, 1+n%250)
}

// backend is a real HTTP server on its own loopback address. It answers
// "<name> <client address>" so that a test can tell which backend and which
// connection served a request, and counts the connections it accepted.
type backend struct {
	name     string
	addr     netip.AddrPort
	srv      *http.Server
	accepted atomic.Int64
	requests atomic.Int64
	done     chan struct{}
}

func startBackend(t testing.TB, name string) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", backendIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	b := &backend{name: name, addr: netip.MustParseAddrPort(ln.Addr().String()), done: make(chan struct{})}
	b.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.requests.Add(1)
			if d := r.URL.Query().Get("sleep"); d != "" {
				pause, _ := time.ParseDuration(d)
				time.Sleep(pause) // the handler's work, not synchronisation
			}
			fmt.Fprintf(w, "%s %s", b.name, r.RemoteAddr)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				b.accepted.Add(1)
			}
		},
		ErrorLog: nil,
	}
	go func() {
		defer close(b.done)
		b.srv.Serve(ln)
	}()
	t.Cleanup(b.close)
	return b
}

func (b *backend) close() {
	b.srv.Close()
	<-b.done
}

// shutdown stops b gracefully, as an app does on SIGTERM.
func (b *backend) shutdown(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return b.srv.Shutdown(ctx)
}

func newProxy(t testing.TB) *Proxy {
	t.Helper()
	var log *slog.Logger
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := New(Options{Logger: log, DialTimeout: time.Second})
	t.Cleanup(func() { p.Close() })
	return p
}

// oneService is a table of a single TCP service at vip.
func oneService(vip netip.AddrPort, eps ...netip.AddrPort) Table {
	return Table{Services: []Service{{Key: "default/test", VIP: vip.Addr(), Ports: []Port{{Port: vip.Port(), Protocol: "TCP", Endpoints: eps}}}}}
}

func addrs(bs ...*backend) []netip.AddrPort {
	out := make([]netip.AddrPort, len(bs))
	for i, b := range bs {
		out[i] = b.addr
	}
	return out
}

func mustApply(t testing.TB, p *Proxy, tb Table) {
	t.Helper()
	if err := p.Apply(tb); err != nil {
		t.Fatal(err)
	}
}

// rawConn is one client connection speaking HTTP/1.1 by hand, so that a
// test controls exactly which connection each request uses.
type rawConn struct {
	c net.Conn
	r *bufio.Reader
}

func dial(t testing.TB, addr netip.AddrPort) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr.String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, r: bufio.NewReader(c)}
}

// get sends one request and returns the body, or an error.
func (rc *rawConn) get(path string) (string, error) {
	rc.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(rc.c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(rc.r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

func (rc *rawConn) mustGet(t testing.TB, path string) string {
	t.Helper()
	body, err := rc.get(path)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// servedBy returns the backend name of a response body.
func servedBy(body string) string {
	name, _, _ := strings.Cut(body, " ")
	return name
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling interval, not synchronisation
	}
}

// collect gathers errors from concurrent goroutines.
type collect struct {
	mu   sync.Mutex
	errs []string
}

func (c *collect) add(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.errs) < 20 {
		c.errs = append(c.errs, fmt.Sprintf(format, args...))
	}
}

func (c *collect) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

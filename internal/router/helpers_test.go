package router_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// upstream is a real HTTP server on 127.0.0.1 answering with its name and,
// as JSON, the request headers it received.
type upstream struct {
	name string
	addr netip.AddrPort
	srv  *http.Server
	hits atomic.Int64
	// status, when not 0, is the status it answers with.
	status atomic.Int32

	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
	// block, when set, holds requests to /slow until it is closed.
	block chan struct{}
	// entered is signalled when a /slow request arrives.
	entered chan struct{}
}

type echo struct {
	Name   string      `json:"name"`
	Host   string      `json:"host"`
	Header http.Header `json:"header"`
}

func newUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, addr: netip.MustParseAddrPort(ln.Addr().String()), conns: map[net.Conn]http.ConnState{},
		block: make(chan struct{}), entered: make(chan struct{}, 16)}
	u.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.hits.Add(1)
			io.Copy(io.Discard, r.Body)
			if r.URL.Path == "/slow" {
				u.entered <- struct{}{}
				<-u.block
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Keep-Alive", "timeout=5") // hop-by-hop: must not reach the client
			w.Header().Set("X-Upstream", name)
			if st := u.status.Load(); st != 0 {
				w.WriteHeader(int(st))
			}
			json.NewEncoder(w).Encode(echo{Name: name, Host: r.Host, Header: r.Header})
		}),
		ConnState: func(c net.Conn, s http.ConnState) {
			u.mu.Lock()
			defer u.mu.Unlock()
			if s == http.StateClosed || s == http.StateHijacked {
				delete(u.conns, c)
			} else {
				u.conns[c] = s
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.shutdown(t) })
	return u
}

func (u *upstream) openConns() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.conns)
}

func (u *upstream) shutdown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("shutdown %s: %v", u.name, err)
	}
}

// testEngine is the engine of the servers the tests start: the standard
// one (the Router as a plain handler) unless TestFastEngine runs a test
// again with EngineFast.
var testEngine = fast.EngineStd

// serveRouter serves r on a real listener and returns its base URL.
func serveRouter(t *testing.T, r *router.Router) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if testEngine == fast.EngineFast {
		return serveFastEngine(t, r, ln)
	}
	srv := &http.Server{Handler: std.NewHandler(r), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// refusedAddr is a loopback address nothing listens on.
func refusedAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	return a
}

// get sends a request for host and path to the router at base.
func get(c *http.Client, base, host, path string, mod ...func(*http.Request)) (*http.Response, []byte, error) {
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Host = host
	for _, m := range mod {
		m(req)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

func apply(t *testing.T, r *router.Router, routes ...router.RouteConfig) {
	t.Helper()
	r.Apply(router.MustBuild(t, router.Input{Routes: routes}))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

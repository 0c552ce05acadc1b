package router_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// bodyUpstream answers with status and the body it received, and counts
// requests by method.
type bodyUpstream struct {
	addr   netip.AddrPort
	status atomic.Int32
	mu     sync.Mutex
	hits   map[string]int
}

func newBodyUpstream(t *testing.T, status int) *bodyUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &bodyUpstream{addr: netip.MustParseAddrPort(ln.Addr().String()), hits: map[string]int{}}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		u.mu.Lock()
		u.hits[req.Method]++
		u.mu.Unlock()
		st := int(u.status.Load())
		w.WriteHeader(st)
		fmt.Fprintf(w, "%d %s", st, b)
	})}
	u.status.Store(int32(status))
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func (u *bodyUpstream) count(method string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.hits[method]
}

// TestRetriesOnStatus: a route retrying 503 on another endpoint, one of
// whose two endpoints answers 503. Under 16 concurrent clients every
// idempotent request (GET, and PUT with a body, which the router buffers)
// gets the good endpoint's 200 with its whole body, each 503 counted as a
// retry; POSTs are not retried and get the 503s. A 500, not listed, is
// passed on.
func TestRetriesOnStatus(t *testing.T) {
	bad, good := newBodyUpstream(t, 503), newBodyUpstream(t, 200)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	rc := router.OneBackend("p/rt", "rt.test", "", bad.addr.String(), good.addr.String())
	rc.Retries = router.Retries{Attempts: 2, OnStatus: []int{502, 503}}
	apply(t, r, rc)

	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	answers := map[string]int{}
	var wg sync.WaitGroup
	var bad200 atomic.Int64
	for g := range 16 {
		wg.Go(func() {
			for i := range 30 {
				method := []string{"GET", "PUT", "POST"}[i%3]
				payload := fmt.Sprintf("body %d/%d", g, i)
				var rd io.Reader
				if method != "GET" {
					rd = strings.NewReader(payload)
				}
				req, _ := http.NewRequest(method, base+"/", rd)
				req.Host = "rt.test"
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := "200 "
				if method != "GET" {
					want += payload
				}
				if resp.StatusCode == 200 && string(b) != want {
					bad200.Add(1)
					t.Errorf("%s: body %q, want %q", method, b, want)
				}
				mu.Lock()
				answers[fmt.Sprintf("%s %d", method, resp.StatusCode)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if answers["GET 200"] != 160 || answers["PUT 200"] != 160 || answers["POST 200"]+answers["POST 503"] != 160 || answers["POST 503"] == 0 {
		t.Errorf("answers %v: want every GET and PUT 200, some POST 503", answers)
	}
	if n := bad.count("POST"); n != answers["POST 503"] {
		t.Errorf("bad endpoint saw %d POSTs, want %d (each answered 503, none retried)", n, answers["POST 503"])
	}
	var st router.RouteStats
	waitFor(t, "480 requests counted", func() bool { st, _ = r.Stats("p/rt"); return st.Total.Total() == 480 })
	if want := int64(bad.count("GET") + bad.count("PUT")); st.Total.Retries != want || want == 0 {
		t.Errorf("retries %d, want %d (each idempotent request the bad endpoint answered)", st.Total.Retries, want)
	}

	// A status not listed is not retried.
	bad.status.Store(500)
	rc.Backends[0].Revisions[0].Endpoints = rc.Backends[0].Revisions[0].Endpoints[:1]
	apply(t, r, rc)
	resp, _, err := get(c, base, "rt.test", "/")
	if err != nil || resp.StatusCode != 500 {
		t.Fatalf("unlisted status: %v %v, want 500", resp, err)
	}
}

func TestRetriesValidation(t *testing.T) {
	for _, tc := range []struct {
		p    router.Retries
		want string
	}{
		{router.Retries{Attempts: -1}, "route p/x: retries.attempts -1: must be 0 or more"},
		{router.Retries{Attempts: 1, OnStatus: []int{404}}, "route p/x: retries.onStatus[0] 404: must be a server error status (500-599)"},
	} {
		rc := router.OneBackend("p/x", "x.test", "", "127.0.0.1:1")
		rc.Retries = tc.p
		_, errs := router.Build(router.Input{Routes: []router.RouteConfig{rc}})
		if len(errs) != 1 || errs[0].Error() != tc.want {
			t.Errorf("Build(%+v) = %v, want %q", tc.p, errs, tc.want)
		}
	}
}

// TestRetryOnAPooledConnectionTheEndpointDropped: an endpoint that serves
// the first request of each connection and drops the connection after
// reading the second (as an app closing an idle connection just as the
// router reuses it). The router's second request goes on the pooled
// connection and fails after it was sent; a GET, and a POST whose body the
// frontend buffered, are sent again on a fresh connection to the same,
// only, endpoint, and the clients see no error.
func TestRetryOnAPooledConnectionTheEndpointDropped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	served := map[net.Conn]int{}
	var dropped, droppedPosts atomic.Int64
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		c := req.Context().Value(connKey{}).(net.Conn)
		mu.Lock()
		served[c]++
		n := served[c]
		mu.Unlock()
		if n == 2 {
			dropped.Add(1)
			if req.Method == "POST" {
				droppedPosts.Add(1)
			}
			if hc, _, err := http.NewResponseController(w).Hijack(); err == nil {
				hc.Close()
			}
			return
		}
		fmt.Fprintf(w, "%s %s", req.Method, b)
	}), ConnContext: func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) }}
	go up.Serve(ln)
	defer up.Close()

	r := router.New(router.Options{})
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{})
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(fl)
	defer s.Shutdown(context.Background())
	apply(t, r, router.OneBackend("p/d", "d.test", "", ln.Addr().String()))
	c := &http.Client{}
	defer c.CloseIdleConnections()
	for i := range 6 {
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", fmt.Sprintf("order %d", i)
		}
		req, _ := http.NewRequest(method, "http://"+fl.Addr().String()+"/", strings.NewReader(body))
		req.Host = "d.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := method + " " + body; resp.StatusCode != 200 || string(b) != want {
			t.Fatalf("request %d: %d %q, want 200 %q", i, resp.StatusCode, b, want)
		}
	}
	if dropped.Load() == 0 {
		t.Fatal("the endpoint never dropped a pooled connection: the test tested nothing")
	}
	// Go's transport sends a GET again by itself; the POSTs are the
	// router's to retry.
	st, _ := r.Stats("p/d")
	if st.Total.Retries != droppedPosts.Load() || droppedPosts.Load() == 0 {
		t.Errorf("retries %d, want %d (one per dropped POST)", st.Total.Retries, droppedPosts.Load())
	}
}

type connKey struct{}

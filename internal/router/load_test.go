package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// soakDuration is how long TestNoFailedRequestUnderChurn flips weights:
// 3 s by default so that the package stays well under a minute in CI;
// SLIPWAY_SOAK=20s runs the full 20 s.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv("SLIPWAY_SOAK")
	if v == "" {
		return 3 * time.Second
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		t.Fatalf("SLIPWAY_SOAK=%q: must be a positive duration such as 20s", v)
	}
	return d
}

// TestNoFailedRequestUnderChurn drives 64 keep-alive clients (8 of them
// sticky, keeping the affinity cookie) and one client opening a
// connection per request through the router while the route's weights
// flip 100/0 ↔ 0/100 every 100 ms, endpoints are added and removed (a
// removed upstream is shut down only once WaitDrained returned), and
// 1,000 changes of other routes are applied. Every response must be a 200
// from an upstream of the route, none may fail, and a sticky client never
// changes backend (each backend always has a ready endpoint).
func TestNoFailedRequestUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	duration := soakDuration(t)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	other := newUpstream(t, "other")

	var (
		mu      sync.Mutex
		backend = map[string][]*upstream{"a": {newUpstream(t, "a0")}, "b": {newUpstream(t, "b0")}}
		serial  int
		flip    bool
		others  []router.RouteConfig
	)
	config := func() []router.RouteConfig {
		rc := router.RouteConfig{Key: "p/ld", Host: "ld.test", Affinity: router.Affinity{CookieName: "ld"}}
		for i, name := range []string{"a", "b"} {
			w := int32(100)
			if flip == (i == 0) {
				w = 0
			}
			var eps []netip.AddrPort
			for _, u := range backend[name] {
				eps = append(eps, u.addr)
			}
			rc.Backends = append(rc.Backends, router.BackendConfig{Service: "p/" + name, Weight: w,
				Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: eps}}})
		}
		return append([]router.RouteConfig{rc}, others...)
	}
	mu.Lock()
	apply(t, r, config()...)
	mu.Unlock()

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var requests, failures, switches atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	// check sends one request and returns the upstream that answered.
	check := func(c *http.Client, i int) string {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/req/%d", base, i), nil)
		req.Host = "ld.test"
		resp, err := c.Do(req)
		if err != nil {
			fail("request: %v", err)
			return ""
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		requests.Add(1)
		var e echo
		switch {
		case err != nil:
			fail("reading response: %v", err)
		case resp.StatusCode != 200:
			fail("status %d: %s", resp.StatusCode, body)
		case json.Unmarshal(body, &e) != nil || e.Name != resp.Header.Get("X-Upstream") || e.Host != "ld.test" || e.Header.Get("X-Forwarded-For") != "127.0.0.1" ||
			!strings.HasPrefix(e.Name, "a") && !strings.HasPrefix(e.Name, "b"):
			fail("bad response: %q", body)
		default:
			return e.Name
		}
		return ""
	}

	var wg sync.WaitGroup
	keepAlive := &http.Transport{MaxIdleConnsPerHost: 64}
	// Connections dialled but never used would hold the router's server
	// Shutdown for seconds.
	defer keepAlive.CloseIdleConnections()
	for n := range 64 {
		wg.Go(func() {
			c := &http.Client{Transport: keepAlive}
			sticky := n < 8
			if sticky {
				c.Jar, _ = cookiejar.New(nil)
			}
			first := ""
			for i := 0; ctx.Err() == nil; i++ {
				got := check(c, i)
				switch {
				case !sticky || got == "":
				case first == "":
					first = got
				case got[0] != first[0]:
					if switches.Add(1) <= 5 {
						t.Errorf("sticky client %d moved from backend %c (%s) to %c (%s)", n, first[0], first, got[0], got)
					}
				}
			}
		})
	}
	wg.Go(func() {
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for i := 0; ctx.Err() == nil; i++ {
			check(fresh, i)
		}
	})

	// 1,000 changes of other routes, spread over the run.
	var unrelated atomic.Int64
	wg.Go(func() {
		for i := range 1000 {
			mu.Lock()
			if len(others) >= 50 {
				others = others[1:]
			}
			others = append(others, router.OneBackend(fmt.Sprintf("p/o%d", i), fmt.Sprintf("o%d.test", i), "", other.addr.String()))
			apply(t, r, config()...)
			mu.Unlock()
			unrelated.Add(1)
			time.Sleep(duration / 1200) // pacing, not synchronisation
		}
	})

	// The churn: every 100 ms flip the weights, add an endpoint to one
	// backend and remove the oldest of the other when it has two or more.
	var drains sync.WaitGroup
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	changes := 0
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
		mu.Lock()
		flip = !flip
		serial++
		grow, shrink := "a", "b"
		if serial%2 == 0 {
			grow, shrink = "b", "a"
		}
		backend[grow] = append(backend[grow], newUpstream(t, fmt.Sprintf("%s%d", grow, serial)))
		var gone *upstream
		if len(backend[shrink]) >= 2 {
			gone = backend[shrink][0]
			backend[shrink] = backend[shrink][1:]
		}
		apply(t, r, config()...)
		mu.Unlock()
		changes++
		if gone != nil {
			drains.Go(func() {
				dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := r.WaitDrained(dctx, gone.addr); err != nil {
					t.Errorf("WaitDrained(%s): %v", gone.name, err)
				}
				gone.shutdown(t)
			})
		}
	}
	t0 := time.Now()
	wg.Wait()
	t1 := time.Now()
	drains.Wait()
	t.Logf("%d requests, %d flips, %d unrelated changes; clients ended in %s, drains in %s", requests.Load(), changes, unrelated.Load(), t1.Sub(t0), time.Since(t1))
	// Removing every endpoint closes every pooled upstream connection,
	// including those the transport dialled but never used.
	apply(t, r)
	mu.Lock()
	for _, us := range backend {
		for _, u := range us {
			waitFor(t, "connections to "+u.name+" to close", func() bool { return u.openConns() == 0 })
		}
	}
	mu.Unlock()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, requests.Load())
	}
	if switches.Load() != 0 {
		t.Fatalf("sticky clients switched backend %d times", switches.Load())
	}
	// A floor, not a speed: on a 2-core machine loaded by other test
	// binaries under -race this test has served as few as 360 requests.
	if unrelated.Load() != 1000 || changes < 10 || requests.Load() < 100 {
		t.Fatalf("too little load to mean anything: %d requests, %d flips, %d unrelated changes", requests.Load(), changes, unrelated.Load())
	}
}

// TestObservedSplitOverHTTP: 10,000 requests from 32 concurrent clients
// through a route weighted 30/70, then one whose second backend has two
// revisions split 25/75: the share each backend and revision served, as
// the clients saw it, is within 3 points of the weights, and the router's
// own counters (what `slipway describe route` shows) agree exactly with
// the clients.
func TestObservedSplitOverHTTP(t *testing.T) {
	a, b1, b2 := namedUpstream(t, "a"), namedUpstream(t, "b1"), namedUpstream(t, "b2")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.RouteConfig{Key: "p/s", Host: "s.test", Backends: []router.BackendConfig{
		{Service: "p/a", Weight: 30, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{a.addr}}}},
		{Service: "p/b", Weight: 70, RevisionWeights: true, Revisions: []router.RevisionConfig{
			{Revision: 1, Weight: 25, Endpoints: []netip.AddrPort{b1.addr}},
			{Revision: 2, Weight: 75, Endpoints: []netip.AddrPort{b2.addr}}}},
	}})
	const total = 10000
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var mu sync.Mutex
	seen := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= total {
				resp, _, err := get(c, base, "s.test", "/")
				if err != nil || resp.StatusCode != 200 {
					t.Errorf("%v %v", resp, err)
					return
				}
				mu.Lock()
				seen[resp.Header.Get("X-Upstream")]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// a: 30%; b1: 70% × 25% = 17.5%; b2: 70% × 75% = 52.5%.
	want := map[string]float64{"a": 30, "b1": 17.5, "b2": 52.5}
	for name, w := range want {
		if got := 100 * float64(seen[name]) / total; math.Abs(got-w) > 3 {
			t.Errorf("%s served %.1f%%, want %.1f ± 3 (%v)", name, got, w, seen)
		}
	}
	var st router.RouteStats
	waitFor(t, "all requests counted", func() bool { st, _ = r.Stats("p/s"); return st.Total.Total() == total })
	counted := map[string]int{}
	for _, rv := range st.Revisions {
		counted[fmt.Sprintf("%s/%d", rv.Service, rv.Revision)] = int(rv.Requests[2])
	}
	if counted["p/a/1"] != seen["a"] || counted["p/b/1"] != seen["b1"] || counted["p/b/2"] != seen["b2"] {
		t.Errorf("router counted %v, clients saw %v", counted, seen)
	}
}

// TestShortUpstreamKeepAlive: the upstream closes idle connections after
// 1 s, well before the router's pool does (4 s), and clients send requests
// 1–2 s apart, so the router often holds a pooled connection the upstream
// is closing. 400 requests (200 clients × 2, GETs and POSTs with bodies,
// through the frontend): no error reaches a client.
func TestShortUpstreamKeepAlive(t *testing.T) {
	t.Parallel() // mostly waiting: deadlines and spaced requests
	if testing.Short() {
		t.Skip("takes seconds")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var served atomic.Int64
	up := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			b, _ := io.ReadAll(req.Body)
			served.Add(1)
			fmt.Fprintf(w, "%s %s", req.Method, b)
		}),
		IdleTimeout: time.Second,
	}
	go up.Serve(ln)
	defer up.Close()
	r := router.New(router.Options{})
	if r.Options().IdleConnTimeout <= time.Second {
		t.Fatalf("the router's pool idle timeout %s must exceed the upstream's 1 s for this test", r.Options().IdleConnTimeout)
	}
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{})
	fl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(fl)
	defer s.Shutdown(context.Background())
	apply(t, r, router.OneBackend("p/ka", "ka.test", "", ln.Addr().String()))
	base := "http://" + fl.Addr().String()

	tr := &http.Transport{MaxIdleConnsPerHost: 200}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var failures atomic.Int64
	var wg sync.WaitGroup
	for g := range 200 {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 2 {
				if i > 0 {
					// The workload: requests 1-2 s apart (not a wait for anything).
					time.Sleep(time.Second + time.Duration(rnd.Int64N(int64(time.Second))))
				}
				method, body := "GET", ""
				if (g+i)%2 == 1 {
					method, body = "POST", fmt.Sprintf("p%d-%d", g, i)
				}
				req, _ := http.NewRequest(method, base+"/", strings.NewReader(body))
				req.Host = "ka.test"
				resp, err := c.Do(req)
				if err != nil {
					failures.Add(1)
					t.Errorf("client %d request %d: %v", g, i, err)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if want := method + " " + body; resp.StatusCode != 200 || string(b) != want {
					failures.Add(1)
					t.Errorf("client %d request %d: %d %q, want 200 %q", g, i, resp.StatusCode, b, want)
				}
			}
		})
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of 400 requests failed", failures.Load())
	}
	if served.Load() < 400 {
		t.Fatalf("upstream served %d, want at least 400", served.Load())
	}
}

// namedUpstream is a server on 127.0.0.1 answering every request with an
// empty 200 naming itself in X-Upstream: the cheapest answer, for tests
// that count many requests.
func namedUpstream(t *testing.T, name string) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, addr: netip.MustParseAddrPort(ln.Addr().String())}
	u.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Upstream", name)
	}), ReadHeaderTimeout: 10 * time.Second}
	go u.srv.Serve(ln)
	t.Cleanup(func() { u.shutdown(t) })
	return u
}

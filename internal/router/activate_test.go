package router_test

import (
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// activating is a route to App p/web that holds requests while it has no
// endpoint.
func activating(timeout time.Duration, maxHeld int, eps ...netip.AddrPort) router.RouteConfig {
	return router.RouteConfig{Key: "p/web", Project: "p", Host: "web.test", Backends: []router.BackendConfig{{Service: "p/web", App: "p/web", Weight: 1,
		Activation: &router.Activation{Timeout: timeout, MaxHeld: maxHeld},
		Revisions:  []router.RevisionConfig{{Revision: 1, Endpoints: eps}}}}}
}

func eachEngine(t *testing.T, f func(t *testing.T, engine string)) {
	for _, e := range []string{fast.EngineStd, fast.EngineFast} {
		t.Run(e, func(t *testing.T) { f(t, e) })
	}
}

// A burst for an App without a ready pod is held, not refused: the router
// asks for a pod once per held request (the callback de-duplicates), the
// held requests count in flight, and the table that brings an endpoint
// releases every one of them to it.
func TestHeldRequestsAreReleasedByTheTableWithAnEndpoint(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		up := newUpstream(t, "v1")
		var asked atomic.Int64
		r := router.New(router.Options{Activate: func(app string) {
			if app == "p/web" {
				asked.Add(1)
			}
		}})
		apply(t, r, activating(30*time.Second, 100))
		base := "http://" + serveEngine(t, r, std.ServerOptions{}, engine)
		const n = 64
		var wg sync.WaitGroup
		var ok atomic.Int64
		var bad []string
		var mu sync.Mutex
		for range n {
			wg.Go(func() {
				resp, body, err := get(&http.Client{}, base, "web.test", "/")
				if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"v1"`) {
					mu.Lock()
					if len(bad) < 3 {
						bad = append(bad, describeAnswer(resp, body, err))
					}
					mu.Unlock()
					return
				}
				ok.Add(1)
			})
		}
		waitFor(t, "64 requests held", func() bool { return r.Held("p/web") == n })
		if s, _ := r.AppRoutes("p/web"); s.InFlight != n {
			t.Errorf("in flight %d with %d held: held requests count for concurrency", s.InFlight, n)
		}
		if asked.Load() < 1 {
			t.Errorf("Activate was not called")
		}
		apply(t, r, activating(30*time.Second, 100, up.addr))
		wg.Wait()
		if ok.Load() != n {
			t.Fatalf("%d of %d held requests answered 200; others: %q", ok.Load(), n, bad)
		}
		if r.Held("p/web") != 0 {
			t.Errorf("%d still held", r.Held("p/web"))
		}
	})
}

func describeAnswer(resp *http.Response, body []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	return resp.Status + " Retry-After " + resp.Header.Get("Retry-After") + ": " + string(body)
}

// Past the activation timeout a held request gets a 503 with Retry-After;
// past maxHeld a request gets one at once; a route without activation
// still answers its plain 503.
func TestHeldRequestsTimeOutAndAreBounded(t *testing.T) {
	eachEngine(t, func(t *testing.T, engine string) {
		r := router.New(router.Options{})
		apply(t, r, activating(300*time.Millisecond, 1), router.OneBackend("p/plain", "plain.test", ""))
		base := "http://" + serveEngine(t, r, std.ServerOptions{}, engine)
		first := make(chan *http.Response, 1)
		start := time.Now()
		go func() {
			resp, _, _ := get(&http.Client{}, base, "web.test", "/")
			first <- resp
		}()
		waitFor(t, "one request held", func() bool { return r.Held("p/web") == 1 })
		resp, _, err := get(&http.Client{}, base, "web.test", "/")
		if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "5" {
			t.Errorf("past maxHeld 1: %s, want 503 with Retry-After 5", describeAnswer(resp, nil, err))
		}
		got := <-first
		if got == nil || got.StatusCode != 503 || got.Header.Get("Retry-After") != "5" {
			t.Fatalf("held past the timeout: %v, want 503 with Retry-After 5", got)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("answered after %v, before the 300ms activation timeout", d)
		}
		resp, _, err = get(&http.Client{}, base, "plain.test", "/")
		if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "" {
			t.Errorf("route without activation: %s, want a plain 503", describeAnswer(resp, nil, err))
		}
	})
}

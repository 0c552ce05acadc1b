package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestNoFailedRequestUnderChurn drives 64 keep-alive clients and one
// client opening a connection per request through the router while the
// route's weights flip 100/0 ↔ 0/100 every 100 ms and endpoints are added
// and removed; a removed upstream is shut down only once WaitDrained
// returned. Every response must be a 200 from an upstream of the backend
// that was eligible, and none may fail.
func TestNoFailedRequestUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	const duration = 3 * time.Second
	r := New(Options{})
	base := serveRouter(t, r)

	var (
		mu      sync.Mutex
		backend = map[string][]*upstream{"a": {newUpstream(t, "a0")}, "b": {newUpstream(t, "b0")}}
		serial  int
		flip    bool
	)
	config := func() RouteConfig {
		rc := RouteConfig{Key: "p/ld", Host: "ld.test"}
		for i, name := range []string{"a", "b"} {
			w := int32(100)
			if flip == (i == 0) {
				w = 0
			}
			var eps []netip.AddrPort
			for _, u := range backend[name] {
				eps = append(eps, u.addr)
			}
			rc.Backends = append(rc.Backends, BackendConfig{Service: "p/" + name, Weight: w,
				Revisions: []RevisionConfig{{Revision: 1, Endpoints: eps}}})
		}
		return rc
	}
	mu.Lock()
	apply(t, r, config())
	mu.Unlock()

	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	var requests, failures atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 5 {
			t.Errorf(format, args...)
		}
	}
	check := func(c *http.Client, i int) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/req/%d", base, i), nil)
		req.Host = "ld.test"
		resp, err := c.Do(req)
		if err != nil {
			fail("request: %v", err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e echo
		switch {
		case err != nil:
			fail("reading response: %v", err)
		case resp.StatusCode != 200:
			fail("status %d: %s", resp.StatusCode, body)
		case json.Unmarshal(body, &e) != nil || e.Name != resp.Header.Get("X-Upstream") || e.Host != "ld.test" || e.Header.Get("X-Forwarded-For") != "127.0.0.1":
			fail("bad response: %q", body)
		}
		requests.Add(1)
	}

	var wg sync.WaitGroup
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	// Connections dialled but never used would hold the router's server
	// Shutdown for seconds.
	defer keepAlive.CloseIdleConnections()
	for range 64 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				check(keepAlive, i)
			}
		})
	}
	wg.Go(func() {
		fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		for i := 0; ctx.Err() == nil; i++ {
			check(fresh, i)
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
		apply(t, r, config())
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
	t.Logf("%d requests, %d table changes; clients ended in %s, drains in %s", requests.Load(), changes, t1.Sub(t0), time.Since(t1))
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
	if requests.Load() < 1000 || changes < 10 {
		t.Fatalf("too little load to mean anything: %d requests, %d changes", requests.Load(), changes)
	}
}

package router_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
)

// fakeClock is a settable clock for passive health.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time { return time.Unix(0, c.ns.Load()) }

func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Unix(1000, 0).UnixNano())
	return c
}

// TestPassiveHealthUnderLoad: a route with one live and two dead
// endpoints, under 32 concurrent clients. No client sees an error (a
// request whose connect is refused goes to another endpoint); the dead
// ones are ejected after 3 failed connects each and then get no more
// connects while ejected. With only ejected endpoints left they are tried
// again (502, not 503); past the back-off an endpoint that listens again
// is back.
func TestPassiveHealthUnderLoad(t *testing.T) {
	clk := newFakeClock()
	live := newUpstream(t, "live")
	dead1, dead2 := refusedAddr(t), refusedAddr(t)
	r := router.New(router.Options{Now: clk.now})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/h", "h.test", "", dead1.String(), dead2.String(), live.addr.String()))

	var wg sync.WaitGroup
	var failures atomic.Int64
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer c.CloseIdleConnections()
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				resp, body, err := get(c, base, "h.test", fmt.Sprintf("/%d/%d", g, i))
				if err != nil || resp.StatusCode != 200 || resp.Header.Get("X-Upstream") != "live" {
					if failures.Add(1) <= 5 {
						t.Errorf("request %d/%d: %v %v %q", g, i, resp, err, body)
					}
				}
			}
		})
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.Fatalf("%d of 1600 requests failed", failures.Load())
	}
	for _, d := range []string{dead1.String(), dead2.String()} {
		if !r.Ejected(router.AP(d)) {
			t.Errorf("%s is not ejected", d)
		}
		s, _ := r.EndpointStats(router.AP(d))
		before := s.UpstreamErrors
		// Picked before its ejection took effect by at most the 32 clients.
		if before < 3 || before > 3+32 {
			t.Errorf("%s: %d failed connects, want 3 to 35", d, before)
		}
		for i := range 100 {
			if resp, _, err := get(c, base, "h.test", "/"); err != nil || resp.StatusCode != 200 {
				t.Fatalf("request %d after ejection: %v %v", i, resp, err)
			}
		}
		if s, _ := r.EndpointStats(router.AP(d)); s.UpstreamErrors != before {
			t.Errorf("%s got %d more connects while ejected", d, s.UpstreamErrors-before)
		}
	}

	// Only ejected endpoints: they are tried all the same.
	apply(t, r, router.OneBackend("p/h", "h.test", "", dead1.String(), dead2.String()))
	resp, _, err := get(c, base, "h.test", "/")
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("only dead endpoints: %v %v, want 502", resp, err)
	}

	// dead1 listens again; past its back-off (at most 2 s by now) it is
	// tried and back in traffic.
	ln, err := net.Listen("tcp", dead1.String())
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", dead1, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "back") })}
	go srv.Serve(ln)
	defer srv.Close()
	clk.advance(time.Minute)
	apply(t, r, router.OneBackend("p/h", "h.test", "", dead1.String(), dead2.String(), live.addr.String()))
	waitFor(t, "dead1 back in traffic", func() bool {
		resp, body, err := get(c, base, "h.test", "/")
		return err == nil && resp.StatusCode == 200 && string(body) == "back"
	})
	if r.Ejected(dead1) {
		t.Errorf("dead1 still ejected after a successful connect")
	}
}

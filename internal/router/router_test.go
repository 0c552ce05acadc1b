package router_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"

	"github.com/google/go-cmp/cmp"
)

func TestUnknownHostIs404AndNoEndpointIs503(t *testing.T) {
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	c := &http.Client{}
	resp, body, err := get(c, base, "nobody.test", "/x")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 404 || string(body) != "slipway router: no route for host \"nobody.test\" and path \"/x\"\n" {
		t.Errorf("unknown host: %d %q", resp.StatusCode, body)
	}
	apply(t, r, router.ABRoute(0, 0), router.OneBackend("p/empty", "empty.test", ""))
	for _, host := range []string{"ab.test", "empty.test"} {
		resp, body, err = get(c, base, host, "/")
		if err != nil {
			t.Fatal(err)
		}
		key := map[string]string{"ab.test": "p/ab", "empty.test": "p/empty"}[host]
		if resp.StatusCode != 503 || string(body) != "slipway router: route "+key+" has no ready endpoint\n" {
			t.Errorf("%s: %d %q", host, resp.StatusCode, body)
		}
	}
}

func TestForwardedHeadersAndHopByHop(t *testing.T) {
	u := newUpstream(t, "u")
	for _, tc := range []struct {
		name    string
		trusted []netip.Prefix
		want    http.Header
	}{{
		name: "untrusted peer: client values replaced",
		want: http.Header{
			"X-Forwarded-For":   {"127.0.0.1"},
			"X-Forwarded-Host":  {"fw.test"},
			"X-Forwarded-Proto": {"http"},
			"Forwarded":         {`for=127.0.0.1;host="fw.test";proto=http`},
		},
	}, {
		name:    "trusted peer: values kept and appended to",
		trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		want: http.Header{
			"X-Forwarded-For":   {"203.0.113.9, 127.0.0.1"},
			"X-Forwarded-Host":  {"public.example"},
			"X-Forwarded-Proto": {"https"},
			"Forwarded":         {`for=203.0.113.9, for=127.0.0.1;host="fw.test";proto=http`},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := router.New(router.Options{TrustedProxies: tc.trusted})
			base := serveRouter(t, r)
			apply(t, r, router.OneBackend("p/fw", "fw.test", "", u.addr.String()))
			resp, body, err := get(&http.Client{}, base, "fw.test", "/", func(req *http.Request) {
				req.Header.Set("X-Forwarded-For", "203.0.113.9")
				req.Header.Set("X-Forwarded-Host", "public.example")
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("Forwarded", "for=203.0.113.9")
				// Names listed in Connection are hop-by-hop; they must not
				// remove what the router adds.
				req.Header.Set("Connection", "X-Secret, X-Forwarded-For, Forwarded")
				req.Header.Set("X-Secret", "s")
				req.Header.Set("Proxy-Authorization", "Basic eA==")
				req.Header.Set("Te", "trailers")
				req.Header.Set("X-Kept", "k")
			})
			if err != nil {
				t.Fatal(err)
			}
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
			}
			got := http.Header{}
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
				got[h] = e.Header[h]
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("forwarded headers (-want +got):\n%s", d)
			}
			for _, h := range []string{"X-Secret", "Proxy-Authorization", "Connection"} {
				if v, ok := e.Header[h]; ok {
					t.Errorf("hop-by-hop header %s reached the upstream: %q", h, v)
				}
			}
			if e.Header.Get("X-Kept") != "k" || e.Host != "fw.test" {
				t.Errorf("upstream saw X-Kept %q, Host %q", e.Header.Get("X-Kept"), e.Host)
			}
			if v := resp.Header.Get("Keep-Alive"); v != "" {
				t.Errorf("upstream's Keep-Alive reached the client: %q", v)
			}
		})
	}
}

func TestRouterSplitAndStickinessOverHTTP(t *testing.T) {
	a1, a2, b1 := newUpstream(t, "a1"), newUpstream(t, "a2"), newUpstream(t, "b1")
	mk := func(wa, wb int32) router.RouteConfig {
		return router.RouteConfig{Key: "p/ab", Host: "ab.test", Affinity: router.Affinity{CookieName: "sw", TTL: time.Hour}, Backends: []router.BackendConfig{
			{Service: "p/a", Weight: wa, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{a1.addr, a2.addr}}}},
			{Service: "p/b", Weight: wb, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{b1.addr}}}},
		}}
	}
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, mk(25, 75))
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	type client struct{ cookie, upstream string }
	var sticky []client
	for range 100 {
		resp, _, err := get(c, base, "ab.test", "/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("request: %v %v", resp, err)
		}
		cs := resp.Cookies()
		if len(cs) != 1 || cs[0].Name != "sw" || cs[0].MaxAge != 3600 || !cs[0].HttpOnly {
			t.Fatalf("affinity cookie: %v", cs)
		}
		sticky = append(sticky, client{cs[0].Value, resp.Header.Get("X-Upstream")})
	}
	// The split over 10,000 requests: TestObservedSplitOverHTTP.
	for _, w := range [][2]int32{{100, 0}, {0, 100}, {100, 0}} {
		apply(t, r, mk(w[0], w[1]))
		for i, cl := range sticky {
			resp, _, err := get(c, base, "ab.test", "/", func(req *http.Request) { req.AddCookie(&http.Cookie{Name: "sw", Value: cl.cookie}) })
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("sticky request: %v %v", resp, err)
			}
			if got := resp.Header.Get("X-Upstream"); got != cl.upstream || len(resp.Cookies()) != 0 {
				t.Fatalf("weights %v: sticky client %d moved from %s to %s (cookies %v)", w, i, cl.upstream, got, resp.Cookies())
			}
		}
	}
}

func TestRetryOnRefusedEndpoint(t *testing.T) {
	u := newUpstream(t, "live")
	dead := refusedAddr(t)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/x", "x.test", "", dead.String(), u.addr.String()))
	c := &http.Client{}
	for i := range 200 {
		method := []string{"GET", "POST"}[i%2]
		req, _ := http.NewRequest(method, base+"/", strings.NewReader("payload"))
		req.Host = "x.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("request %d (%s): status %d", i, method, resp.StatusCode)
		}
	}
	if got := u.hits.Load(); got != 200 {
		t.Errorf("live endpoint served %d requests, want 200", got)
	}
	// With only dead endpoints, the one retry goes elsewhere and fails: 502.
	apply(t, r, router.OneBackend("p/x", "x.test", "", dead.String(), refusedAddr(t).String()))
	resp, _, err := get(c, base, "x.test", "/")
	if err != nil || resp.StatusCode != 502 {
		t.Fatalf("all dead: %v %v", resp, err)
	}
}

func TestResponseTimeoutIs504(t *testing.T) {
	u := newUpstream(t, "slow")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	rc := router.OneBackend("p/x", "x.test", "", u.addr.String())
	rc.Timeouts.Response = 50 * time.Millisecond
	apply(t, r, rc)
	defer close(u.block)
	resp, body, err := get(&http.Client{}, base, "x.test", "/slow")
	if err != nil || resp.StatusCode != 504 {
		t.Fatalf("slow upstream: %v %q %v", resp, body, err)
	}
}

func TestWaitDrainedWaitsForInFlightRequest(t *testing.T) {
	slow, other := newUpstream(t, "slow"), newUpstream(t, "other")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/x", "x.test", "", slow.addr.String()))

	done := make(chan error, 1)
	go func() {
		resp, body, err := get(&http.Client{}, base, "x.test", "/slow")
		if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"slow"`)) {
			err = fmt.Errorf("status %d body %q", resp.StatusCode, body)
		}
		done <- err
	}()
	<-slow.entered

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := r.WaitDrained(ctx, slow.addr)
	cancel()
	if want := fmt.Sprintf("router: endpoint %s is still in the route table: context deadline exceeded", slow.addr); err == nil || err.Error() != want {
		t.Fatalf("WaitDrained while in the table = %v, want %q", err, want)
	}

	apply(t, r, router.OneBackend("p/x", "x.test", "", other.addr.String()))
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = r.WaitDrained(ctx, slow.addr)
	cancel()
	if want := fmt.Sprintf("router: endpoint %s still has 1 requests in flight: context deadline exceeded", slow.addr); err == nil || err.Error() != want {
		t.Fatalf("WaitDrained with a request in flight = %v, want %q", err, want)
	}
	// New requests go to the new endpoint meanwhile.
	resp, _, err := get(&http.Client{}, base, "x.test", "/")
	if err != nil || resp.Header.Get("X-Upstream") != "other" {
		t.Fatalf("new request: %v %v", resp, err)
	}

	drained := make(chan error, 1)
	go func() { drained <- r.WaitDrained(context.Background(), slow.addr) }()
	close(slow.block)
	if err := <-done; err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if n := r.InFlight(slow.addr); n != 0 {
		t.Errorf("InFlight after drain = %d", n)
	}
	// Pooled connections to the leaving endpoint are closed, not kept.
	waitFor(t, "connections to the drained endpoint to close", func() bool { return slow.openConns() == 0 })
	if n := other.openConns(); n != 1 {
		t.Errorf("the remaining endpoint has %d open connections, want 1 (pooled)", n)
	}
}

func TestWaitDrainedForUnknownEndpointReturnsAtOnce(t *testing.T) {
	r := router.New(router.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitDrained(ctx, router.AP("127.0.0.1:9")); err != nil {
		t.Fatal(err)
	}
}

func TestMaxBodyBytes(t *testing.T) {
	u := newUpstream(t, "u")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	rc := router.OneBackend("p/x", "x.test", "", u.addr.String())
	rc.MaxBodyBytes = 10
	apply(t, r, rc)
	for _, tc := range []struct {
		body string
		want int
	}{{"0123456789", 200}, {"0123456789x", 413}} {
		req, _ := http.NewRequest("POST", base+"/", strings.NewReader(tc.body))
		req.Host = "x.test"
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("body of %d bytes: status %d, want %d", len(tc.body), resp.StatusCode, tc.want)
		}
	}
}

// TestNoRetryOnceANonIdempotentRequestReachedTheUpstream: an endpoint that
// reads the whole request and then drops the connection. A POST it
// received is not sent again (the app may have acted on it): 502. A GET is
// idempotent and goes to the other endpoint.
func TestNoRetryOnceANonIdempotentRequestReachedTheUpstream(t *testing.T) {
	good := newUpstream(t, "good")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	breaker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		dropped.Add(1)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})}
	go breaker.Serve(ln)
	t.Cleanup(func() { breaker.Close() })
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/x", "x.test", "", good.addr.String(), ln.Addr().String()))

	c := &http.Client{}
	counts := map[string]int{}
	for i := range 200 {
		req, _ := http.NewRequest("GET", base+"/", nil)
		method := "GET"
		if i%2 == 1 {
			method = "POST"
			req, _ = http.NewRequest("POST", base+"/", strings.NewReader("order #1"))
		}
		req.Host = "x.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		counts[fmt.Sprintf("%s %d", method, resp.StatusCode)]++
	}
	// Every request the breaker dropped was a POST answered 502, or a GET
	// answered 200 by the other endpoint.
	if counts["GET 200"] != 100 || counts["POST 502"] == 0 || counts["POST 200"]+counts["POST 502"] != 100 {
		t.Errorf("answers: %v", counts)
	}
	if got, want := good.hits.Load(), int64(counts["GET 200"]+counts["POST 200"]); got != want {
		t.Errorf("good endpoint served %d, want %d", got, want)
	}
	// The breaker saw each failed POST once and each GET it dropped once:
	// those were retried.
	var st router.RouteStats
	// Counters are updated once the answer is sent.
	waitFor(t, "200 requests counted", func() bool { st, _ = r.Stats("p/x"); return st.Total.Total() == 200 })
	if got, want := dropped.Load(), int64(counts["POST 502"])+st.Total.Retries; got != want || st.Total.Retries == 0 {
		t.Errorf("breaker saw %d requests, want %d (502s %d + retries %d)", got, want, counts["POST 502"], st.Total.Retries)
	}
}

package router

import (
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSnapshotQuantilesAndWindows(t *testing.T) {
	c := newCounters()
	// 90 fast requests (1 ms) and 10 slow ones (2 s).
	for range 90 {
		c.observe(200, time.Millisecond)
	}
	for range 10 {
		c.observe(503, 2*time.Second)
	}
	s := c.snapshot()
	if s.Total() != 100 || s.Requests[2] != 90 || s.Requests[5] != 10 {
		t.Fatalf("counts: %v", s.Requests)
	}
	if rate, ok := s.SuccessRate(); !ok || rate != 0.9 {
		t.Errorf("SuccessRate = %v, %v; want 0.9", rate, ok)
	}
	// A quantile lands in the bucket holding the duration: within a
	// factor 1.5 of it.
	for _, tc := range []struct {
		q    float64
		near time.Duration
	}{{0.5, time.Millisecond}, {0.9, time.Millisecond}, {0.95, 2 * time.Second}, {0.99, 2 * time.Second}} {
		if got := s.Quantile(tc.q); got < tc.near*2/3 || got > tc.near*3/2 {
			t.Errorf("Quantile(%v) = %s, want about %s", tc.q, got, tc.near)
		}
	}
	// The window after more traffic holds only the new requests.
	for range 50 {
		c.observe(200, 10*time.Millisecond)
	}
	c.observe(0, time.Second) // the client left
	w := c.snapshot().Sub(s)
	if d := cmp.Diff([6]int64{1, 0, 50, 0, 0, 0}, w.Requests); d != "" {
		t.Errorf("window requests (-want +got):\n%s", d)
	}
	if rate, _ := w.SuccessRate(); rate != 1 {
		t.Errorf("window SuccessRate = %v, want 1 (requests without an answer do not count)", rate)
	}
	if got := w.Quantile(0.5); got < 10*time.Millisecond*2/3 || got > 15*time.Millisecond {
		t.Errorf("window p50 = %s, want about 10ms", got)
	}
	if (Snapshot{}).Quantile(0.99) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
	if _, ok := (Snapshot{}).SuccessRate(); ok {
		t.Error("SuccessRate of nothing is defined")
	}
}

func TestStatsPerRouteRevisionAndEndpoint(t *testing.T) {
	stable, canary := newUpstream(t, "stable"), newUpstream(t, "canary")
	canary.status.Store(500)
	dead := refusedAddr(t)
	r := New(Options{})
	base := serveRouter(t, r)
	apply(t, r, RouteConfig{Key: "p/app", Host: "app.test", Backends: []BackendConfig{{Service: "p/app", Weight: 100, RevisionWeights: true,
		Revisions: []RevisionConfig{
			{Revision: 1, Weight: 80, Endpoints: []netip.AddrPort{stable.addr, dead}},
			{Revision: 2, Weight: 20, Endpoints: []netip.AddrPort{canary.addr}},
		}}}})
	if _, ok := r.Stats("p/none"); ok {
		t.Error("Stats of an unknown route")
	}
	c := &http.Client{}
	const n = 1000
	for range n {
		resp, _, err := get(c, base, "app.test", "/")
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"stable": 200, "canary": 500}[resp.Header.Get("X-Upstream")]; resp.StatusCode != want {
			t.Fatalf("status %d from %q", resp.StatusCode, resp.Header.Get("X-Upstream"))
		}
	}
	var st RouteStats
	// Counters are updated once the answer is sent.
	waitFor(t, "all requests counted", func() bool { st, _ = r.Stats("p/app"); return st.Total.Total() == n })
	st, ok := r.Stats("p/app")
	if !ok || len(st.Revisions) != 2 {
		t.Fatalf("Stats: %+v %v", st, ok)
	}
	s1, s2 := st.Revisions[0], st.Revisions[1]
	if s1.Service != "p/app" || s1.Revision != 1 || s2.Revision != 2 {
		t.Fatalf("revisions: %+v %+v", s1, s2)
	}
	if st.Total.Total() != n || st.Total.Requests[2] != s1.Requests[2] || st.Total.Requests[5] != s2.Requests[5] || s1.Total()+s2.Total() != n {
		t.Errorf("route %v, revision 1 %v, revision 2 %v", st.Total.Requests, s1.Requests, s2.Requests)
	}
	if rate, _ := s1.SuccessRate(); rate != 1 {
		t.Errorf("stable success rate %v", rate)
	}
	if rate, _ := s2.SuccessRate(); rate != 0 {
		t.Errorf("canary success rate %v", rate)
	}
	if share := float64(s2.Total()) / n; share < 0.14 || share > 0.26 {
		t.Errorf("canary share %.2f, want 0.20 ± 0.06", share)
	}
	// Every pick of the dead endpoint was one upstream error and one
	// retry, on the stable revision, and no request failed for it.
	if s1.UpstreamErrors == 0 || s1.Retries != s1.UpstreamErrors || st.Total.Retries != s1.Retries || s2.Retries != 0 {
		t.Errorf("errors/retries: revision 1 %d/%d, revision 2 %d/%d, route %d/%d",
			s1.UpstreamErrors, s1.Retries, s2.UpstreamErrors, s2.Retries, st.Total.UpstreamErrors, st.Total.Retries)
	}
	de, ok := r.EndpointStats(dead)
	if !ok || de.UpstreamErrors != s1.UpstreamErrors || de.Total() != 0 {
		t.Errorf("dead endpoint: %+v", de)
	}
	se, _ := r.EndpointStats(stable.addr)
	ce, _ := r.EndpointStats(canary.addr)
	if se.Requests[2] != s1.Requests[2] || ce.Requests[5] != s2.Requests[5] || se.InFlight != 0 {
		t.Errorf("endpoints: stable %v, canary %v", se.Requests, ce.Requests)
	}
	var lat int64
	for _, l := range st.Total.Latency {
		lat += l
	}
	if lat != n || st.Total.Quantile(0.99) <= 0 {
		t.Errorf("latency histogram holds %d requests, p99 %s", lat, st.Total.Quantile(0.99))
	}
}

func TestViewReadsBackTheAppliedSplit(t *testing.T) {
	r := New(Options{})
	if _, ok := r.View("p/r"); ok {
		t.Fatal("View of an unknown route")
	}
	rc := revRoute(true, 90, 10, 2, 1)
	rc.Backends = append(rc.Backends,
		BackendConfig{Service: "p/other", Weight: 300 - 200, Revisions: []RevisionConfig{{Revision: 4, Endpoints: []netip.AddrPort{ap("127.0.0.1:7")}}}},
		BackendConfig{Service: "p/down", Weight: 50})
	tb := mustBuild(t, Input{Routes: []RouteConfig{rc}})
	r.Apply(tb)
	eps := func(base, n int) []netip.AddrPort {
		var out []netip.AddrPort
		for i := range n {
			out = append(out, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base+i)))
		}
		return out
	}
	want := RouteView{Route: "p/r", Host: "r.test", Path: "/", Backends: []BackendView{
		{Service: "p/app", Weight: 100, Share: 50, Revisions: []RevisionView{
			{Revision: 1, Weight: 90, Endpoints: eps(1000, 2), Share: 90},
			{Revision: 2, Weight: 10, Endpoints: eps(2000, 1), Share: 10},
		}},
		{Service: "p/other", Weight: 100, Share: 50, Revisions: []RevisionView{{Revision: 4, Endpoints: eps(7, 1), Share: 100}}},
		{Service: "p/down", Weight: 50},
	}}
	opts := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	got, _ := r.View("p/r")
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("view (-want +got):\n%s", d)
	}
	// Applying the same table again binds a fresh copy: same view.
	r.Apply(tb)
	if got, _ := r.View("p/r"); !cmp.Equal(want, got, opts) {
		t.Errorf("view after applying the table again: %+v", got)
	}
	r.Apply(nil)
	if _, ok := r.View("p/r"); ok {
		t.Error("route still served after Apply(nil)")
	}
}

// TestAppStatsFollowTheTags: the router sums an App's counters by the tags
// of the table that served them. Re-pointing a route at another App moves
// its later counts there; counts of a route that left the table stay with
// its App, so a window spanning the change loses nothing.
func TestAppStatsFollowTheTags(t *testing.T) {
	up := newUpstream(t, "v1")
	r := New(Options{})
	base := serveRouter(t, r)
	c := &http.Client{}
	ep := up.addr
	route := func(key, host, app string) RouteConfig {
		return RouteConfig{Key: key, Project: "p", Host: host, Backends: []BackendConfig{{Service: "p/web", App: app, Weight: 1,
			Revisions: []RevisionConfig{{Revision: 4, Endpoints: []netip.AddrPort{ep}}}}}}
	}
	send := func(host string, n int) {
		t.Helper()
		for range n {
			resp, _, err := get(c, base, host, "/")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %v %v", host, resp, err)
			}
		}
	}
	count := func(app string) (rev, routes int64) {
		t.Helper()
		s, _ := r.AppRevision(app, 4)
		tot, _ := r.AppRoutes(app)
		return s.Requests[2], tot.Requests[2]
	}
	apply(t, r, route("p/a", "a.test", "p/web"), route("p/b", "b.test", "p/web"))
	send("a.test", 3)
	send("b.test", 2)
	if rev, routes := count("p/web"); rev != 5 || routes != 5 {
		t.Fatalf("p/web: revision %d, routes %d; want 5 and 5", rev, routes)
	}
	if _, ok := r.AppRevision("p/other", 4); ok {
		t.Fatalf("p/other has counters it never served")
	}
	// b now serves p/other; a leaves the table.
	apply(t, r, route("p/b", "b.test", "p/other"))
	send("b.test", 7)
	if rev, routes := count("p/web"); rev != 3 || routes != 3 {
		t.Errorf("p/web after the change: revision %d, routes %d; want 3 and 3 (route a's, kept)", rev, routes)
	}
	if rev, routes := count("p/other"); rev != 9 || routes != 9 {
		t.Errorf("p/other: revision %d, routes %d; want 9 and 9 (route b's, all of them: the tag is the table's)", rev, routes)
	}
}

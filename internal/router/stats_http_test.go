package router_test

import (
	"net/http"
	"net/netip"
	"testing"

	"slipway.dev/slipway/internal/router"
)

func TestStatsPerRouteRevisionAndEndpoint(t *testing.T) {
	stable, canary := newUpstream(t, "stable"), newUpstream(t, "canary")
	canary.status.Store(500)
	dead := refusedAddr(t)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.RouteConfig{Key: "p/app", Host: "app.test", Backends: []router.BackendConfig{{Service: "p/app", Weight: 100, RevisionWeights: true,
		Revisions: []router.RevisionConfig{
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
	var st router.RouteStats
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

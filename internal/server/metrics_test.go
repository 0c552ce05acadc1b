package server

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"testing"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/std"
)

// TestRouterMetricsSumPerRevision: requests through two routes to the
// Service of app hello are summed per revision; another app's Service,
// and a Service pinned to one revision, are not counted. The data plane
// tags each backend with its App (dataplane's TestRouterInputTagsBackendsWithTheirApp);
// here the tags are written by hand.
func TestRouterMetricsSumPerRevision(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer bad.Close()
	addr := func(s *httptest.Server) netip.AddrPort {
		u, _ := url.Parse(s.URL)
		return netip.MustParseAddrPort(u.Host)
	}
	rt := router.New(router.Options{})
	apps := map[string]string{"hello": "default/hello", "pinned": "", "other": "default/other"}
	backend := func(svc string, rev int64, ep netip.AddrPort) router.BackendConfig {
		return router.BackendConfig{Service: "default/" + svc, App: apps[svc], Weight: 1, Revisions: []router.RevisionConfig{{Revision: rev, Endpoints: []netip.AddrPort{ep}}}}
	}
	tbl, errs := router.Build(router.Input{Routes: []router.RouteConfig{
		{Key: "default/a", Project: "default", Host: "a.test", Backends: []router.BackendConfig{backend("hello", 2, addr(bad))}},
		{Key: "default/b", Project: "default", Host: "b.test", Backends: []router.BackendConfig{backend("hello", 2, addr(ok))}},
		{Key: "default/c", Project: "default", Host: "c.test", Backends: []router.BackendConfig{backend("pinned", 2, addr(ok))}},
		{Key: "default/d", Project: "default", Host: "d.test", Backends: []router.BackendConfig{backend("other", 2, addr(ok))}},
		{Key: "default/e", Project: "default", Host: "e.test", Backends: []router.BackendConfig{{Service: "default/hello", App: "default/hello", Weight: 1}}}, // no ready pod
	}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	rt.Apply(tbl)
	h := std.NewHandler(rt)
	for host, n := range map[string]int{"a.test": 3, "b.test": 5, "c.test": 7, "d.test": 11, "e.test": 2} {
		for range n {
			req := httptest.NewRequest("GET", "http://"+host+"/", nil)
			req.RemoteAddr = "127.0.0.1:40000"
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	}
	m := routerMetrics{rt: rt}
	s, found := m.Revision("default", "hello", 2)
	if !found || s.Requests[2] != 5 || s.Requests[5] != 3 || len(s.Bounds) != len(router.LatencyBounds) {
		t.Fatalf("revision 2 of hello: found %v requests %v bounds %d", found, s.Requests, len(s.Bounds))
	}
	var lat int64
	for _, c := range s.Latency {
		lat += c
	}
	if lat != 8 {
		t.Errorf("latency counts %d requests, want 8", lat)
	}
	if _, found := m.Revision("default", "hello", 1); found {
		t.Errorf("revision 1 never served, yet found")
	}
	// The routes' totals: a (3 answered 500), b (5 answered 200) and e (2
	// answered 503 by the router: no pod); c's Service is pinned to a
	// revision, d serves another app.
	r, found := m.Routes("default", "hello")
	if !found || r.Requests[2] != 5 || r.Requests[5] != 5 {
		t.Errorf("routes of hello: found %v requests %v, want 5 2xx and 5 5xx", found, r.Requests)
	}
}

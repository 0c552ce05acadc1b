package router_test

import (
	"net/http"
	"net/netip"
	"testing"

	"slipway.dev/slipway/internal/router"
)

// TestAppStatsFollowTheTags: the router sums an App's counters by the tags
// of the table that served them. Re-pointing a route at another App moves
// its later counts there; counts of a route that left the table stay with
// its App, so a window spanning the change loses nothing.
func TestAppStatsFollowTheTags(t *testing.T) {
	up := newUpstream(t, "v1")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	c := &http.Client{}
	ep := up.addr
	route := func(key, host, app string) router.RouteConfig {
		return router.RouteConfig{Key: key, Project: "p", Host: host, Backends: []router.BackendConfig{{Service: "p/web", App: app, Weight: 1,
			Revisions: []router.RevisionConfig{{Revision: 4, Endpoints: []netip.AddrPort{ep}}}}}}
	}
	var sent int64
	send := func(host string, n int) {
		t.Helper()
		sent += int64(n)
		for range n {
			resp, _, err := get(c, base, host, "/")
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET %s: %v %v", host, resp, err)
			}
		}
		// A request is counted once its answer is written, which the
		// client may read first: wait until every one is.
		waitFor(t, "every request counted", func() bool {
			web, _ := r.AppRoutes("p/web")
			other, _ := r.AppRoutes("p/other")
			return web.Requests[2]+other.Requests[2] == sent
		})
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

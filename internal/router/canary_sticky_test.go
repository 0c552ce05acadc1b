package router_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
)

// TestCanaryStickinessByRevision: a canary at 10 % of an App's traffic
// with session affinity. 10,000 clients, each with its own cookie jar as a
// browser has, land on the canary in a share within 2 points of the
// weight; when the canary steps to 50 %, every client that landed on a
// revision stays on it (the canary's clients never flip back to stable),
// and new clients split by the new weight. Stickiness is by revision: two
// endpoints per revision, and the pod a client reaches within its revision
// may change without changing what it sees.
func TestCanaryStickinessByRevision(t *testing.T) {
	const clients = 10000
	stable := []*upstream{newUpstream(t, "stable-a"), newUpstream(t, "stable-b")}
	canary := []*upstream{newUpstream(t, "canary-a"), newUpstream(t, "canary-b")}
	revOf := map[string]string{"stable-a": "stable", "stable-b": "stable", "canary-a": "canary", "canary-b": "canary"}
	mk := func(canaryWeight int32) router.RouteConfig {
		return router.RouteConfig{Key: "p/web", Host: "web.test", Affinity: router.Affinity{CookieName: "sw", TTL: time.Hour}, Backends: []router.BackendConfig{{
			Service: "p/web", Weight: 100, RevisionWeights: true,
			Revisions: []router.RevisionConfig{
				{Revision: 1, Weight: 100 - canaryWeight, Endpoints: []netip.AddrPort{stable[0].addr, stable[1].addr}},
				{Revision: 2, Weight: canaryWeight, Endpoints: []netip.AddrPort{canary[0].addr, canary[1].addr}},
			},
		}}}
	}
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, mk(10))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()

	type client struct {
		c   *http.Client
		rev string
	}
	// visit sends one request as each client (32 at a time) and returns
	// the revision each was answered by.
	visit := func(cs []*client) []string {
		got := make([]string, len(cs))
		var wg sync.WaitGroup
		next := make(chan int)
		var mu sync.Mutex
		var errs []string
		for range 32 {
			wg.Go(func() {
				for i := range next {
					resp, _, err := get(cs[i].c, base, "web.test", "/")
					if err != nil || resp.StatusCode != 200 {
						mu.Lock()
						errs = append(errs, "request failed")
						mu.Unlock()
						continue
					}
					got[i] = revOf[resp.Header.Get("X-Upstream")]
				}
			})
		}
		for i := range cs {
			next <- i
		}
		close(next)
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d requests failed", len(errs))
		}
		return got
	}
	newClients := func(n int) []*client {
		cs := make([]*client, n)
		for i := range cs {
			jar, _ := cookiejar.New(nil)
			cs[i] = &client{c: &http.Client{Transport: tr, Jar: jar}}
		}
		return cs
	}
	share := func(revs []string) float64 {
		n := 0
		for _, v := range revs {
			if v == "canary" {
				n++
			}
		}
		return 100 * float64(n) / float64(len(revs))
	}

	first := newClients(clients)
	revs := visit(first)
	for i, v := range revs {
		first[i].rev = v
	}
	if s := share(revs); s < 8 || s > 12 {
		t.Errorf("canary at 10 %%: %.1f %% of %d clients on the canary, want 10 ± 2", s, clients)
	}

	apply(t, r, mk(50))
	// A sample of the first clients (all the canary's and as many of the
	// stable's) come back after the step.
	var back []*client
	nStable := 0
	for _, c := range first {
		if c.rev == "canary" {
			back = append(back, c)
		} else if nStable < 1000 {
			back = append(back, c)
			nStable++
		}
	}
	for i, v := range visit(back) {
		if v != back[i].rev {
			t.Fatalf("after the step to 50 %%, a client that landed on the %s moved to the %s", back[i].rev, v)
		}
	}
	if s := share(visit(newClients(2000))); s < 45 || s > 55 {
		t.Errorf("canary at 50 %%: %.1f %% of 2,000 new clients on the canary, want 50 ± 5", s)
	}
	// Within a revision, clients reached both of its pods.
	for _, u := range append(stable, canary...) {
		if u.hits.Load() == 0 {
			t.Errorf("endpoint %s got no request", u.name)
		}
	}
}

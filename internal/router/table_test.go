package router

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// oneBackend is a route to one service with one revision and endpoints.
func oneBackend(key, host, path string, eps ...string) RouteConfig {
	rv := RevisionConfig{Revision: 1}
	for _, e := range eps {
		rv.Endpoints = append(rv.Endpoints, ap(e))
	}
	return RouteConfig{Key: key, Host: host, Path: path,
		Backends: []BackendConfig{{Service: key, Weight: 100, Revisions: []RevisionConfig{rv}}}}
}

func mustBuild(t *testing.T, in Input) *Table {
	t.Helper()
	tb, errs := Build(in)
	if len(errs) > 0 {
		t.Fatalf("Build: %v", errs)
	}
	return tb
}

func TestLookup(t *testing.T) {
	tb := mustBuild(t, Input{Routes: []RouteConfig{
		oneBackend("p/root", "app.example.com", "", "127.0.0.1:1"),
		oneBackend("p/api", "app.example.com", "/api", "127.0.0.1:1"),
		oneBackend("p/apiv2", "app.example.com", "/api/v2/", "127.0.0.1:1"),
		oneBackend("p/wild", "*.example.com", "", "127.0.0.1:1"),
		oneBackend("p/wild-deep", "*.eu.example.com", "", "127.0.0.1:1"),
		oneBackend("p/wild-admin", "*.example.com", "/admin", "127.0.0.1:1"),
		oneBackend("p/only-path", "paths.example.org", "/x", "127.0.0.1:1"),
	}})
	for _, tc := range []struct {
		host, path string
		want       string // "" means no route
	}{
		{"app.example.com", "/", "p/root"},
		{"APP.Example.COM:8080", "/", "p/root"},
		{"app.example.com.", "/", "p/root"},
		{"app.example.com", "/api", "p/api"},
		{"app.example.com", "/api/x", "p/api"},
		{"app.example.com", "/apis", "p/root"}, // prefixes match whole segments
		{"app.example.com", "/api/v2", "p/apiv2"},
		{"app.example.com", "/api/v2/users", "p/apiv2"},
		{"app.example.com", "/admin", "p/root"}, // exact host beats wildcard
		{"other.example.com", "/", "p/wild"},
		{"a.b.example.com", "/", "p/wild"},
		{"other.example.com", "/admin/x", "p/wild-admin"},
		{"x.eu.example.com", "/", "p/wild-deep"}, // most specific wildcard
		{"example.com", "/", ""},
		{"paths.example.org", "/", ""},
		{"paths.example.org", "/x/y", "p/only-path"},
		{"unknown.test", "/", ""},
		{"[::1]:80", "/", ""},
	} {
		got, _ := tb.Lookup(tc.host, tc.path)
		if got != tc.want {
			t.Errorf("Lookup(%q, %q) = %q, want %q", tc.host, tc.path, got, tc.want)
		}
	}
}

func TestBuildReportsBadEntriesAndKeepsTheRest(t *testing.T) {
	good := oneBackend("p/good", "good.test", "", "127.0.0.1:1")
	bad := []RouteConfig{
		oneBackend("p/host", "bad_host.test", "", "127.0.0.1:1"),
		oneBackend("p/path", "x.test", "nope", "127.0.0.1:1"),
		{Key: "p/nobackend", Host: "y.test"},
		func() RouteConfig { r := oneBackend("p/weight", "z.test", ""); r.Backends[0].Weight = 257; return r }(),
		func() RouteConfig {
			r := oneBackend("p/match", "m.test", "")
			r.Match = []MatchRule{{Kind: MatchHeader, Name: "X", Value: "1", Backend: 3}}
			return r
		}(),
		func() RouteConfig {
			r := oneBackend("p/regex", "r.test", "")
			r.Match = []MatchRule{{Kind: MatchHeader, Name: "X", Value: "(", Regex: true}}
			return r
		}(),
		func() RouteConfig {
			r := oneBackend("p/kind", "k.test", "")
			r.Match = []MatchRule{{Kind: "Body", Name: "X", Value: "1"}}
			return r
		}(),
		oneBackend("p/dup", "good.test", "/", "127.0.0.1:2"),
	}
	tb, errs := Build(Input{Routes: append([]RouteConfig{good}, bad...)})
	var got []string
	for _, e := range errs {
		got = append(got, e.Error())
	}
	want := []string{
		`route p/host: host "bad_host.test": label "bad_host" must be 1-63 letters, digits or '-', not starting or ending with '-'`,
		`route p/path: path "nope": must start with '/'`,
		`route p/nobackend: backends: at least one backend is required`,
		`route p/weight: backends[0] (p/weight): weight 257 must be 0-256`,
		`route p/match: match[0]: backend 3 does not exist (the route has 1)`,
		"route p/regex: match[0]: value \"(\" is not a valid regular expression: error parsing regexp: missing closing ): `(`",
		`route p/kind: match[0]: kind "Body" must be one of Header, Cookie, Query`,
		`route p/dup: host "good.test" path "/" is already served by route p/good`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	if k, ok := tb.Lookup("good.test", "/"); k != "p/good" || !ok {
		t.Errorf("good route not served: %q %v", k, ok)
	}
}

func TestAdmit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	rc := func(key, project, host, path string, age int) RouteConfig {
		return RouteConfig{Key: key, Project: project, Host: host, Path: path, Created: t0.Add(time.Duration(age) * time.Minute)}
	}
	for _, tc := range []struct {
		name    string
		in      []RouteConfig
		admit   []string
		refused map[string]Refusal
	}{{
		name:  "first project owns the host",
		in:    []RouteConfig{rc("b/r", "b", "app.test", "", 2), rc("a/r", "a", "app.test", "", 1)},
		admit: []string{"a/r"},
		refused: map[string]Refusal{
			"b/r": {ReasonHostClaimed, `host "app.test" is owned by project "a" (route a/r claims "app.test")`}},
	}, {
		name:  "same project shares a host on other paths",
		in:    []RouteConfig{rc("a/r1", "a", "app.test", "/", 1), rc("a/r2", "a", "app.test", "/api", 2), rc("a/r3", "a", "App.Test", "/api/", 3)},
		admit: []string{"a/r1", "a/r2"},
		refused: map[string]Refusal{
			"a/r3": {ReasonPathClaimed, `host "app.test" path "/api" is already served by route a/r2`}},
	}, {
		name:  "wildcard owns its subtree",
		in:    []RouteConfig{rc("a/w", "a", "*.example.com", "", 1), rc("b/x", "b", "x.y.example.com", "", 2), rc("b/apex", "b", "example.com", "", 3), rc("b/other", "b", "example.org", "", 4)},
		admit: []string{"a/w", "b/other"},
		refused: map[string]Refusal{
			"b/x":    {ReasonHostClaimed, `host "x.y.example.com" is owned by project "a" (route a/w claims "*.example.com")`},
			"b/apex": {ReasonHostClaimed, `host "example.com" is owned by project "a" (route a/w claims "*.example.com")`}},
	}, {
		name:  "an exact host owns the wildcard below it",
		in:    []RouteConfig{rc("a/x", "a", "x.example.com", "", 1), rc("b/w", "b", "*.x.example.com", "", 2), rc("b/wider", "b", "*.example.com", "", 3), rc("b/sib", "b", "y.example.com", "", 4)},
		admit: []string{"a/x", "b/sib"},
		refused: map[string]Refusal{
			"b/w":     {ReasonHostClaimed, `host "*.x.example.com" is owned by project "a" (route a/x claims "x.example.com")`},
			"b/wider": {ReasonHostClaimed, `host "*.example.com" is owned by project "a" (route a/x claims "x.example.com")`}},
	}, {
		name:  "ties broken by key; invalid hosts refused",
		in:    []RouteConfig{rc("b/r", "b", "t.test", "", 1), rc("a/r", "a", "t.test", "", 1), rc("c/r", "c", "-bad.test", "", 0)},
		admit: []string{"a/r"},
		refused: map[string]Refusal{
			"b/r": {ReasonHostClaimed, `host "t.test" is owned by project "a" (route a/r claims "t.test")`},
			"c/r": {ReasonInvalid, `host "-bad.test": label "-bad" must be 1-63 letters, digits or '-', not starting or ending with '-'`}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			admitted, refused := Admit(tc.in)
			var keys []string
			for _, r := range admitted {
				keys = append(keys, r.Key)
			}
			if d := cmp.Diff(tc.admit, keys); d != "" {
				t.Errorf("admitted (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.refused, refused); d != "" {
				t.Errorf("refused (-want +got):\n%s", d)
			}
		})
	}
}

// abRoute is a route with backends a and b at the given weights, each
// with one revision of two endpoints.
func abRoute(wa, wb int32) RouteConfig {
	return RouteConfig{Key: "p/ab", Host: "ab.test", Backends: []BackendConfig{
		{Service: "p/a", Weight: wa, Revisions: []RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{ap("127.0.0.1:1"), ap("127.0.0.1:2")}}}},
		{Service: "p/b", Weight: wb, Revisions: []RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{ap("127.0.0.1:3"), ap("127.0.0.1:4")}}}},
	}}
}

func routeOf(t *testing.T, rc RouteConfig) *Route {
	t.Helper()
	tb := mustBuild(t, Input{Routes: []RouteConfig{rc}})
	return tb.routes[rc.Key]
}

func newReq(mod ...func(*http.Request)) HTTPView {
	r := httptest.NewRequest("GET", "http://ab.test/", nil)
	for _, m := range mod {
		m(r)
	}
	return HTTPView{r}
}

// share picks n times and returns each service's (or service/revision's)
// share of picks, in percent.
func share(t *testing.T, rt *Route, n int, byRevision bool) map[string]float64 {
	t.Helper()
	rnd := rand.New(rand.NewPCG(1, 2))
	counts := map[string]int{}
	for range n {
		p := rt.choose(newReq(), rnd, avoid{})
		if p.Endpoint == nil {
			t.Fatal("no pick")
		}
		k := p.Revision.Backend.Service
		if byRevision {
			k += "/" + string(rune('0'+p.Revision.Number))
		}
		counts[k]++
	}
	out := map[string]float64{}
	for k, c := range counts {
		out[k] = 100 * float64(c) / float64(n)
	}
	return out
}

func within(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, w := range want {
		if g := got[k]; g < w-3 || g > w+3 {
			t.Errorf("share of %s = %.2f%%, want %.0f%% ± 3 (all: %v)", k, g, w, got)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected share of %s: %.2f%%", k, g)
		}
	}
}

func TestBackendWeightsSplit(t *testing.T) {
	for _, tc := range []struct {
		wa, wb int32
		want   map[string]float64
	}{
		{100, 0, map[string]float64{"p/a": 100}},
		{0, 100, map[string]float64{"p/b": 100}},
		{30, 70, map[string]float64{"p/a": 30, "p/b": 70}},
		{1, 3, map[string]float64{"p/a": 25, "p/b": 75}},
		{256, 256, map[string]float64{"p/a": 50, "p/b": 50}},
	} {
		within(t, share(t, routeOf(t, abRoute(tc.wa, tc.wb)), 10000, false), tc.want)
	}
}

func TestAllZeroWeightsOrNoEndpointsPickNothing(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	if p := routeOf(t, abRoute(0, 0)).choose(newReq(), rnd, avoid{}); p.Endpoint != nil {
		t.Errorf("weights 0/0 picked %s", p.Endpoint.Addr)
	}
	rc := abRoute(100, 0)
	rc.Backends[0].Revisions[0].Endpoints = nil
	if p := routeOf(t, rc).choose(newReq(), rnd, avoid{}); p.Endpoint != nil {
		t.Errorf("a weighted backend without endpoints and a 0-weight one picked %s", p.Endpoint.Addr)
	}
	// A weighted backend without endpoints leaves its share to the others.
	rc = abRoute(100, 1)
	rc.Backends[0].Revisions[0].Endpoints = nil
	within(t, share(t, routeOf(t, rc), 1000, false), map[string]float64{"p/b": 100})
}

func revRoute(weighted bool, w1, w2 int32, n1, n2 int) RouteConfig {
	eps := func(base, n int) []netip.AddrPort {
		var out []netip.AddrPort
		for i := range n {
			out = append(out, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base+i)))
		}
		return out
	}
	return RouteConfig{Key: "p/r", Host: "r.test", Backends: []BackendConfig{{Service: "p/app", Weight: 100, RevisionWeights: weighted,
		Revisions: []RevisionConfig{{Revision: 1, Weight: w1, Endpoints: eps(1000, n1)}, {Revision: 2, Weight: w2, Endpoints: eps(2000, n2)}}}}}
}

func TestRevisionSplit(t *testing.T) {
	for _, tc := range []struct {
		name string
		rc   RouteConfig
		want map[string]float64
	}{
		{"weights from traffic", revRoute(true, 90, 10, 3, 1), map[string]float64{"p/app/1": 90, "p/app/2": 10}},
		{"weights independent of pod counts", revRoute(true, 20, 80, 4, 1), map[string]float64{"p/app/1": 20, "p/app/2": 80}},
		{"canary at 0", revRoute(true, 100, 0, 2, 2), map[string]float64{"p/app/1": 100}},
		{"no traffic: by ready endpoints", revRoute(false, 0, 0, 3, 1), map[string]float64{"p/app/1": 75, "p/app/2": 25}},
		{"weighted revision not ready: by endpoints", revRoute(true, 100, 0, 0, 2), map[string]float64{"p/app/2": 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			within(t, share(t, routeOf(t, tc.rc), 10000, true), tc.want)
		})
	}
}

func TestMatchRules(t *testing.T) {
	rc := abRoute(100, 0)
	rc.Backends[1].Revisions = append(rc.Backends[1].Revisions, RevisionConfig{Revision: 2, Endpoints: []netip.AddrPort{ap("127.0.0.1:5")}})
	rc.Match = []MatchRule{
		{Kind: MatchHeader, Name: "X-Canary", Value: "always", Backend: 1, Revision: 2},
		{Kind: MatchCookie, Name: "beta", Value: "1", Backend: 1},
		{Kind: MatchQuery, Name: "v", Value: "^b[0-9]+$", Regex: true, Backend: 1, Revision: 1},
		{Kind: MatchHeader, Name: "X-Gone", Value: "1", Backend: 1, Revision: 9}, // no such revision: falls through
	}
	rt := routeOf(t, rc)
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		req  HTTPView
		want string // service/revision
	}{
		{"no match: weights", newReq(), "p/a/1"},
		{"header", newReq(func(r *http.Request) { r.Header.Set("X-Canary", "always") }), "p/b/2"},
		{"header other value", newReq(func(r *http.Request) { r.Header.Set("X-Canary", "never") }), "p/a/1"},
		{"cookie", newReq(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "beta", Value: "1"}) }), "p/b/"},
		{"query regex", HTTPView{httptest.NewRequest("GET", "http://ab.test/?v=b12", nil)}, "p/b/1"},
		{"query regex no match", HTTPView{httptest.NewRequest("GET", "http://ab.test/?v=b12x", nil)}, "p/a/1"},
		{"missing revision falls through", newReq(func(r *http.Request) { r.Header.Set("X-Gone", "1") }), "p/a/1"},
	} {
		for range 50 {
			p := rt.choose(tc.req, rnd, avoid{})
			got := p.Revision.Backend.Service + "/" + string(rune('0'+p.Revision.Number))
			if !strings.HasPrefix(got, tc.want) {
				t.Fatalf("%s: picked %s, want %s", tc.name, got, tc.want)
			}
			if p.Sticky != "" {
				t.Fatalf("%s: sets a cookie without affinity", tc.name)
			}
		}
	}
}

func TestStickyClientsKeepBackendRevisionAndEndpoint(t *testing.T) {
	rnd := rand.New(rand.NewPCG(7, 8))
	build := func(wa, wb int32) *Route {
		rc := abRoute(wa, wb)
		rc.Affinity = Affinity{CookieName: "sw"}
		return routeOf(t, rc)
	}
	rt := build(50, 50)
	type client struct {
		cookie string
		ep     netip.AddrPort
	}
	clients := make([]client, 200)
	for i := range clients {
		p := rt.choose(newReq(), rnd, avoid{})
		if p.Sticky == "" {
			t.Fatal("first visit sets no affinity cookie")
		}
		clients[i] = client{p.Sticky, p.Endpoint.Addr}
	}
	// Weights flip back and forth and tables are rebuilt: a client stays.
	for round, w := range [][2]int32{{0, 100}, {100, 0}, {256, 1}, {1, 256}} {
		rt := build(w[0], w[1])
		for i, c := range clients {
			p := rt.choose(newReq(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sw", Value: c.cookie}) }), rnd, avoid{})
			if p.Endpoint.Addr != c.ep || p.Sticky != "" {
				t.Fatalf("round %d client %d: moved from %s to %s (cookie %q)", round, i, c.ep, p.Endpoint.Addr, p.Sticky)
			}
		}
	}
	// When its endpoint leaves, a client stays on its revision and gets a
	// new cookie; when its whole backend is gone, the weights decide.
	rc := abRoute(50, 50)
	rc.Affinity = Affinity{CookieName: "sw"}
	rc.Backends[0].Revisions[0].Endpoints = []netip.AddrPort{ap("127.0.0.1:2")}
	rt = routeOf(t, rc)
	for _, c := range clients {
		if c.ep != ap("127.0.0.1:1") {
			continue
		}
		p := rt.choose(newReq(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sw", Value: c.cookie}) }), rnd, avoid{})
		if p.Endpoint.Addr != ap("127.0.0.1:2") || p.Sticky == "" || p.Sticky == c.cookie {
			t.Fatalf("client of a gone endpoint: picked %s cookie %q", p.Endpoint.Addr, p.Sticky)
		}
	}
	rc.Backends[0].Revisions = nil
	rt = routeOf(t, rc)
	for _, c := range clients {
		p := rt.choose(newReq(func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "sw", Value: c.cookie}) }), rnd, avoid{})
		if p.Revision.Backend.Service != "p/b" {
			t.Fatalf("client of a gone backend picked %s", p.Revision.Backend.Service)
		}
	}
}

func TestPowerOfTwoChoicesAndExclusion(t *testing.T) {
	rt := routeOf(t, oneBackend("p/x", "x.test", "", "127.0.0.1:1", "127.0.0.1:2"))
	eps := rt.backends[0].revisions[0].endpoints
	eps[0].inflight.Store(5)
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		if p := rt.choose(newReq(), rnd, avoid{}); p.Endpoint != eps[1] {
			t.Fatalf("picked the busier endpoint %s", p.Endpoint.Addr)
		}
	}
	for range 100 {
		if p := rt.choose(newReq(), rnd, avoid{tried: []netip.AddrPort{ap("127.0.0.1:2")}}); p.Endpoint != eps[0] {
			t.Fatalf("picked the excluded endpoint")
		}
	}
	one := routeOf(t, oneBackend("p/y", "y.test", "", "127.0.0.1:1"))
	if p := one.choose(newReq(), rnd, avoid{tried: []netip.AddrPort{ap("127.0.0.1:1")}}); p.Endpoint != nil {
		t.Fatalf("picked the only, excluded, endpoint")
	}
}

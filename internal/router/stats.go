package router

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/histogram"
)

// LatencyBounds are the upper bounds of the latency histogram's buckets:
// from 100 µs, each 1.5 times the last, to about 65 s; a last bucket holds
// the rest. Quantiles are interpolated within a bucket.
var LatencyBounds = func() []time.Duration {
	var b []time.Duration
	for d := float64(100 * time.Microsecond); d < float64(70*time.Second); d *= 1.5 {
		b = append(b, time.Duration(d))
	}
	return b
}()

// Snapshot is a set of cumulative counters. Take two and Sub them for the
// figures of the window between.
type Snapshot struct {
	// Requests by status class of the answer the client got: [2] counts
	// 2xx, [5] 5xx (the router's own 502, 503 and 504 included); [0]
	// counts requests that got no answer (the client left).
	Requests [6]int64
	// UpstreamErrors counts failed attempts to get a response from an
	// endpoint (a refused connect, a reset, a timeout), retried or not.
	UpstreamErrors int64
	Retries        int64
	// Mirrored counts shadow copies sent (route totals only);
	// MirrorsDropped those dropped because every mirror slot was taken.
	Mirrored       int64
	MirrorsDropped int64
	InFlight       int64 // now, not cumulative
	// Latency counts requests by duration, from arrival to the end of the
	// response; Latency[i] is for durations up to LatencyBounds[i], the
	// last for the rest.
	Latency []int64
}

// Total is the number of requests counted.
func (s Snapshot) Total() int64 {
	var n int64
	for _, c := range s.Requests {
		n += c
	}
	return n
}

// SuccessRate is the share of answered requests that were not 5xx, and
// false when there were none.
func (s Snapshot) SuccessRate() (float64, bool) {
	answered := s.Total() - s.Requests[0]
	if answered == 0 {
		return 0, false
	}
	return float64(answered-s.Requests[5]) / float64(answered), true
}

// Sub returns the counts of s since prev (InFlight is s's).
func (s Snapshot) Sub(prev Snapshot) Snapshot {
	out := s
	for i := range out.Requests {
		out.Requests[i] -= prev.Requests[i]
	}
	out.UpstreamErrors -= prev.UpstreamErrors
	out.Retries -= prev.Retries
	out.Mirrored -= prev.Mirrored
	out.MirrorsDropped -= prev.MirrorsDropped
	out.Latency = slices.Clone(s.Latency)
	for i := range out.Latency {
		if i < len(prev.Latency) {
			out.Latency[i] -= prev.Latency[i]
		}
	}
	return out
}

// Quantile returns the latency below which a share q (0-1) of the counted
// requests fell, interpolated within its bucket; 0 when none was counted.
// A quantile in the last, unbounded bucket reports its lower bound.
func (s Snapshot) Quantile(q float64) time.Duration {
	return histogram.Quantile(LatencyBounds, s.Latency, q)
}

// counters are the live form of a Snapshot.
type counters struct {
	requests [6]atomic.Int64
	upErrors atomic.Int64
	retries  atomic.Int64
	inflight atomic.Int64

	mirrored, mirrorsDropped atomic.Int64
	// latency is allocated by the first request counted: at 10,000
	// routes and 50,000 endpoints, histograms of those never used would
	// take a third of the router's memory.
	latency atomic.Pointer[[]atomic.Int64]
}

func newCounters() *counters { return &counters{} }

func (c *counters) observe(status int, d time.Duration) {
	class := status / 100
	if class < 0 || class > 5 {
		class = 0
	}
	c.requests[class].Add(1)
	h := c.latency.Load()
	if h == nil {
		fresh := make([]atomic.Int64, len(LatencyBounds)+1)
		if !c.latency.CompareAndSwap(nil, &fresh) {
			h = c.latency.Load()
		} else {
			h = &fresh
		}
	}
	i, _ := slices.BinarySearch(LatencyBounds, d)
	(*h)[i].Add(1)
}

func (c *counters) snapshot() Snapshot {
	s := Snapshot{UpstreamErrors: c.upErrors.Load(), Retries: c.retries.Load(), InFlight: c.inflight.Load(),
		Mirrored: c.mirrored.Load(), MirrorsDropped: c.mirrorsDropped.Load(),
		Latency: make([]int64, len(LatencyBounds)+1)}
	for i := range c.requests {
		s.Requests[i] = c.requests[i].Load()
	}
	if h := c.latency.Load(); h != nil {
		for i := range *h {
			s.Latency[i] = (*h)[i].Load()
		}
	}
	return s
}

// RouteStats are a route's counters: all its requests, and those of each
// backend revision that served some.
type RouteStats struct {
	Route     string
	Total     Snapshot
	Revisions []RevisionStats
}

// RevisionStats are the counters of one revision of a backend of a route.
type RevisionStats struct {
	Service  string
	Revision int64
	Snapshot
}

// routeCounters are a route's counters and those of the revisions it
// served (a few: a slice searched linearly beats hashing their keys on
// every Apply at 10,000 routes). The App tags are those of the table that
// last served the route (see BackendConfig.App); counters that left the
// table keep theirs, so a window spanning a change loses nothing.
type routeCounters struct {
	total *counters
	revs  []revCounters
	apps  []string // the Apps of the route's backends
}

type revCounters struct {
	service  string
	revision int64
	app      string
	c        *counters
}

func (rc *routeCounters) rev(service string, revision int64, app string) *counters {
	for i := range rc.revs {
		if x := &rc.revs[i]; x.revision == revision && x.service == service {
			x.app = app
			return x.c
		}
	}
	c := newCounters()
	rc.revs = append(rc.revs, revCounters{service, revision, app, c})
	return c
}

// Add adds o's counts to s (InFlight too: the sum of what is in flight).
func (s *Snapshot) Add(o Snapshot) {
	for i := range s.Requests {
		s.Requests[i] += o.Requests[i]
	}
	s.UpstreamErrors += o.UpstreamErrors
	s.Retries += o.Retries
	s.Mirrored += o.Mirrored
	s.MirrorsDropped += o.MirrorsDropped
	s.InFlight += o.InFlight
	if len(s.Latency) < len(o.Latency) {
		s.Latency = append(s.Latency, make([]int64, len(o.Latency)-len(s.Latency))...)
	}
	for i, n := range o.Latency {
		s.Latency[i] += n
	}
}

// AppRevision returns the counters of revision rev of app (project/name)
// summed over every route backend tagged with app, false when no route
// has served that revision.
func (r *Router) AppRevision(app string, rev int64) (Snapshot, bool) {
	out, found := Snapshot{Latency: make([]int64, len(LatencyBounds)+1)}, false
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	for _, rc := range r.routeStats {
		for _, x := range rc.revs {
			if x.app == app && x.revision == rev {
				found = true
				out.Add(x.c.snapshot())
			}
		}
	}
	return out, found
}

// AppRoutes returns the totals of the routes with a backend tagged with
// app (project/name), BlueGreen preview routes included: unlike the
// revisions' counters they also count what no revision answered (a 503
// for want of a ready pod). False when no such route has been served.
func (r *Router) AppRoutes(app string) (Snapshot, bool) {
	out, found := Snapshot{Latency: make([]int64, len(LatencyBounds)+1)}, false
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	for _, rc := range r.routeStats {
		if slices.Contains(rc.apps, app) {
			found = true
			out.Add(rc.total.snapshot())
		}
	}
	return out, found
}

// Stats returns the counters of route (project/name), false when the
// router has never served it. Counters outlive table changes; those of a
// route or revision that left the table are kept (so a window spanning
// a change loses nothing).
func (r *Router) Stats(route string) (RouteStats, bool) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	rc := r.routeStats[route]
	if rc == nil {
		return RouteStats{}, false
	}
	out := RouteStats{Route: route, Total: rc.total.snapshot()}
	for _, x := range rc.revs {
		out.Revisions = append(out.Revisions, RevisionStats{Service: x.service, Revision: x.revision, Snapshot: x.c.snapshot()})
	}
	slices.SortFunc(out.Revisions, func(a, b RevisionStats) int {
		if a.Service != b.Service {
			if a.Service < b.Service {
				return -1
			}
			return 1
		}
		return int(a.Revision - b.Revision)
	})
	return out, true
}

// EndpointStats returns the counters of requests sent to ep by any route,
// false when the router knows nothing of it.
func (r *Router) EndpointStats(ep netip.AddrPort) (Snapshot, bool) {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	c := r.epStats[ep]
	if c == nil {
		return Snapshot{}, false
	}
	s := c.snapshot()
	s.InFlight = int64(r.InFlight(ep))
	return s, true
}

// bindStats points t's routes and revisions, and the endpoints the router
// just added, at the router's counters, creating those missing.
func (r *Router) bindStats(t *Table, added []*Endpoint) {
	r.statsMu.Lock()
	defer r.statsMu.Unlock()
	for key, rt := range t.routes {
		rc := r.routeStats[key]
		if rc == nil {
			rc = &routeCounters{total: newCounters()}
			r.routeStats[key] = rc
		}
		rt.stats = rc.total
		rc.apps = rc.apps[:0]
		for _, b := range rt.backends {
			if b.app != "" && !slices.Contains(rc.apps, b.app) {
				rc.apps = append(rc.apps, b.app)
			}
			for _, v := range b.revisions {
				v.stats = rc.rev(b.Service, v.Number, b.app)
			}
		}
	}
	for _, ep := range added { // set once, before the endpoint is published
		if r.epStats[ep.Addr] == nil {
			r.epStats[ep.Addr] = newCounters()
		}
		ep.stats = r.epStats[ep.Addr]
	}
}

// RouteView is a route as the router serves it now: what controllers read
// back to confirm a weight change is applied.
type RouteView struct {
	Route    string
	Host     string
	Path     string
	Backends []BackendView
}

// BackendView is one backend as applied. Share is the percentage of the
// route's weighted traffic it gets now (backends without a ready endpoint
// get none).
type BackendView struct {
	Service   string
	Weight    int32
	Share     float64
	Revisions []RevisionView
}

// RevisionView is one revision as applied: its configured weight, its
// ready endpoints, and the percentage of its backend's traffic it gets now
// (after the fall-back to endpoint counts, when that applies).
type RevisionView struct {
	Revision  int64
	Weight    int32
	Endpoints []netip.AddrPort
	Share     float64
}

// View returns route (project/name) as the current table serves it, false
// when the table has no such route.
func (r *Router) View(route string) (RouteView, bool) {
	rt := r.tables.Current().routes[route]
	if rt == nil {
		return RouteView{}, false
	}
	v := RouteView{Route: rt.Key, Host: rt.host, Path: rt.path}
	var total int64
	for _, b := range rt.backends {
		if b.weight > 0 && b.ready(avoid{}) {
			total += int64(b.weight)
		}
	}
	for _, b := range rt.backends {
		bv := BackendView{Service: b.Service, Weight: b.weight}
		if total > 0 && b.weight > 0 && b.ready(avoid{}) {
			bv.Share = 100 * float64(b.weight) / float64(total)
		}
		shares := b.revisionShares()
		for i, rv := range b.revisions {
			view := RevisionView{Revision: rv.Number, Weight: rv.weight, Share: shares[i]}
			for _, ep := range rv.endpoints {
				view.Endpoints = append(view.Endpoints, ep.Addr)
			}
			bv.Revisions = append(bv.Revisions, view)
		}
		v.Backends = append(v.Backends, bv)
	}
	return v, true
}

// AllStats returns the counters of every route the router has served,
// sorted by route: what a metrics scrape reads.
func (r *Router) AllStats() []RouteStats {
	r.statsMu.Lock()
	keys := make([]string, 0, len(r.routeStats))
	for k := range r.routeStats {
		keys = append(keys, k)
	}
	r.statsMu.Unlock()
	slices.Sort(keys)
	out := make([]RouteStats, 0, len(keys))
	for _, k := range keys {
		if s, ok := r.Stats(k); ok {
			out = append(out, s)
		}
	}
	return out
}

// AllEndpointStats returns the counters of every endpoint the router knows.
func (r *Router) AllEndpointStats() map[netip.AddrPort]Snapshot {
	r.statsMu.Lock()
	eps := make([]netip.AddrPort, 0, len(r.epStats))
	for ep := range r.epStats {
		eps = append(eps, ep)
	}
	r.statsMu.Unlock()
	out := make(map[netip.AddrPort]Snapshot, len(eps))
	for _, ep := range eps {
		if s, ok := r.EndpointStats(ep); ok {
			out[ep] = s
		}
	}
	return out
}

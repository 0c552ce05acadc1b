package router

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/drain"
)

// DefaultIdleConnTimeout is how long a pooled upstream connection may sit
// idle. It is below the keep-alive timeout of common app servers (Node.js
// and Apache 5 s, Puma 20 s, nginx 75 s), so the router nearly always
// closes an idle connection before the app does and rarely sends a request
// on a connection the app is closing; the rare race left (gunicorn's 2 s)
// is covered by the retry of requests nothing of which reached the app.
// On loopback a new connection costs tens of microseconds.
const DefaultIdleConnTimeout = 4 * time.Second

// DefaultConnectTimeout bounds a connect to an endpoint.
const DefaultConnectTimeout = 5 * time.Second

// DefaultMaxIdleConnsPerEndpoint sizes each endpoint's connection pool for
// a few hundred concurrent clients.
const DefaultMaxIdleConnsPerEndpoint = 256

// DefaultMaxBodyBytes caps a request body on a route that sets no limit of
// its own (Cloudflare's default on its free plan: large enough for uploads
// through a web form, small enough that one client cannot stream forever).
const DefaultMaxBodyBytes = 100 << 20

// Options configures a Router.
type Options struct {
	Logger *slog.Logger
	// TrustedProxies are the peers whose X-Forwarded-For, -Proto, -Host and
	// Forwarded headers are kept (and appended to); from any other peer
	// they are replaced.
	TrustedProxies []netip.Prefix
	// IdleConnTimeout: DefaultIdleConnTimeout when 0.
	IdleConnTimeout time.Duration
	// ConnectTimeout: DefaultConnectTimeout when 0; a route's
	// Timeouts.Connect shortens it for that route.
	ConnectTimeout time.Duration
	// MaxIdleConnsPerEndpoint: DefaultMaxIdleConnsPerEndpoint when 0.
	MaxIdleConnsPerEndpoint int
	// MaxBodyBytes caps request bodies on routes without MaxBodyBytes:
	// DefaultMaxBodyBytes when 0, no limit when negative.
	MaxBodyBytes int64
	// Health tunes passive health (ejection of endpoints that refuse
	// connects).
	Health HealthOptions
	// DrainTimeout is how long WebSockets and streamed responses to an
	// endpoint that left the table may go on before they are closed
	// cleanly: DefaultDrainTimeout when 0.
	DrainTimeout time.Duration
	// Now is the clock of passive health and drain deadlines: time.Now
	// when nil.
	Now func() time.Time
	// Activate is called with an App (project/name) when a request for it
	// is held for want of a ready endpoint (see Hold): the autoscaler's
	// cue to start a pod at once. It must not block.
	Activate func(app string)
	// AccessLog, when set, gets one record per request (see std/accesslog.go);
	// nil turns access logging off at no cost.
	AccessLog *slog.Logger
}

// Router serves the applied Table to its engines (std.Handler, fast).
// Its methods are safe for concurrent use.
type Router struct {
	log      *slog.Logger
	opts     Options
	rnd      randSource
	now      func() time.Time
	applyMu  sync.Mutex
	applyGen uint64 // counts Apply calls; under applyMu

	// ejected counts endpoints passive health has ejected (or holds on
	// probation): while it is 0, selection does not read the clock.
	ejected     atomic.Int64
	mirrorSlots chan struct{} // for shadow requests in flight

	// tables holds the table new requests use and the newest one none of
	// whose predecessors has a pick in progress: an endpoint in neither
	// gets no new request until a table adds it again.
	tables drain.Tables[Table, *Table]

	epMu sync.Mutex
	eps  map[netip.AddrPort]*Endpoint // every endpoint of a table or with requests in flight

	// Counters outlive tables: Apply binds each table to them.
	statsMu    sync.Mutex
	routeStats map[string]*routeCounters
	epStats    map[netip.AddrPort]*counters

	holds holds // requests held for Apps without a ready endpoint
}

// Transport returns e's own connection pool (so that the pool of a
// leaving endpoint can be emptied without touching the others), made on
// first use: at 50,000 endpoints, pools for those never used would take
// a third of the router's memory.
func (e *Endpoint) Transport(newTransport func(*Endpoint) *http.Transport) *http.Transport {
	if tr := e.tr.Load(); tr != nil {
		return tr
	}
	tr := newTransport(e)
	if !e.tr.CompareAndSwap(nil, tr) {
		return e.tr.Load()
	}
	return tr
}

// Attempt is one request's state in either engine: where it goes and
// what came back.
type Attempt struct {
	Route    *Route
	Revision *Revision
	Endpoint *Endpoint
	Status   int  // of the answer: the upstream's, or the router's own
	Retried  bool // a request that reached an endpoint was sent again
}

// Begin counts a, which Acquire just picked, in flight on its route and
// revision (Acquire counted it on the endpoint).
func (r *Router) Begin(a *Attempt) {
	a.Route.stats.inflight.Add(1)
	a.Revision.stats.inflight.Add(1)
}

// End counts a out: it took d and got a.status.
func (r *Router) End(a *Attempt, d time.Duration) {
	r.Release(a.Endpoint)
	a.Revision.stats.inflight.Add(-1)
	a.Route.stats.inflight.Add(-1)
	a.Endpoint.stats.observe(a.Status, d)
	a.Revision.stats.observe(a.Status, d)
	a.Route.stats.observe(a.Status, d) // the route last: once it counts a request, all is counted
}

// Observe counts an answer of the route itself (no endpoint was chosen).
func (rt *Route) Observe(status int, d time.Duration) { rt.stats.observe(status, d) }

// ErrTimeout is the cause of a request whose route's response timeout
// passed.
var ErrTimeout = errors.New("upstream response timeout")

// RetryOn moves a to p's endpoint for another try: the endpoint left is
// released, the revision's in-flight count moves with it, and the retry is
// counted on the route, the new revision and the new endpoint.
func (r *Router) RetryOn(a *Attempt, p Pick) {
	r.Release(a.Endpoint)
	a.Revision.stats.inflight.Add(-1)
	p.Revision.stats.inflight.Add(1)
	a.Revision, a.Endpoint = p.Revision, p.Endpoint
	a.Route.stats.retries.Add(1)
	a.Revision.stats.retries.Add(1)
	a.Endpoint.stats.retries.Add(1)
}

// globalRand uses math/rand/v2's concurrent-safe package functions.
type globalRand struct{}

func (globalRand) IntN(n int) int       { return rand.IntN(n) }
func (globalRand) Int64N(n int64) int64 { return rand.Int64N(n) }

// Options returns the router's options, defaults filled in.
func (r *Router) Options() Options { return r.opts }

// Logger is the router's logger.
func (r *Router) Logger() *slog.Logger { return r.log }

// Current returns the table new requests use (for a look that counts
// nothing in flight: a pick goes through Acquire).
func (r *Router) Current() *Table { return r.tables.Current() }

// Leaving reports whether e is in no table the router serves.
func (e *Endpoint) Leaving() bool { return e.leaving.Load() }

// New returns a Router serving an empty table (every request gets 404).
func New(opts Options) *Router {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleConnTimeout <= 0 {
		opts.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxIdleConnsPerEndpoint <= 0 {
		opts.MaxIdleConnsPerEndpoint = DefaultMaxIdleConnsPerEndpoint
	}
	if opts.MaxBodyBytes == 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	opts.Health = opts.Health.withDefaults()
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	r := &Router{
		log:         opts.Logger,
		opts:        opts,
		rnd:         globalRand{},
		now:         opts.Now,
		mirrorSlots: make(chan struct{}, MaxMirrorsInFlight),
		eps:         map[netip.AddrPort]*Endpoint{},

		routeStats: map[string]*routeCounters{},
		epStats:    map[netip.AddrPort]*counters{},
	}
	t, _ := Build(Input{})
	r.tables.Init(t, drain.Words{Owner: "router", Table: "route table", InFlight: "requests"})
	return r
}

// Apply makes t the table the router serves, without touching a listener.
// When it returns, no request will pick an endpoint t lacks, and pooled
// idle connections to such endpoints are closed. A nil t serves nothing.
func (r *Router) Apply(t *Table) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if t == nil {
		t, _ = Build(Input{})
	}
	if t.applied.Swap(true) {
		// Bound already (here or to another Router) and maybe still in
		// use by requests: bind a fresh copy instead.
		t, _ = Build(t.in)
		t.applied.Store(true)
	}
	r.applyGen++
	var added []*Endpoint
	r.epMu.Lock()
	for addr, fresh := range t.members {
		ep := r.eps[addr]
		if ep == nil {
			ep = fresh
			r.eps[addr] = ep
			added = append(added, ep)
		}
		if ep.leaving.Load() && ep.leaving.Swap(false) {
			ep.keep()
		}
		ep.gen = r.applyGen
		fresh.canon = ep
		t.members[addr] = ep
	}
	r.epMu.Unlock()
	r.bindStats(t, added)
	// Point the routes at the interned endpoints before anyone can see t.
	for _, rt := range t.routes {
		for _, b := range rt.backends {
			for _, v := range b.revisions {
				for i, ep := range v.endpoints {
					v.endpoints[i] = ep.canon
				}
			}
		}
		if m := rt.Mirror; m != nil {
			for i, ep := range m.rev.endpoints {
				m.rev.endpoints[i] = ep.canon
			}
		}
	}

	// Wait out every pick on the old table: after this, a request either
	// counted itself in flight on an old endpoint or picks from t.
	r.tables.Swap(t)

	r.epMu.Lock()
	for addr, ep := range r.eps {
		if ep.gen == r.applyGen { // in t
			continue
		}
		if !ep.leaving.Swap(true) {
			r.scheduleDrain(ep)
		}
		if ep.inflight.Load() == 0 {
			ep.closeConns()
			r.forget(ep)
			delete(r.eps, addr)
		} else {
			if tr := ep.tr.Load(); tr != nil {
				tr.CloseIdleConnections() // the busy ones close when their request ends
			}
		}
	}
	r.epMu.Unlock()
	r.tables.Broadcast()
	r.holds.wake()
}

// trackedConn is an upstream connection its endpoint can close: a
// connection whose request just ended is returned to the pool by the
// transport's own goroutine, after the request is counted out, so
// CloseIdleConnections alone could miss it.
type trackedConn struct {
	net.Conn
	ep   *Endpoint
	once sync.Once
}

// NetConn is the connection c wraps.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.ep.connMu.Lock()
		delete(c.ep.conns, c)
		c.ep.connMu.Unlock()
	})
	return c.Conn.Close()
}

// TrackConn wraps c, a new connection to e, so that e closes it when it
// leaves (closeConns), whichever engine pools it.
func (e *Endpoint) TrackConn(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, ep: e}
	e.connMu.Lock()
	if e.conns == nil {
		e.conns = map[*trackedConn]struct{}{}
	}
	e.conns[tc] = struct{}{}
	e.connMu.Unlock()
	return tc
}

// closeConns closes every connection to e. Call it only when no request is
// in flight to e and none can start (e is leaving).
func (e *Endpoint) closeConns() {
	if tr := e.tr.Load(); tr != nil {
		tr.CloseIdleConnections()
	}
	e.connMu.Lock()
	conns := make([]*trackedConn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.connMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// Acquire picks an endpoint of the route serving host and path in the
// current table and counts the request in flight on it, under the table's
// gate (see Apply): the one selection of both engines (req is the
// standard engine's httpView or the fast engine's parsed head). A retry
// passes the revision it failed on (prefer) and the addresses it tried:
// it stays in that revision when another of its endpoints is ready, so
// that retries keep the traffic split. Endpoints passive health ejected
// are chosen only when no other is ready.
func Acquire[S hostOrPath](r *Router, host, path S, req RequestView, prefer *Revision, tried []netip.AddrPort) (*Route, Pick) {
	ex := avoid{tried: tried}
	if r.ejected.Load() > 0 {
		ex.healthy, ex.now = true, r.now().UnixNano()
	}
	t := r.tables.Pick()
	rt := Lookup(t, host, path)
	var p Pick
	for _, ex := range [2]avoid{ex, {tried: tried}} {
		if rt != nil && prefer != nil {
			p = rt.sameRevision(prefer, r.rnd, ex)
		}
		if rt != nil && p.Endpoint == nil {
			p = rt.choose(req, r.rnd, ex)
		}
		if p.Endpoint != nil || !ex.healthy {
			break
		}
	}
	if p.Endpoint != nil {
		p.Endpoint.inflight.Add(1)
	}
	r.tables.Done(t)
	return rt, p
}

// Release ends a request (or a shadow copy) Acquire counted in flight on
// ep; the last one out of a leaving endpoint closes its connections.
func (r *Router) Release(ep *Endpoint) {
	if ep.inflight.Add(-1) == 0 && ep.leaving.Load() {
		r.epMu.Lock()
		// Checked again under epMu: Apply may have taken it back.
		if ep.leaving.Load() && ep.inflight.Load() == 0 {
			ep.closeConns()
		}
		r.epMu.Unlock()
		r.tables.Broadcast()
	}
}

// BodyLimit is the body cap of requests to rt (0: none).
func (r *Router) BodyLimit(rt *Route) int64 {
	if rt.maxBodyBytes > 0 {
		return rt.maxBodyBytes
	}
	return max(r.opts.MaxBodyBytes, 0)
}

// ForwardedNode is a as the for= of a Forwarded header writes it.
func ForwardedNode(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		return `"[` + a.String() + `]"`
	}
	return a.Unmap().String()
}

// Trusted reports whether a is a trusted proxy (Options.TrustedProxies),
// whose forwarding headers are kept.
func (r *Router) Trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.opts.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// CountError counts a failed try of a to get an answer from its endpoint.
func (a *Attempt) CountError() {
	a.Route.stats.upErrors.Add(1)
	a.Revision.stats.upErrors.Add(1)
	a.Endpoint.stats.upErrors.Add(1)
}

// Idempotent methods may be sent again even when the first copy may have
// reached the endpoint (RFC 9110, section 9.2.2).
func Idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// InFlight returns the number of requests in flight to ep.
func (r *Router) InFlight(ep netip.AddrPort) int {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	r.epMu.Lock()
	e := r.eps[ep]
	r.epMu.Unlock()
	if e == nil {
		return 0
	}
	return int(e.inflight.Load())
}

// WaitDrained returns nil once ep is in no table the router may still pick
// from and no request is in flight to it, or ctx's error (wrapped, naming
// what is left) when ctx ends first.
func (r *Router) WaitDrained(ctx context.Context, ep netip.AddrPort) error {
	return r.tables.WaitDrained(ctx, ep, r.inFlight, 0)
}

// WaitDrainedIP is WaitDrained for every endpoint at ip, whatever its port:
// what the node agent asks of a pod.
func (r *Router) WaitDrainedIP(ctx context.Context, ip netip.Addr) error {
	return r.tables.WaitDrainedIP(ctx, ip, r.inFlight, 0)
}

// inFlight counts the requests in flight to the endpoints match accepts.
func (r *Router) inFlight(match func(netip.AddrPort) bool) int {
	n := 0
	r.epMu.Lock()
	defer r.epMu.Unlock()
	for addr, e := range r.eps {
		if match(addr) {
			n += int(e.inflight.Load())
		}
	}
	return n
}

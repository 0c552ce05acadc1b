package router

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Passive health defaults: an endpoint refusing EjectAfter connects in a
// row is left out of selection for EjectBase, doubled on each further
// failure up to EjectMax; one successful connect puts it back for good.
// Envoy's outlier detection and HAProxy's "observe layer4" work the same
// way; the figures are Envoy's consecutive_5xx spirit scaled to loopback,
// where a refused connect costs microseconds and a pod restarts in seconds.
const (
	DefaultEjectAfter = 3
	DefaultEjectBase  = time.Second
	DefaultEjectMax   = 30 * time.Second
)

// HealthOptions tunes passive health. Zero values take the defaults above;
// a negative EjectAfter turns ejection off.
type HealthOptions struct {
	EjectAfter int
	EjectBase  time.Duration
	EjectMax   time.Duration
}

func (o HealthOptions) withDefaults() HealthOptions {
	if o.EjectAfter == 0 {
		o.EjectAfter = DefaultEjectAfter
	}
	if o.EjectBase <= 0 {
		o.EjectBase = DefaultEjectBase
	}
	if o.EjectMax <= 0 {
		o.EjectMax = DefaultEjectMax
	}
	o.EjectMax = max(o.EjectMax, o.EjectBase)
	return o
}

// ejectState is an endpoint's passive health: consecutive connect
// failures, and the current (or last) ejection.
type ejectState struct {
	fails   int
	ejected bool          // since the first ejection, until a success
	until   time.Time     // the ejection's end; after it, one try is allowed
	backoff time.Duration // the ejection's length
}

// afterConnectFailure is the state after a failed connect at now. An
// endpoint out of traffic stays so without growing its back-off (requests
// that picked it before the ejection fail too); one back on probation
// (past until, not yet successful) goes out again for twice as long.
func afterConnectFailure(s ejectState, now time.Time, o HealthOptions) ejectState {
	s.fails++
	switch {
	case o.EjectAfter < 0:
	case s.ejected && now.Before(s.until):
	case s.ejected:
		s.backoff = min(2*s.backoff, o.EjectMax)
		s.until = now.Add(s.backoff)
	case s.fails >= o.EjectAfter:
		s.ejected, s.backoff, s.until = true, o.EjectBase, now.Add(o.EjectBase)
	}
	return s
}

// health is ejectState shared by the requests to one endpoint. The
// selection path reads only the atomics; out is false and costs one load
// for an endpoint that never failed.
type health struct {
	mu      sync.Mutex
	state   ejectState
	ejected atomic.Bool
	until   atomic.Int64 // unix nanoseconds
	fails   atomic.Int32
}

// out reports whether the endpoint is ejected at now (unix nanoseconds).
func (h *health) out(now int64) bool {
	return h.ejected.Load() && now < h.until.Load()
}

// avoid is what a selection steers clear of: the addresses a request
// already tried, and, when healthy, endpoints passive health ejected at
// now (unix nanoseconds).
type avoid struct {
	tried   []netip.AddrPort
	healthy bool
	now     int64
}

func (a avoid) none() bool { return len(a.tried) == 0 && !a.healthy }

func (a avoid) skips(ep *Endpoint) bool {
	return a.healthy && ep.health.out(a.now) || slices.Contains(a.tried, ep.Addr)
}

// ConnectFailed records a failed connect to ep (not one the client's
// departure cancelled).
func (r *Router) ConnectFailed(ep *Endpoint) {
	h := &ep.health
	h.mu.Lock()
	before := h.state
	h.state = afterConnectFailure(h.state, r.now(), r.opts.Health)
	s := h.state
	h.fails.Store(int32(min(s.fails, 1<<30)))
	h.until.Store(s.until.UnixNano())
	if s.ejected && !h.ejected.Swap(true) {
		r.ejected.Add(1)
	}
	h.mu.Unlock()
	if s.ejected && s.until != before.until {
		r.log.Warn("endpoint ejected after failed connects", "endpoint", ep.Addr, "consecutiveFailures", s.fails, "for", s.backoff)
	}
}

// Connected records a successful connect to ep: its failures are forgotten
// and an ejection ends.
func (r *Router) Connected(ep *Endpoint) {
	h := &ep.health
	if h.fails.Load() == 0 && !h.ejected.Load() {
		return
	}
	h.mu.Lock()
	was := h.state.ejected
	h.state = ejectState{}
	h.fails.Store(0)
	if h.ejected.Swap(false) {
		r.ejected.Add(-1)
	}
	h.mu.Unlock()
	if was {
		r.log.Info("ejected endpoint connects again", "endpoint", ep.Addr)
	}
}

// forget drops ep's ejection from the router's count when ep leaves it.
func (r *Router) forget(ep *Endpoint) {
	if ep.health.ejected.Swap(false) {
		r.ejected.Add(-1)
	}
}

// Ejected reports whether passive health keeps ep out of traffic now.
func (r *Router) Ejected(ep netip.AddrPort) bool {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	r.epMu.Lock()
	e := r.eps[ep]
	r.epMu.Unlock()
	return e != nil && e.health.out(r.now().UnixNano())
}

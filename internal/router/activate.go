package router

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Activation makes a backend's route hold requests while the backend's
// App has no ready endpoint (an App scaled to zero, or starting), instead
// of answering 503: the router asks for a pod at once (Options.Activate)
// and releases the held requests when a table with a ready endpoint is
// applied (the readiness event; nothing polls).
type Activation struct {
	// Timeout is how long a request is held; then it gets a 503 with
	// Retry-After.
	Timeout time.Duration
	// MaxHeld bounds the requests held at once for the App; past it a
	// request gets a 503 with Retry-After at once.
	MaxHeld int
}

// RetryAfterSeconds is the Retry-After of a 503 for a request that was
// held past its App's activation timeout, or that found too many held:
// by then the App is starting, or busy starting.
const RetryAfterSeconds = 5

// holds are the requests held per App (project/name): they are counted in
// flight on their route (so the autoscaler sees a burst), and against the
// App's MaxHeld.
type holds struct {
	mu   sync.Mutex
	apps map[string]*atomic.Int64
	// applied is closed, and replaced, by every Apply: the wake-up of
	// held requests.
	applied atomic.Pointer[chan struct{}]
}

func (h *holds) count(app string) *atomic.Int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.apps == nil {
		h.apps = map[string]*atomic.Int64{}
	}
	n := h.apps[app]
	if n == nil {
		n = new(atomic.Int64)
		h.apps[app] = n
	}
	return n
}

// wait returns the channel the next Apply closes.
func (h *holds) wait() <-chan struct{} {
	for {
		if ch := h.applied.Load(); ch != nil {
			return *ch
		}
		ch := make(chan struct{})
		h.applied.CompareAndSwap(nil, &ch)
	}
}

// wake releases every held request to look at the table just applied.
func (h *holds) wake() {
	fresh := make(chan struct{})
	if old := h.applied.Swap(&fresh); old != nil {
		close(*old)
	}
}

// activation returns the first of rt's backends that holds requests.
func (rt *Route) activation() *backend {
	for _, b := range rt.backends {
		if b.activation != nil && b.app != "" {
			return b
		}
	}
	return nil
}

// Holds reports whether rt holds requests that find no ready endpoint.
func (rt *Route) Holds() bool { return rt != nil && rt.activation() != nil }

// Held returns the requests held now for app (project/name).
func (r *Router) Held(app string) int64 { return r.holds.count(app).Load() }

// Hold is what an engine calls when Acquire found route rt but no ready
// endpoint: when rt's App activates (Activation), the request waits, up
// to the App's timeout or until ctx ends, for a table with a ready
// endpoint, and gets Acquire's pick from it (counted in flight, to Begin
// as usual). With no pick, retryAfter > 0 says the request was held (or
// refused for too many held) and the answer is a 503 with that
// Retry-After; 0 says rt does not hold (the engine's usual 503). The
// returned route is nil when the route left the table meanwhile (404).
//
// Nothing here is on the path of a request that finds a ready endpoint.
func Hold[S hostOrPath](ctx context.Context, r *Router, rt *Route, host, path S, req RequestView) (_ *Route, _ Pick, retryAfter int) {
	b := rt.activation()
	if b == nil {
		return rt, Pick{}, 0
	}
	act := *b.activation
	held := r.holds.count(b.app)
	defer held.Add(-1)
	if n := held.Add(1); act.MaxHeld > 0 && n > int64(act.MaxHeld) {
		r.log.Debug("request refused: too many held", "app", b.app, "held", n-1, "max", act.MaxHeld)
		return rt, Pick{}, RetryAfterSeconds
	}
	// Held requests are in flight on their route: the autoscaler counts
	// them for concurrency, so a burst wakes enough pods.
	stats := rt.stats
	stats.inflight.Add(1)
	defer stats.inflight.Add(-1)
	if f := r.opts.Activate; f != nil {
		f(b.app)
	}
	timer := time.NewTimer(act.Timeout)
	defer timer.Stop()
	for {
		applied := r.holds.wait() // before Acquire: an Apply after it wakes us
		now, p := Acquire(r, host, path, req, nil, nil)
		if now == nil || p.Endpoint != nil {
			return now, p, 0
		}
		rt = now
		select {
		case <-applied:
		case <-timer.C:
			return rt, Pick{}, RetryAfterSeconds
		case <-ctx.Done():
			return rt, Pick{}, RetryAfterSeconds
		}
	}
}

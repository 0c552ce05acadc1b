package router

import (
	"sync"
	"time"
)

// DefaultDrainTimeout is how long a WebSocket or a streamed response to an
// endpoint that left the table may go on. It is well inside the default
// termination grace period (30 s), so that the pod still gets its SIGTERM
// with time to spare once they are closed.
const DefaultDrainTimeout = 10 * time.Second

// LongLived is traffic that may outlast any request: a WebSocket or a
// streamed response. Drain ends it cleanly (a close frame, the end of the
// stream); it may block for a moment and is called on its own goroutine.
type LongLived interface{ Drain() }

// longLivedSet is an endpoint's long-lived traffic. Once its endpoint has
// been out of the table for the drain timeout, expired is set and what is
// still open (or opens later: a request that picked the endpoint before it
// left) is drained.
type longLivedSet struct {
	mu      sync.Mutex
	set     map[LongLived]struct{}
	expired bool
	timer   *time.Timer
}

// Track adds l to ep's long-lived traffic until the returned func is
// called; when ep's drain deadline has passed already, l is drained at once.
func (ep *Endpoint) Track(l LongLived) (untrack func()) {
	s := &ep.long
	s.mu.Lock()
	if s.expired {
		s.mu.Unlock()
		go l.Drain()
		return func() {}
	}
	if s.set == nil {
		s.set = map[LongLived]struct{}{}
	}
	s.set[l] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.set, l)
		s.mu.Unlock()
	}
}

// scheduleDrain starts ep's drain deadline: ep just left the table.
func (r *Router) scheduleDrain(ep *Endpoint) {
	s := &ep.long
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = time.AfterFunc(r.opts.DrainTimeout, func() {
		if ep.leaving.Load() {
			r.log.Debug("drain deadline passed: closing long-lived traffic", "endpoint", ep.Addr)
			ep.drainLongLived()
		}
	})
}

// keep cancels ep's drain deadline: a table took it back.
func (ep *Endpoint) keep() {
	s := &ep.long
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	s.expired = false
}

func (ep *Endpoint) drainLongLived() {
	s := &ep.long
	s.mu.Lock()
	s.expired = true
	list := make([]LongLived, 0, len(s.set))
	for l := range s.set {
		list = append(list, l)
	}
	s.mu.Unlock()
	for _, l := range list {
		go l.Drain()
	}
}

// GoingAway ends every WebSocket (close code 1001) and streamed response
// now, and those that start later at once: the router is shutting down,
// and a server's Shutdown waits for streams, never for hijacked
// connections.
func (r *Router) GoingAway() {
	r.epMu.Lock()
	eps := make([]*Endpoint, 0, len(r.eps))
	for _, ep := range r.eps {
		eps = append(eps, ep)
	}
	r.epMu.Unlock()
	for _, ep := range eps {
		ep.drainLongLived()
	}
}

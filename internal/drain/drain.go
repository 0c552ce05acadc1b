// Package drain is the drain contract of Slipway's two data paths, the
// HTTP router and the layer-4 service proxy, written once: which endpoints
// the tables a pick may still come from hold, and a wait until endpoints
// are out of them and have nothing in flight.
//
// Each owner keeps an immutable table of its own type and swaps it in
// whole. A pick (a request choosing its endpoint, a connection choosing
// its upstream) reads the current table with the table's gate held for
// reading and counts itself in flight before it lets go; Swap takes the
// old table's gate for writing once the new table is in, so when it
// returns every pick of the old table has either counted itself or not
// happened. The current table is then also the settled one: an endpoint
// in neither gets nothing new until a table adds it again, and
// WaitDrained only has to wait for what is counted in flight.
//
// The package knows nothing of requests or connections: the owner counts
// them (Counter) and calls Broadcast whenever a count it reports may have
// reached zero.
package drain

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Gate is the barrier of one table. Embed it in the table type: picks
// hold it for reading (Tables.Pick), and Swap takes it for writing once.
type Gate struct{ mu sync.RWMutex }

// Barrier returns g: what Table asks of a type embedding a Gate.
func (g *Gate) Barrier() *Gate { return g }

// Table is what Tables needs of its owner's table type (through a pointer
// to it): whether the table lists an endpoint that match accepts, and its
// gate.
type Table interface {
	Holds(match func(netip.AddrPort) bool) bool
	Barrier() *Gate
}

// Holds reports whether members (a table's endpoints, whatever it keeps
// of each) has an endpoint match accepts: what a Table's Holds method
// usually is.
func Holds[V any](members map[netip.AddrPort]V, match func(netip.AddrPort) bool) bool {
	for ep := range members {
		if match(ep) {
			return true
		}
	}
	return false
}

// Words name the owner in WaitDrained's errors: "router", "route table",
// "requests" give "router: endpoint 10.0.0.1:80 still has 2 requests in
// flight".
type Words struct {
	Owner    string
	Table    string
	InFlight string
}

// Counter returns how much of what the owner counts in flight (requests,
// busy connections) is to the endpoints match accepts.
type Counter func(match func(netip.AddrPort) bool) int

// Tables is an owner's current and settled table and the notification
// WaitDrained sleeps on. Call Init before anything else; the methods are
// safe for concurrent use after that.
type Tables[T any, PT interface {
	*T
	Table
}] struct {
	// cur is the table new picks use. settled is the newest table none of
	// whose predecessors has a pick in progress.
	cur     atomic.Pointer[T]
	settled atomic.Pointer[T]
	words   Words

	notifyMu sync.Mutex
	notify   chan struct{}
}

// Init makes first the current and settled table.
func (t *Tables[T, PT]) Init(first *T, w Words) {
	t.words = w
	t.notify = make(chan struct{})
	t.cur.Store(first)
	t.settled.Store(first)
}

// Current returns the table new picks use, for reads that count nothing
// in flight (a pick must use Pick).
func (t *Tables[T, PT]) Current() *T { return t.cur.Load() }

// Pick returns the current table with its gate held for reading: what
// the caller counts in flight before it calls Done is seen by the
// WaitDrained that follows a Swap away from that table.
func (t *Tables[T, PT]) Pick() *T {
	for {
		tab := t.cur.Load()
		g := PT(tab).Barrier()
		g.mu.RLock()
		if t.cur.Load() == tab {
			return tab
		}
		g.mu.RUnlock() // swapped meanwhile: Swap may be past the barrier
	}
}

// Done ends the pick of tab.
func (t *Tables[T, PT]) Done(tab *T) { PT(tab).Barrier().mu.RUnlock() }

// Swap makes next the current table and returns the one it replaces once
// no pick of that table is in progress; next is then settled too.
// Callers serialise their Swaps.
func (t *Tables[T, PT]) Swap(next *T) (old *T) {
	old = t.cur.Swap(next)
	g := PT(old).Barrier()
	g.mu.Lock()
	g.mu.Unlock() //nolint:staticcheck // an empty critical section is the point: a barrier
	t.settled.Store(next)
	return old
}

// Broadcast wakes every WaitDrained to check again: call it after a Swap
// and whenever a count the Counter reports may have reached zero.
func (t *Tables[T, PT]) Broadcast() {
	t.notifyMu.Lock()
	close(t.notify)
	t.notify = make(chan struct{})
	t.notifyMu.Unlock()
}

func (t *Tables[T, PT]) waitChan() <-chan struct{} {
	t.notifyMu.Lock()
	defer t.notifyMu.Unlock()
	return t.notify
}

// WaitDrained returns nil once ep is in no table a pick may still come
// from and inFlight counts nothing to it, or ctx's error (wrapped, naming
// what is left) when ctx ends first. poll, when above 0, is how often
// inFlight is asked again once ep is out of the tables, for an owner
// whose in-flight count falls with time rather than on an event (the
// proxy's idle connections); without it only Broadcast wakes the wait.
func (t *Tables[T, PT]) WaitDrained(ctx context.Context, ep netip.AddrPort, inFlight Counter, poll time.Duration) error {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	w := t.words
	return t.wait(ctx, func(a netip.AddrPort) bool { return a == ep }, inFlight, poll,
		w.Owner+": endpoint "+ep.String()+" is still in the "+w.Table,
		func(n int) string {
			return w.Owner + ": endpoint " + ep.String() + " still has " + strconv.Itoa(n) + " " + w.InFlight + " in flight"
		})
}

// WaitDrainedIP is WaitDrained for every endpoint at ip, whatever its
// port: what the node agent asks of a pod.
func (t *Tables[T, PT]) WaitDrainedIP(ctx context.Context, ip netip.Addr, inFlight Counter, poll time.Duration) error {
	ip = ip.Unmap()
	w := t.words
	return t.wait(ctx, func(a netip.AddrPort) bool { return a.Addr() == ip }, inFlight, poll,
		w.Owner+": an endpoint at "+ip.String()+" is still in the "+w.Table,
		func(n int) string {
			return w.Owner + ": endpoints at " + ip.String() + " still have " + strconv.Itoa(n) + " " + w.InFlight + " in flight"
		})
}

func (t *Tables[T, PT]) wait(ctx context.Context, match func(netip.AddrPort) bool, inFlight Counter, poll time.Duration, inTableMsg string, busyMsg func(int) string) error {
	for {
		ch := t.waitChan() // before the check, so no wake-up is lost
		inTable := PT(t.cur.Load()).Holds(match) || PT(t.settled.Load()).Holds(match)
		n := inFlight(match)
		if !inTable && n == 0 {
			return nil
		}
		var tick <-chan time.Time
		var timer *time.Timer
		if !inTable && poll > 0 {
			timer = time.NewTimer(poll)
			tick = timer.C
		}
		select {
		case <-ch:
		case <-tick:
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			if inTable {
				return fmt.Errorf("%s: %w", inTableMsg, ctx.Err())
			}
			return fmt.Errorf("%s: %w", busyMsg(n), ctx.Err())
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

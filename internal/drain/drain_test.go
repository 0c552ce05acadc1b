package drain

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

type table struct {
	Gate
	eps []netip.AddrPort
}

func (t *table) Holds(match func(netip.AddrPort) bool) bool {
	return slices.ContainsFunc(t.eps, match)
}

func TestHolds(t *testing.T) {
	m := map[netip.AddrPort]bool{ep: true}
	if !Holds(m, func(a netip.AddrPort) bool { return a == ep }) {
		t.Error("Holds missed the endpoint")
	}
	if Holds(m, func(a netip.AddrPort) bool { return a == other }) {
		t.Error("Holds found an endpoint the map lacks")
	}
}

var (
	ep    = netip.MustParseAddrPort("10.0.0.1:80")
	other = netip.MustParseAddrPort("10.0.0.2:80")
	words = Words{Owner: "router", Table: "route table", InFlight: "requests"}
)

func newTables(eps ...netip.AddrPort) *Tables[table, *table] {
	var ts Tables[table, *table]
	ts.Init(&table{eps: eps}, words)
	return &ts
}

func count(n *atomic.Int64) Counter {
	return func(func(netip.AddrPort) bool) int { return int(n.Load()) }
}

// await fails the test unless ch delivers within a generous deadline.
func await[V any](t *testing.T, what string, ch <-chan V) V {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func TestWaitDrainedReturnsOutOfTableAndIdle(t *testing.T) {
	ts := newTables(ep, other)
	var n atomic.Int64
	if err := ts.WaitDrained(cancelled(), ep, count(&n), 0); err == nil {
		t.Fatal("WaitDrained returned nil while the endpoint is in the table")
	}
	ts.Swap(&table{eps: []netip.AddrPort{other}})
	// A cancelled context: only a wait that needs nothing returns nil.
	if err := ts.WaitDrained(cancelled(), ep, count(&n), 0); err != nil {
		t.Fatalf("WaitDrained = %v, want nil (out of the tables, nothing in flight)", err)
	}
	if err := ts.WaitDrained(cancelled(), other, count(&n), 0); err == nil {
		t.Fatal("WaitDrained of an endpoint still in the table returned nil")
	}
}

func TestWaitDrainedWakesOnBroadcast(t *testing.T) {
	ts := newTables()
	var n atomic.Int64
	n.Store(1)
	calls := make(chan struct{}, 10)
	counter := func(m func(netip.AddrPort) bool) int {
		v := int(n.Load()) // before the signal, which lets the test change n
		calls <- struct{}{}
		return v
	}
	done := make(chan error, 1)
	go func() { done <- ts.WaitDrained(context.Background(), ep, counter, 0) }()
	await(t, "the first count", calls)
	n.Store(0)
	ts.Broadcast()
	if err := await(t, "WaitDrained", done); err != nil {
		t.Fatalf("WaitDrained = %v, want nil", err)
	}
	if got := 1 + len(calls); got != 2 {
		t.Errorf("the count was read %d times, want 2 (once before and once after the broadcast: no polling)", got)
	}
}

func TestWaitDrainedErrorNamesWhatIsLeft(t *testing.T) {
	var n atomic.Int64
	n.Store(2)
	in := newTables(ep)
	out := newTables()
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"in table", in.WaitDrained(cancelled(), ep, count(&n), 0), "router: endpoint 10.0.0.1:80 is still in the route table: context canceled"},
		{"in flight", out.WaitDrained(cancelled(), ep, count(&n), 0), "router: endpoint 10.0.0.1:80 still has 2 requests in flight: context canceled"},
		{"IP in table", in.WaitDrainedIP(cancelled(), ep.Addr(), count(&n), 0), "router: an endpoint at 10.0.0.1 is still in the route table: context canceled"},
		{"IP in flight", out.WaitDrainedIP(cancelled(), ep.Addr(), count(&n), 0), "router: endpoints at 10.0.0.1 still have 2 requests in flight: context canceled"},
	} {
		if c.err == nil || c.err.Error() != c.want {
			t.Errorf("%s: err = %v, want %q", c.name, c.err, c.want)
		}
		if !errors.Is(c.err, context.Canceled) {
			t.Errorf("%s: err = %v does not wrap context.Canceled", c.name, c.err)
		}
	}
}

func TestWaitDrainedIPMatchesEveryPortAndMappedAddresses(t *testing.T) {
	ts := newTables(netip.MustParseAddrPort("10.0.0.1:8080"))
	var n atomic.Int64
	if err := ts.WaitDrainedIP(cancelled(), netip.MustParseAddr("::ffff:10.0.0.1"), count(&n), 0); err == nil {
		t.Fatal("WaitDrainedIP returned nil while an endpoint at the IP (another port) is in the table")
	}
	if err := ts.WaitDrained(cancelled(), netip.MustParseAddrPort("[::ffff:10.0.0.1]:8080"), count(&n), 0); err == nil {
		t.Fatal("WaitDrained of the 4-in-6 form returned nil while the endpoint is in the table")
	}
}

func TestWaitDrainedPollsTimeBasedIdleness(t *testing.T) {
	ts := newTables()
	var left atomic.Int64
	left.Store(3) // idle after three looks, with no event to say so
	counter := func(func(netip.AddrPort) bool) int {
		if left.Add(-1) >= 0 {
			return 1
		}
		return 0
	}
	done := make(chan error, 1)
	go func() { done <- ts.WaitDrained(context.Background(), ep, counter, time.Millisecond) }()
	if err := await(t, "WaitDrained with polling", done); err != nil {
		t.Fatalf("WaitDrained = %v, want nil", err)
	}
}

func TestSwapWaitsForPicksOfTheOldTable(t *testing.T) {
	ts := newTables(ep)
	old := ts.Pick()
	next := &table{eps: []netip.AddrPort{other}}
	swapped := make(chan *table, 1)
	go func() { swapped <- ts.Swap(next) }()

	deadline := time.Now().Add(10 * time.Second)
	for ts.Current() != next {
		if time.Now().After(deadline) {
			t.Fatal("the swap never made the new table current")
		}
		time.Sleep(time.Millisecond) // polling a condition, not synchronising
	}
	// New picks take the new table at once, while the old pick is held.
	if p := ts.Pick(); p != next {
		t.Errorf("Pick during the swap = %v, want the new table", p)
	} else {
		ts.Done(p)
	}
	select {
	case <-swapped:
		t.Fatal("Swap returned while a pick of the old table was in progress")
	default:
	}
	// The old table is not settled: its endpoint may still get the pick.
	var n atomic.Int64
	if err := ts.WaitDrained(cancelled(), ep, count(&n), 0); err == nil || err.Error() != "router: endpoint 10.0.0.1:80 is still in the route table: context canceled" {
		t.Errorf("WaitDrained during the swap = %v, want the endpoint still in the table", err)
	}
	ts.Done(old)
	if got := await(t, "Swap", swapped); got != old {
		t.Errorf("Swap returned %p, want the old table %p", got, old)
	}
	if err := ts.WaitDrained(cancelled(), ep, count(&n), 0); err != nil {
		t.Errorf("WaitDrained after the swap = %v, want nil", err)
	}
}

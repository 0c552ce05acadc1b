package router

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSnapshotQuantilesAndWindows(t *testing.T) {
	c := newCounters()
	// 90 fast requests (1 ms) and 10 slow ones (2 s).
	for range 90 {
		c.observe(200, time.Millisecond)
	}
	for range 10 {
		c.observe(503, 2*time.Second)
	}
	s := c.snapshot()
	if s.Total() != 100 || s.Requests[2] != 90 || s.Requests[5] != 10 {
		t.Fatalf("counts: %v", s.Requests)
	}
	if rate, ok := s.SuccessRate(); !ok || rate != 0.9 {
		t.Errorf("SuccessRate = %v, %v; want 0.9", rate, ok)
	}
	// A quantile lands in the bucket holding the duration: within a
	// factor 1.5 of it.
	for _, tc := range []struct {
		q    float64
		near time.Duration
	}{{0.5, time.Millisecond}, {0.9, time.Millisecond}, {0.95, 2 * time.Second}, {0.99, 2 * time.Second}} {
		if got := s.Quantile(tc.q); got < tc.near*2/3 || got > tc.near*3/2 {
			t.Errorf("Quantile(%v) = %s, want about %s", tc.q, got, tc.near)
		}
	}
	// The window after more traffic holds only the new requests.
	for range 50 {
		c.observe(200, 10*time.Millisecond)
	}
	c.observe(0, time.Second) // the client left
	w := c.snapshot().Sub(s)
	if d := cmp.Diff([6]int64{1, 0, 50, 0, 0, 0}, w.Requests); d != "" {
		t.Errorf("window requests (-want +got):\n%s", d)
	}
	if rate, _ := w.SuccessRate(); rate != 1 {
		t.Errorf("window SuccessRate = %v, want 1 (requests without an answer do not count)", rate)
	}
	if got := w.Quantile(0.5); got < 10*time.Millisecond*2/3 || got > 15*time.Millisecond {
		t.Errorf("window p50 = %s, want about 10ms", got)
	}
	if (Snapshot{}).Quantile(0.99) != 0 {
		t.Error("Quantile of nothing is not 0")
	}
	if _, ok := (Snapshot{}).SuccessRate(); ok {
		t.Error("SuccessRate of nothing is defined")
	}
}

func TestViewReadsBackTheAppliedSplit(t *testing.T) {
	r := New(Options{})
	if _, ok := r.View("p/r"); ok {
		t.Fatal("View of an unknown route")
	}
	rc := revRoute(true, 90, 10, 2, 1)
	rc.Backends = append(rc.Backends,
		BackendConfig{Service: "p/other", Weight: 300 - 200, Revisions: []RevisionConfig{{Revision: 4, Endpoints: []netip.AddrPort{ap("127.0.0.1:7")}}}},
		BackendConfig{Service: "p/down", Weight: 50})
	tb := mustBuild(t, Input{Routes: []RouteConfig{rc}})
	r.Apply(tb)
	eps := func(base, n int) []netip.AddrPort {
		var out []netip.AddrPort
		for i := range n {
			out = append(out, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base+i)))
		}
		return out
	}
	want := RouteView{Route: "p/r", Host: "r.test", Path: "/", Backends: []BackendView{
		{Service: "p/app", Weight: 100, Share: 50, Revisions: []RevisionView{
			{Revision: 1, Weight: 90, Endpoints: eps(1000, 2), Share: 90},
			{Revision: 2, Weight: 10, Endpoints: eps(2000, 1), Share: 10},
		}},
		{Service: "p/other", Weight: 100, Share: 50, Revisions: []RevisionView{{Revision: 4, Endpoints: eps(7, 1), Share: 100}}},
		{Service: "p/down", Weight: 50},
	}}
	opts := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	got, _ := r.View("p/r")
	if d := cmp.Diff(want, got, opts); d != "" {
		t.Errorf("view (-want +got):\n%s", d)
	}
	// Applying the same table again binds a fresh copy: same view.
	r.Apply(tb)
	if got, _ := r.View("p/r"); !cmp.Equal(want, got, opts) {
		t.Errorf("view after applying the table again: %+v", got)
	}
	r.Apply(nil)
	if _, ok := r.View("p/r"); ok {
		t.Error("route still served after Apply(nil)")
	}
}

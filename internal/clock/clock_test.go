package clock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// received returns what ch holds now, without waiting.
func received(ch <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-ch:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimer(t *testing.T) {
	c := NewFake(t0)
	tm := NewTimer(c, 10*time.Second)
	c.Advance(9 * time.Second)
	if _, ok := received(tm.C); ok {
		t.Fatal("fired before its time")
	}
	c.Advance(time.Second)
	if v, ok := received(tm.C); !ok || !v.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("received %v %v, want the time 10s on", v, ok)
	}
	c.Advance(time.Hour)
	if _, ok := received(tm.C); ok {
		t.Fatal("fired twice")
	}

	// Reset after firing, before the value is read: the stale value goes.
	tm.Reset(time.Second)
	c.Advance(time.Second)
	tm.Reset(5 * time.Second)
	if _, ok := received(tm.C); ok {
		t.Fatal("a value from before Reset was received")
	}
	c.Advance(5 * time.Second)
	if _, ok := received(tm.C); !ok {
		t.Fatal("no firing after Reset")
	}

	tm.Reset(time.Second)
	if !tm.Stop() {
		t.Error("Stop of a pending timer reported false")
	}
	c.Advance(time.Minute)
	if _, ok := received(tm.C); ok {
		t.Fatal("fired after Stop")
	}
	if tm.Stop() {
		t.Error("Stop of a stopped timer reported true")
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("%d timers pending after Stop, want 0", n)
	}
}

func TestFakeTicker(t *testing.T) {
	c := NewFake(t0)
	tk := NewTicker(c, 10*time.Second)
	var got []time.Duration
	for range 3 {
		c.Advance(10 * time.Second)
		v, ok := received(tk.C)
		if !ok {
			t.Fatalf("no tick after %v", c.Now().Sub(t0))
		}
		got = append(got, v.Sub(t0))
	}
	if want := []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second}; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("ticks at %v, want %v", got, want)
	}
	// A reader that misses ticks gets one, not a backlog.
	c.Advance(35 * time.Second)
	c.Advance(0)
	if _, ok := received(tk.C); !ok {
		t.Fatal("no tick after a long advance")
	}
	if _, ok := received(tk.C); ok {
		t.Fatal("a backlog of ticks")
	}
	tk.Stop()
	c.Advance(time.Minute)
	if _, ok := received(tk.C); ok {
		t.Fatal("ticked after Stop")
	}
	if n := c.Pending(); n != 0 {
		t.Errorf("%d timers pending after Stop, want 0", n)
	}
}

func TestRealTimerAndTicker(t *testing.T) {
	tm := NewTimer(Real{}, time.Millisecond)
	select {
	case <-tm.C:
	case <-time.After(10 * time.Second):
		t.Fatal("real timer never fired")
	}
	tk := NewTicker(Real{}, time.Millisecond)
	defer tk.Stop()
	for range 3 {
		select {
		case <-tk.C:
		case <-time.After(10 * time.Second):
			t.Fatal("real ticker stopped ticking")
		}
	}
}

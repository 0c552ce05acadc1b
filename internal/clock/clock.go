// Package clock passes time in, so that decisions never call time.Now and
// tests of back-off and pauses run in microseconds.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock is the time source every time-dependent component takes.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d and returns a stop func.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time { return time.Now() }

func (Real) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// Fake is a manually advanced clock for tests.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

// NewFake returns a Fake set to t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *Fake) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves time forward and fires, in order, every timer now due.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	rest := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.stopped = true
			due = append(due, t)
		default:
			rest = append(rest, t)
		}
	}
	c.timers = rest
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// Pending returns how many timers are waiting.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.stopped {
			n++
		}
	}
	return n
}

// Timer is time.Timer over any Clock: C receives the time once d has
// passed on c. As with time.Timer since Go 1.23, no stale value is
// received after Stop or Reset returns.
type Timer struct {
	C <-chan time.Time

	clk  Clock
	c    chan time.Time
	mu   sync.Mutex
	gen  int // a firing of an earlier arming is dropped
	stop func() bool
}

// NewTimer returns a Timer that fires once after d on c.
func NewTimer(c Clock, d time.Duration) *Timer {
	ch := make(chan time.Time, 1)
	t := &Timer{C: ch, clk: c, c: ch}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.arm(d)
	return t
}

// arm schedules the timer's next firing; t.mu is held.
func (t *Timer) arm(d time.Duration) {
	gen := t.gen
	t.stop = t.clk.AfterFunc(d, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if gen != t.gen {
			return
		}
		select {
		case t.c <- t.clk.Now():
		default:
		}
	})
}

// Stop prevents the timer from firing; it reports whether it stopped it
// before it fired.
func (t *Timer) Stop() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.disarm()
}

func (t *Timer) disarm() bool {
	t.gen++
	was := t.stop()
	select {
	case <-t.c:
		was = false
	default:
	}
	return was
}

// Reset makes the timer fire after d from now instead, whether it fired,
// was stopped or is still pending.
func (t *Timer) Reset(d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.disarm()
	t.arm(d)
}

// Ticker is time.Ticker over any Clock: C receives the time every d on c,
// dropping ticks a slow reader misses.
type Ticker struct {
	C <-chan time.Time

	clk    Clock
	c      chan time.Time
	d      time.Duration
	mu     sync.Mutex
	next   time.Time
	stop   func() bool
	closed bool
}

// NewTicker returns a Ticker of period d (d > 0) on c.
func NewTicker(c Clock, d time.Duration) *Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	ch := make(chan time.Time, 1)
	t := &Ticker{C: ch, clk: c, c: ch, d: d, next: c.Now().Add(d)}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stop = c.AfterFunc(d, t.tick)
	return t
}

func (t *Ticker) tick() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	now := t.clk.Now()
	select {
	case t.c <- now:
	default:
	}
	// The next tick keeps the period's phase; ticks already missed are
	// dropped, as time.Ticker drops them.
	t.next = t.next.Add(t.d)
	if !t.next.After(now) {
		t.next = now.Add(t.d)
	}
	t.stop = t.clk.AfterFunc(t.next.Sub(now), t.tick)
}

// Stop ends the ticks.
func (t *Ticker) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.stop()
}

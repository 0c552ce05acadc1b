package controller

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"slipway.dev/slipway/internal/clock"
)

func TestQueueDeduplicates(t *testing.T) {
	q := NewQueue[string](clock.NewFake(time.Unix(0, 0)), DefaultBackoff)
	q.Add("a")
	q.Add("b")
	q.Add("a")
	if got := q.Len(); got != 2 {
		t.Fatalf("Len = %d, want 2", got)
	}
	var got []string
	for range 2 {
		k, _ := q.Get()
		got = append(got, k)
		q.Done(k)
	}
	if diff := cmp.Diff([]string{"a", "b"}, got); diff != "" {
		t.Fatalf("order (-want +got):\n%s", diff)
	}
}

func TestQueueKeyAddedWhileProcessingIsRequeuedAfterDone(t *testing.T) {
	q := NewQueue[string](clock.NewFake(time.Unix(0, 0)), DefaultBackoff)
	q.Add("a")
	k, _ := q.Get()
	q.Add("a") // while processing
	if q.Len() != 0 {
		t.Fatalf("key queued while being processed: Len = %d", q.Len())
	}
	q.Done(k)
	if q.Len() != 1 {
		t.Fatalf("key added during processing not requeued after Done: Len = %d", q.Len())
	}
}

func TestQueueBackoffDoublesAndForgetResets(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	q := NewQueue[string](fc, Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond})
	wants := []time.Duration{10, 20, 40, 50, 50}
	for i, w := range wants {
		q.AddRateLimited("a")
		fc.Advance(w*time.Millisecond - time.Nanosecond)
		if q.Len() != 0 {
			t.Fatalf("retry %d fired before %v", i, w*time.Millisecond)
		}
		fc.Advance(time.Nanosecond)
		if q.Len() != 1 {
			t.Fatalf("retry %d did not fire at %v", i, w*time.Millisecond)
		}
		k, _ := q.Get()
		q.Done(k)
	}
	q.Forget("a")
	q.AddRateLimited("a")
	fc.Advance(10 * time.Millisecond)
	if q.Len() != 1 {
		t.Fatal("Forget did not reset the back-off")
	}
}

func TestLoopNeverProcessesAKeyConcurrently(t *testing.T) {
	q := NewQueue[int](clock.Real{}, Backoff{Base: time.Millisecond, Max: time.Millisecond})
	var mu sync.Mutex
	active := map[int]bool{}
	var overlaps, calls atomic.Int64
	done := make(chan struct{})
	r := ReconcileFunc[int](func(ctx context.Context, k int) (Result, error) {
		mu.Lock()
		if active[k] {
			overlaps.Add(1)
		}
		active[k] = true
		mu.Unlock()
		for range 1000 { // give another worker a chance to collide
			_ = k * k
		}
		mu.Lock()
		active[k] = false
		mu.Unlock()
		if calls.Add(1) == 2000 {
			close(done)
		}
		return Result{}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	finished := make(chan struct{})
	go func() { Loop(ctx, q, r, 8, nil); close(finished) }()
	go func() {
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
				q.Add(i % 4)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("reconciler did not run 2000 times")
	}
	cancel()
	<-finished
	if n := overlaps.Load(); n != 0 {
		t.Fatalf("a key was reconciled by two workers at once %d times", n)
	}
}

func TestLoopRetriesErrorsWithBackoff(t *testing.T) {
	fc := clock.NewFake(time.Unix(0, 0))
	q := NewQueue[string](fc, Backoff{Base: time.Second, Max: time.Minute})
	var calls atomic.Int32
	seen := make(chan int32, 10)
	r := ReconcileFunc[string](func(ctx context.Context, k string) (Result, error) {
		n := calls.Add(1)
		seen <- n
		if n < 3 {
			return Result{}, errors.New("not yet")
		}
		return Result{}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Loop(ctx, q, r, 1, nil)
	q.Add("k")
	<-seen
	waitFor(t, func() bool { return fc.Pending() == 1 })
	fc.Advance(time.Second) // first retry after 1s
	<-seen
	waitFor(t, func() bool { return fc.Pending() == 1 })
	fc.Advance(time.Second)
	if q.Len() != 0 || calls.Load() != 2 {
		t.Fatal("second retry fired after 1s; want 2s")
	}
	fc.Advance(time.Second)
	<-seen
	waitFor(t, func() bool { return q.Failures("k") == 0 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

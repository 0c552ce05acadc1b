// Package controller is the generic level-triggered loop every controller
// runs: sources enqueue keys (never objects), a de-duplicating queue hands
// each key to one worker at a time, and the reconciler re-reads current
// state and returns an error to be retried with back-off.
package controller

import (
	"context"
	"sync"
	"time"

	"slipway.dev/slipway/internal/clock"
)

// Backoff bounds the per-key retry delay: Base doubling up to Max.
type Backoff struct {
	Base time.Duration
	Max  time.Duration
}

// DefaultBackoff retries fast at first and never waits more than a minute.
var DefaultBackoff = Backoff{Base: 50 * time.Millisecond, Max: time.Minute}

// Queue is a de-duplicating work queue in the manner of client-go's
// workqueue: a key added while queued is not queued twice, and a key added
// while being processed is queued again only after Done, so no key is ever
// processed by two workers at once.
type Queue[K comparable] struct {
	clock   clock.Clock
	backoff Backoff

	mu         sync.Mutex
	cond       *sync.Cond
	order      []K
	queued     map[K]bool
	processing map[K]bool
	dirty      map[K]bool
	failures   map[K]int
	timers     map[K]*timer
	shutdown   bool
}

// NewQueue returns an empty queue.
func NewQueue[K comparable](c clock.Clock, b Backoff) *Queue[K] {
	q := &Queue[K]{
		clock: c, backoff: b,
		queued: map[K]bool{}, processing: map[K]bool{}, dirty: map[K]bool{},
		failures: map[K]int{}, timers: map[K]*timer{},
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is already queued.
func (q *Queue[K]) Add(key K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(key)
}

func (q *Queue[K]) addLocked(key K) {
	if q.shutdown {
		return
	}
	if q.processing[key] {
		q.dirty[key] = true
		return
	}
	if q.queued[key] {
		return
	}
	q.queued[key] = true
	q.order = append(q.order, key)
	q.cond.Signal()
}

// AddAfter queues key once d has passed. A pending AddAfter of the same
// key that fires sooner is kept; a later one is replaced.
func (q *Queue[K]) AddAfter(key K, d time.Duration) {
	if d <= 0 {
		q.Add(key)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.shutdown {
		return
	}
	at := q.clock.Now().Add(d)
	if t, ok := q.timers[key]; ok {
		if !t.at.After(at) {
			return
		}
		t.stop()
	}
	t := &timer{at: at}
	t.stop = q.clock.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.timers[key] == t { // a newer timer may have replaced this one
			delete(q.timers, key)
		}
		q.addLocked(key)
	})
	q.timers[key] = t
}

type timer struct {
	at   time.Time
	stop func() bool
}

// AddRateLimited queues key after its back-off, which doubles with every
// consecutive failure until Forget.
func (q *Queue[K]) AddRateLimited(key K) {
	q.mu.Lock()
	n := q.failures[key]
	q.failures[key] = n + 1
	q.mu.Unlock()
	q.AddAfter(key, q.delay(n))
}

func (q *Queue[K]) delay(failures int) time.Duration {
	d := q.backoff.Base
	for i := 0; i < failures && d < q.backoff.Max; i++ {
		d *= 2
	}
	return min(d, q.backoff.Max)
}

// Forget resets key's back-off after a success.
func (q *Queue[K]) Forget(key K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// Failures returns key's consecutive failure count.
func (q *Queue[K]) Failures(key K) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// Get blocks until a key is available or the queue shuts down (ok false).
// The caller must call Done(key) when finished.
func (q *Queue[K]) Get() (key K, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.order) == 0 && !q.shutdown {
		q.cond.Wait()
	}
	if len(q.order) == 0 {
		return key, false
	}
	key = q.order[0]
	var zero K
	q.order[0] = zero
	q.order = q.order[1:]
	delete(q.queued, key)
	q.processing[key] = true
	return key, true
}

// Done marks key processed; if it was added meanwhile it is queued again.
func (q *Queue[K]) Done(key K) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		delete(q.dirty, key)
		q.addLocked(key)
	}
}

// Len returns the number of keys waiting.
func (q *Queue[K]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// ShutDown wakes every Get; queued keys are dropped and timers stopped.
func (q *Queue[K]) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.shutdown = true
	for k, t := range q.timers {
		t.stop()
		delete(q.timers, k)
	}
	q.order = nil
	q.cond.Broadcast()
}

// Result tells the loop when to look at a key again though nothing changed
// (a pause that ends, a probe deadline).
type Result struct {
	RequeueAfter time.Duration
}

// Reconciler drives the world toward the desired state of one key.
type Reconciler[K comparable] interface {
	Reconcile(ctx context.Context, key K) (Result, error)
}

// ReconcileFunc adapts a function to Reconciler.
type ReconcileFunc[K comparable] func(ctx context.Context, key K) (Result, error)

func (f ReconcileFunc[K]) Reconcile(ctx context.Context, key K) (Result, error) { return f(ctx, key) }

// Loop runs workers that take keys from q and reconcile them until ctx ends.
// An error requeues the key with back-off; success forgets its failures.
func Loop[K comparable](ctx context.Context, q *Queue[K], r Reconciler[K], workers int, onError func(K, error)) {
	stop := context.AfterFunc(ctx, q.ShutDown)
	defer stop()
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, ok := q.Get()
				if !ok {
					return
				}
				res, err := r.Reconcile(ctx, key)
				switch {
				case err != nil:
					if onError != nil && ctx.Err() == nil {
						onError(key, err)
					}
					q.AddRateLimited(key)
				default:
					q.Forget(key)
					if res.RequeueAfter > 0 {
						q.AddAfter(key, res.RequeueAfter)
					}
				}
				q.Done(key)
			}
		}()
	}
	wg.Wait()
}

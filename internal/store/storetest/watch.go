package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/store"
)

// nextEvent returns the watcher's next event, failing the test if the
// channel closes or nothing arrives within waitTimeout.
func nextEvent(t *testing.T, w store.Watcher) store.Event {
	t.Helper()
	select {
	case ev, ok := <-w.Events():
		if !ok {
			t.Fatalf("watch channel closed early: Err = %v", w.Err())
		}
		return ev
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
	}
	panic("unreachable")
}

// events reads n events.
func events(t *testing.T, w store.Watcher, n int) []store.Event {
	t.Helper()
	evs := make([]store.Event, 0, n)
	for range n {
		evs = append(evs, nextEvent(t, w))
	}
	return evs
}

// waitClosed drains w until its channel closes and returns Err.
func waitClosed(t *testing.T, w store.Watcher) error {
	t.Helper()
	deadline := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-w.Events():
			if !ok {
				return w.Err()
			}
		case <-deadline:
			t.Fatalf("watch channel not closed within %v", waitTimeout)
		}
	}
}

func mustWatch(t *testing.T, ctx context.Context, s store.Store, prefix string, after int64) store.Watcher {
	t.Helper()
	w, err := s.Watch(ctx, prefix, after)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, after, err)
	}
	return w
}

func diffEvents(t *testing.T, what string, want, got []store.Event) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmpKV); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// recorder performs writes and remembers the event each acknowledged write
// must produce.
type recorder struct {
	t   *testing.T
	s   store.Store
	mu  sync.Mutex
	evs []store.Event
}

func (r *recorder) add(ev store.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) create(key, value string) store.KeyValue {
	rev, err := r.s.Create(r.t.Context(), key, []byte(value))
	if err != nil {
		r.t.Errorf("Create(%q): %v", key, err)
		return store.KeyValue{}
	}
	kv := store.KeyValue{Key: key, Value: []byte(value), CreateRevision: rev, ModRevision: rev}
	r.add(store.Event{Type: store.EventPut, KV: kv})
	return kv
}

func (r *recorder) update(prev store.KeyValue, value string) store.KeyValue {
	rev, err := r.s.Update(r.t.Context(), prev.Key, []byte(value), prev.ModRevision)
	if err != nil {
		r.t.Errorf("Update(%q, %d): %v", prev.Key, prev.ModRevision, err)
		return prev
	}
	kv := store.KeyValue{Key: prev.Key, Value: []byte(value), CreateRevision: prev.CreateRevision, ModRevision: rev}
	r.add(store.Event{Type: store.EventPut, KV: kv, PrevKV: &prev})
	return kv
}

func (r *recorder) delete(prev store.KeyValue) {
	rev, _, err := r.s.Delete(r.t.Context(), prev.Key, prev.ModRevision)
	if err != nil {
		r.t.Errorf("Delete(%q, %d): %v", prev.Key, prev.ModRevision, err)
		return
	}
	kv := prev
	kv.ModRevision = rev
	r.add(store.Event{Type: store.EventDelete, KV: kv, PrevKV: &prev})
}

// mix makes n writes over keys prefix0..prefix2: creates, CAS updates and
// deletes.
// live holds the caller's keys as last written, so that calls can continue
// one another.
func (r *recorder) mix(rnd *rand.Rand, prefix string, n int, live map[string]store.KeyValue) {
	for i := range n {
		key := randomKey(rnd, prefix, 3)
		cur, ok := live[key]
		switch {
		case !ok:
			live[key] = r.create(key, fmt.Sprintf("%s=%d", key, i))
		case rnd.IntN(4) == 0:
			r.delete(cur)
			delete(live, key)
		default:
			live[key] = r.update(cur, fmt.Sprintf("%s=%d", key, i))
		}
	}
}

// want returns the recorded events under prefix in revision order.
func (r *recorder) want(prefix string, after int64) []store.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var evs []store.Event
	for _, ev := range r.evs {
		if strings.HasPrefix(ev.KV.Key, prefix) && ev.Revision() > after {
			evs = append(evs, ev)
		}
	}
	slices.SortFunc(evs, func(a, b store.Event) int { return int(a.Revision() - b.Revision()) })
	return evs
}

func testWatchReplayThenLive(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	a := r.create("/w/a", "1")
	a = r.update(a, "2")
	b := r.create("/w/b", "1")
	r.delete(a)
	w := mustWatch(t, t.Context(), s, "/w/", start)
	r.update(b, "2")
	r.create("/w/a", "3")
	diffEvents(t, "events", r.want("/w/", start), events(t, w, 6))
}

// testWatchConcurrentWriters: with many writers, watchers started before
// and during the writes (crossing from replay to live while writes land)
// see every revision under their prefix exactly once, in order.
func testWatchConcurrentWriters(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	early := mustWatch(t, t.Context(), s, "/w/", start)
	one := mustWatch(t, t.Context(), s, "/w/3/", start)
	const workers, writes = 8, 40
	var wg sync.WaitGroup
	var midway sync.WaitGroup
	midway.Add(workers)
	for i := range workers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(i), 7))
			live := map[string]store.KeyValue{}
			r.mix(rnd, fmt.Sprintf("/w/%d/", i), writes/2, live)
			midway.Done()
			r.mix(rnd, fmt.Sprintf("/w/%d/", i), writes/2, live)
		})
	}
	wg.Go(func() {
		// Noise under a prefix that shares "/w" but not "/w/".
		r.mix(rand.New(rand.NewPCG(99, 7)), "/wx/", writes, map[string]store.KeyValue{})
	})
	midway.Wait()
	late := mustWatch(t, t.Context(), s, "/w/", start)
	wg.Wait()
	if t.Failed() {
		return
	}
	// A last write per prefix: a repeated event anywhere would now show up
	// in the diff, even one repeated after the other writes.
	r.create("/w/3/end", "end")
	for name, c := range map[string]struct {
		w      store.Watcher
		prefix string
	}{"early": {early, "/w/"}, "late": {late, "/w/"}, "one": {one, "/w/3/"}} {
		want := r.want(c.prefix, start)
		diffEvents(t, name+" watcher", want, events(t, c.w, len(want)))
	}
}

// testWatchResume: a watcher that stops after revision R and watches again
// from R gets exactly the rest.
func testWatchResume(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	r.mix(rand.New(rand.NewPCG(1, 2)), "/r/", 10, map[string]store.KeyValue{})
	ctx, cancel := context.WithCancel(t.Context())
	w := mustWatch(t, ctx, s, "/r/", start)
	first := events(t, w, 5)
	cancel()
	if err := waitClosed(t, w); err != nil {
		t.Errorf("Err after cancel = %v, want nil", err)
	}
	r.mix(rand.New(rand.NewPCG(3, 4)), "/r/x", 10, map[string]store.KeyValue{})
	resumeAt := first[len(first)-1].Revision()
	want := r.want("/r/", resumeAt)
	if len(want) != 15 {
		t.Fatalf("recorded %d events after the resume point, want 15", len(want))
	}
	w2 := mustWatch(t, t.Context(), s, "/r/", resumeAt)
	diffEvents(t, "first watch", r.want("/r/", start)[:5], first)
	diffEvents(t, "resumed watch", want, events(t, w2, len(want)))
}

func testWatchCompacted(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	r.mix(rand.New(rand.NewPCG(5, 6)), "/k/", 10, map[string]store.KeyValue{})
	mid := start + 5
	if err := s.Compact(t.Context(), mid); err != nil {
		t.Fatalf("Compact(%d): %v", mid, err)
	}
	for _, after := range []int64{0, mid - 1} {
		if _, err := s.Watch(t.Context(), "/k/", after); !errors.Is(err, store.ErrCompacted) {
			t.Errorf("Watch(after %d) with history compacted to %d: err = %v, want ErrCompacted", after, mid, err)
		}
	}
	w := mustWatch(t, t.Context(), s, "/k/", mid)
	diffEvents(t, "watch from the compacted revision", r.want("/k/", mid), events(t, w, 5))
	// Compacting to an older revision again changes nothing.
	if err := s.Compact(t.Context(), mid-2); err != nil {
		t.Errorf("Compact(%d) below the compacted revision: %v", mid-2, err)
	}
	if _, err := s.Watch(t.Context(), "/k/", mid); err != nil {
		t.Errorf("Watch(after %d) after a second, older Compact: %v", mid, err)
	}
}

func testWatchFuture(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	after := mustRevision(t, s) + 3
	w := mustWatch(t, t.Context(), s, "/f/", after)
	for i := range 6 {
		r.create(fmt.Sprintf("/f/%d", i), "v")
	}
	want := r.want("/f/", after)
	if len(want) != 3 || want[0].Revision() != after+1 {
		t.Fatalf("recorded events after %d: %d, want 3 starting at %d", after, len(want), after+1)
	}
	diffEvents(t, "watch from the future", want, events(t, w, 3))
}

func testWatchPrefixIsolation(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	w := mustWatch(t, t.Context(), s, "/a/", start)
	for _, k := range []string{"/ab", "/a", "/a/x", "/b/a/", "/ab/c", "/a/y", "/a/x/z"} {
		r.create(k, k)
	}
	got := events(t, w, 3)
	var keys []string
	for _, ev := range got {
		keys = append(keys, ev.KV.Key)
	}
	if diff := cmp.Diff([]string{"/a/x", "/a/y", "/a/x/z"}, keys); diff != "" {
		t.Errorf("keys seen by a /a/ watcher (-want +got):\n%s", diff)
	}
	diffEvents(t, "events", r.want("/a/", start), got)
}

func testWatchCancel(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	w := mustWatch(t, ctx, s, "/", mustRevision(t, s))
	mustCreate(t, s, "/x", "v")
	cancel()
	if err := waitClosed(t, w); err != nil {
		t.Errorf("Err after cancel = %v, want nil", err)
	}
}

// testSlowWatcher: a watcher nobody reads does not hold writers up, and
// when it is read at last it still delivers everything in order (or ends
// with ErrCompacted, which the contract allows).
func testSlowWatcher(t *testing.T, s store.Store) {
	r := &recorder{t: t, s: s}
	start := mustRevision(t, s)
	slow := mustWatch(t, t.Context(), s, "/s/", start)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			r.mix(rand.New(rand.NewPCG(uint64(i), 11)), fmt.Sprintf("/s/%d/", i), 30, map[string]store.KeyValue{})
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("300 writes did not finish within %v while a watcher was not read", waitTimeout)
	}
	want := r.want("/s/", start)
	var got []store.Event
	for len(got) < len(want) {
		select {
		case ev, ok := <-slow.Events():
			if !ok {
				if errors.Is(slow.Err(), store.ErrCompacted) {
					diffEvents(t, "events before ErrCompacted", want[:len(got)], got)
					return
				}
				t.Fatalf("slow watcher closed after %d of %d events: %v", len(got), len(want), slow.Err())
			}
			got = append(got, ev)
		case <-time.After(waitTimeout):
			t.Fatalf("slow watcher delivered %d of %d events", len(got), len(want))
		}
	}
	diffEvents(t, "slow watcher", want, got)
}

func testCloseEndsWatchers(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/c/a", "v")
	live := mustWatch(t, t.Context(), s, "/c/", rev)
	future := mustWatch(t, t.Context(), s, "/c/", rev+10)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for name, w := range map[string]store.Watcher{"live": live, "future": future} {
		if err := waitClosed(t, w); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s watcher Err after Close = %v, want ErrClosed", name, err)
		}
	}
	ctx := t.Context()
	_, err := s.Create(ctx, "/c/b", nil)
	wantErr(t, "Create after Close", err, store.ErrClosed)
	_, err = s.Get(ctx, "/c/a")
	wantErr(t, "Get after Close", err, store.ErrClosed)
	_, err = s.List(ctx, "/c/", store.ListOptions{})
	wantErr(t, "List after Close", err, store.ErrClosed)
	_, err = s.Watch(ctx, "/c/", rev)
	wantErr(t, "Watch after Close", err, store.ErrClosed)
}

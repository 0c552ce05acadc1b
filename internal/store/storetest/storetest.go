// Package storetest is the conformance suite every store.Store backend
// runs: the contract in store.go, checked against a real instance.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/store"
)

// Run runs the suite. open must return a new, empty store; the suite closes
// it (Close may be called twice and must then return nil or
// store.ErrClosed).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExisting", testCreateExisting},
		{"GetMissing", testGetMissing},
		{"UpdateCAS", testUpdateCAS},
		{"UpdateMissing", testUpdateMissing},
		{"DeleteCAS", testDeleteCAS},
		{"DeleteAny", testDeleteAny},
		{"DeleteMissing", testDeleteMissing},
		{"RecreateAfterDelete", testRecreateAfterDelete},
		{"EmptyKeyRejected", testEmptyKeyRejected},
		{"ValuesAreCopied", testValuesAreCopied},
		{"RevisionMonotonic", testRevisionMonotonic},
		{"ConcurrentCASOneWinner", testConcurrentCASOneWinner},
		{"ListPrefixOrder", testListPrefixOrder},
		{"ListEmpty", testListEmpty},
		{"ListPaging", testListPaging},
		{"ListAfterOutsidePrefix", testListAfterOutsidePrefix},
		{"ListConsistentUnderWrites", testListConsistentUnderWrites},
		{"CompactKeepsKeys", testCompactKeepsKeys},
		{"WatchReplayThenLive", testWatchReplayThenLive},
		{"WatchConcurrentWriters", testWatchConcurrentWriters},
		{"WatchResume", testWatchResume},
		{"WatchCompacted", testWatchCompacted},
		{"WatchFuture", testWatchFuture},
		{"WatchPrefixIsolation", testWatchPrefixIsolation},
		{"WatchCancel", testWatchCancel},
		{"SlowWatcherDoesNotBlockWriters", testSlowWatcher},
		{"CloseEndsWatchers", testCloseEndsWatchers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// waitTimeout bounds every wait for an event; it is a deadline for a
// condition, not a pause.
const waitTimeout = 20 * time.Second

// cmpKV treats nil and empty values alike: a backend may return either for
// an empty value.
var cmpKV = cmpopts.EquateEmpty()

func mustCreate(t *testing.T, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Create(t.Context(), key, []byte(value))
	if err != nil {
		t.Fatalf("Create(%q): %v", key, err)
	}
	return rev
}

func mustUpdate(t *testing.T, s store.Store, key, value string, expected int64) int64 {
	t.Helper()
	rev, err := s.Update(t.Context(), key, []byte(value), expected)
	if err != nil {
		t.Fatalf("Update(%q, %d): %v", key, expected, err)
	}
	return rev
}

func mustRevision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func mustGet(t *testing.T, s store.Store, key string) store.KeyValue {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func wantGet(t *testing.T, s store.Store, want store.KeyValue) {
	t.Helper()
	if diff := cmp.Diff(want, mustGet(t, s, want.Key), cmpKV); diff != "" {
		t.Errorf("Get(%q) (-want +got):\n%s", want.Key, diff)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

func testCreateGet(t *testing.T, s store.Store) {
	before := mustRevision(t, s)
	rev := mustCreate(t, s, "/a/one", "v1")
	if rev != before+1 {
		t.Errorf("Create revision = %d, want %d (revision before + 1)", rev, before+1)
	}
	wantGet(t, s, store.KeyValue{Key: "/a/one", Value: []byte("v1"), CreateRevision: rev, ModRevision: rev})
	if got := mustRevision(t, s); got != rev {
		t.Errorf("Revision = %d, want %d", got, rev)
	}
}

func testCreateExisting(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/a/one", "v1")
	_, err := s.Create(t.Context(), "/a/one", []byte("v2"))
	wantErr(t, "second Create", err, store.ErrExists)
	wantGet(t, s, store.KeyValue{Key: "/a/one", Value: []byte("v1"), CreateRevision: rev, ModRevision: rev})
	if got := mustRevision(t, s); got != rev {
		t.Errorf("Revision after refused Create = %d, want %d", got, rev)
	}
}

func testGetMissing(t *testing.T, s store.Store) {
	mustCreate(t, s, "/a/one", "v1")
	_, err := s.Get(t.Context(), "/a/on")
	wantErr(t, "Get of a missing key", err, store.ErrNotFound)
}

func testUpdateCAS(t *testing.T, s store.Store) {
	created := mustCreate(t, s, "/a/k", "v1")
	updated := mustUpdate(t, s, "/a/k", "v2", created)
	if updated <= created {
		t.Fatalf("Update revision %d not after create revision %d", updated, created)
	}
	want := store.KeyValue{Key: "/a/k", Value: []byte("v2"), CreateRevision: created, ModRevision: updated}
	wantGet(t, s, want)

	// The stale revision must be refused and nothing written.
	_, err := s.Update(t.Context(), "/a/k", []byte("v3"), created)
	wantErr(t, "Update with a stale revision", err, store.ErrConflict)
	wantGet(t, s, want)
	if got := mustRevision(t, s); got != updated {
		t.Errorf("Revision after refused Update = %d, want %d", got, updated)
	}
	_, err = s.Update(t.Context(), "/a/k", []byte("v3"), updated+1)
	wantErr(t, "Update with a future revision", err, store.ErrConflict)
	wantGet(t, s, want)
}

func testUpdateMissing(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/a/k", "v1")
	_, err := s.Update(t.Context(), "/a/other", []byte("v"), rev)
	wantErr(t, "Update of a missing key", err, store.ErrNotFound)
	if _, err := s.Get(t.Context(), "/a/other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Update of a missing key created it: Get err = %v", err)
	}
}

func testDeleteCAS(t *testing.T, s store.Store) {
	created := mustCreate(t, s, "/a/k", "v1")
	updated := mustUpdate(t, s, "/a/k", "v2", created)
	want := store.KeyValue{Key: "/a/k", Value: []byte("v2"), CreateRevision: created, ModRevision: updated}

	_, _, err := s.Delete(t.Context(), "/a/k", created)
	wantErr(t, "Delete with a stale revision", err, store.ErrConflict)
	wantGet(t, s, want)

	rev, old, err := s.Delete(t.Context(), "/a/k", updated)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if rev != updated+1 {
		t.Errorf("Delete revision = %d, want %d", rev, updated+1)
	}
	if diff := cmp.Diff(want, old, cmpKV); diff != "" {
		t.Errorf("Delete returned (-want +got):\n%s", diff)
	}
	_, err = s.Get(t.Context(), "/a/k")
	wantErr(t, "Get after Delete", err, store.ErrNotFound)
	if got := mustRevision(t, s); got != rev {
		t.Errorf("Revision = %d, want %d", got, rev)
	}
}

func testDeleteAny(t *testing.T, s store.Store) {
	created := mustCreate(t, s, "/a/k", "v1")
	updated := mustUpdate(t, s, "/a/k", "v2", created)
	rev, old, err := s.Delete(t.Context(), "/a/k", 0)
	if err != nil {
		t.Fatalf("Delete(expected 0): %v", err)
	}
	if rev != updated+1 {
		t.Errorf("Delete revision = %d, want %d", rev, updated+1)
	}
	want := store.KeyValue{Key: "/a/k", Value: []byte("v2"), CreateRevision: created, ModRevision: updated}
	if diff := cmp.Diff(want, old, cmpKV); diff != "" {
		t.Errorf("Delete returned (-want +got):\n%s", diff)
	}
}

func testDeleteMissing(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/a/k", "v1")
	_, _, err := s.Delete(t.Context(), "/a/missing", 0)
	wantErr(t, "Delete of a missing key", err, store.ErrNotFound)
	if got := mustRevision(t, s); got != rev {
		t.Errorf("Revision after refused Delete = %d, want %d", got, rev)
	}
}

func testRecreateAfterDelete(t *testing.T, s store.Store) {
	first := mustCreate(t, s, "/a/k", "v1")
	del, _, err := s.Delete(t.Context(), "/a/k", first)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	second := mustCreate(t, s, "/a/k", "v2")
	if second != del+1 {
		t.Errorf("re-Create revision = %d, want %d", second, del+1)
	}
	wantGet(t, s, store.KeyValue{Key: "/a/k", Value: []byte("v2"), CreateRevision: second, ModRevision: second})
}

func testEmptyKeyRejected(t *testing.T, s store.Store) {
	before := mustRevision(t, s)
	if _, err := s.Create(t.Context(), "", []byte("v")); err == nil {
		t.Error("Create with an empty key succeeded")
	}
	if _, err := s.Get(t.Context(), ""); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get with an empty key: err = %v, want an invalid-key error", err)
	}
	if got := mustRevision(t, s); got != before {
		t.Errorf("Revision after refused Create = %d, want %d", got, before)
	}
}

func testValuesAreCopied(t *testing.T, s store.Store) {
	in := []byte("original")
	rev, err := s.Create(t.Context(), "/a/k", in)
	if err != nil {
		t.Fatal(err)
	}
	copy(in, "XXXXXXXX")
	got := mustGet(t, s, "/a/k")
	copy(got.Value, "YYYYYYYY")
	wantGet(t, s, store.KeyValue{Key: "/a/k", Value: []byte("original"), CreateRevision: rev, ModRevision: rev})
}

func testRevisionMonotonic(t *testing.T, s store.Store) {
	last := mustRevision(t, s)
	step := func(what string, rev int64, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if rev != last+1 {
			t.Fatalf("%s: revision %d, want %d (one more than the last write)", what, rev, last+1)
		}
		last = rev
	}
	mods := map[string]int64{}
	for i := range 20 {
		key := fmt.Sprintf("/m/%d", i%5)
		var rev int64
		var err error
		if cur, ok := mods[key]; ok {
			if i%3 == 0 {
				rev, _, err = s.Delete(t.Context(), key, cur)
				delete(mods, key)
				step("Delete "+key, rev, err)
				continue
			}
			// A refused write in between must not consume a revision.
			if _, err := s.Update(t.Context(), key, []byte("x"), cur+100); !errors.Is(err, store.ErrConflict) {
				t.Fatalf("stale Update: err = %v, want ErrConflict", err)
			}
			rev, err = s.Update(t.Context(), key, []byte(fmt.Sprint(i)), cur)
		} else {
			rev, err = s.Create(t.Context(), key, []byte(fmt.Sprint(i)))
		}
		step("write "+key, rev, err)
		mods[key] = rev
		if got := mustRevision(t, s); got != last {
			t.Fatalf("Revision = %d, want %d", got, last)
		}
	}
}

// testConcurrentCASOneWinner: of many updates with the same expected
// revision, exactly one succeeds.
func testConcurrentCASOneWinner(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/a/k", "v0")
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []int64
	for i := range n {
		wg.Go(func() {
			r, err := s.Update(t.Context(), "/a/k", []byte(fmt.Sprint(i)), rev)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, r)
				mu.Unlock()
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("Update %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if diff := cmp.Diff([]int64{rev + 1}, won); diff != "" {
		t.Errorf("winning revisions (-want +got):\n%s", diff)
	}
	if got := mustRevision(t, s); got != rev+1 {
		t.Errorf("Revision = %d, want %d", got, rev+1)
	}
}

func testListPrefixOrder(t *testing.T, s store.Store) {
	keys := []string{"/a/c", "/a/a", "/ab", "/a/b/x", "/a", "/b/a", "/a/b"}
	want := map[string]store.KeyValue{}
	for _, k := range keys {
		rev := mustCreate(t, s, k, "value of "+k)
		want[k] = store.KeyValue{Key: k, Value: []byte("value of " + k), CreateRevision: rev, ModRevision: rev}
	}
	res, err := s.List(t.Context(), "/a/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantRes := store.ListResult{
		KVs:      []store.KeyValue{want["/a/a"], want["/a/b"], want["/a/b/x"], want["/a/c"]},
		Revision: mustRevision(t, s),
	}
	if diff := cmp.Diff(wantRes, res, cmpKV); diff != "" {
		t.Errorf("List(/a/) (-want +got):\n%s", diff)
	}
	all, err := s.List(t.Context(), "", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(keys))
	var got []string
	for _, kv := range all.KVs {
		got = append(got, kv.Key)
	}
	if diff := cmp.Diff(sorted, got); diff != "" {
		t.Errorf("List(\"\") keys (-want +got):\n%s", diff)
	}
}

func testListEmpty(t *testing.T, s store.Store) {
	rev := mustCreate(t, s, "/b/x", "v")
	res, err := s.List(t.Context(), "/a/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.ListResult{Revision: rev}, res, cmpKV); diff != "" {
		t.Errorf("List of an empty prefix (-want +got):\n%s", diff)
	}
}

func testListPaging(t *testing.T, s store.Store) {
	var want []store.KeyValue
	for i := range 25 {
		k := fmt.Sprintf("/p/%02d", i)
		rev := mustCreate(t, s, k, fmt.Sprint(i))
		want = append(want, store.KeyValue{Key: k, Value: []byte(fmt.Sprint(i)), CreateRevision: rev, ModRevision: rev})
	}
	mustCreate(t, s, "/pz", "outside")
	var got []store.KeyValue
	after := ""
	pages := 0
	for {
		res, err := s.List(t.Context(), "/p/", store.ListOptions{Limit: 7, After: after})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.KVs) > 7 {
			t.Fatalf("page of %d KVs, limit 7", len(res.KVs))
		}
		if len(res.KVs) == 0 {
			break
		}
		pages++
		got = append(got, res.KVs...)
		after = res.KVs[len(res.KVs)-1].Key
	}
	if diff := cmp.Diff(want, got, cmpKV); diff != "" {
		t.Errorf("paged List (-want +got):\n%s", diff)
	}
	if pages != 4 {
		t.Errorf("pages = %d, want 4 (25 keys, 7 a page)", pages)
	}
}

// testListAfterOutsidePrefix: a paging key before the prefix starts the
// list at the prefix; one past it ends the list.
func testListAfterOutsidePrefix(t *testing.T, s store.Store) {
	for _, k := range []string{"/a", "/b/1", "/b/2", "/c"} {
		mustCreate(t, s, k, k)
	}
	for _, c := range []struct {
		after string
		want  []string
	}{
		{"/a", []string{"/b/1", "/b/2"}},
		{"/b/", []string{"/b/1", "/b/2"}},
		{"/b/1", []string{"/b/2"}},
		{"/b/2", nil},
		{"/c", nil},
	} {
		res, err := s.List(t.Context(), "/b/", store.ListOptions{After: c.after})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, kv := range res.KVs {
			got = append(got, kv.Key)
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("List(/b/, after %q) keys (-want +got):\n%s", c.after, diff)
		}
	}
}

// testListConsistentUnderWrites: while writers update keys under the
// prefix (and nowhere else), every List is a snapshot: its Revision is the
// newest ModRevision it contains.
func testListConsistentUnderWrites(t *testing.T, s store.Store) {
	const keys = 10
	mods := make([]int64, keys)
	for i := range keys {
		mods[i] = mustCreate(t, s, fmt.Sprintf("/c/%d", i), "0")
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() {
			rev := mods[i]
			for n := 1; ctx.Err() == nil; n++ {
				r, err := s.Update(ctx, fmt.Sprintf("/c/%d", i), []byte(fmt.Sprint(n)), rev)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("Update: %v", err)
					}
					return
				}
				rev = r
			}
		})
	}
	// List until writes have landed during many Lists, or the deadline.
	first := mustRevision(t, s)
	deadline := time.Now().Add(waitTimeout)
	for lists := 0; lists < 300 || mustRevision(t, s) < first+50; lists++ {
		if time.Now().After(deadline) {
			t.Fatalf("writers made %d writes during %d Lists", mustRevision(t, s)-first, lists)
		}
		res, err := s.List(t.Context(), "/c/", store.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var newest int64
		for _, kv := range res.KVs {
			newest = max(newest, kv.ModRevision)
		}
		if len(res.KVs) != keys || newest != res.Revision {
			t.Errorf("List: %d KVs, newest ModRevision %d, Revision %d; want %d KVs and newest == Revision", len(res.KVs), newest, res.Revision, keys)
		}
	}
	cancel()
	wg.Wait()
}

func testCompactKeepsKeys(t *testing.T, s store.Store) {
	created := mustCreate(t, s, "/a/k", "v1")
	updated := mustUpdate(t, s, "/a/k", "v2", created)
	other := mustCreate(t, s, "/a/j", "j")
	if err := s.Compact(t.Context(), other); err != nil {
		t.Fatalf("Compact(%d): %v", other, err)
	}
	wantGet(t, s, store.KeyValue{Key: "/a/k", Value: []byte("v2"), CreateRevision: created, ModRevision: updated})
	res, err := s.List(t.Context(), "/a/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 2 || res.Revision != other {
		t.Errorf("List after Compact: %d KVs at %d, want 2 at %d", len(res.KVs), res.Revision, other)
	}
	if _, err := s.Update(t.Context(), "/a/k", []byte("v3"), updated); err != nil {
		t.Errorf("Update after Compact: %v", err)
	}
	if err := s.Compact(t.Context(), other+100); err == nil {
		t.Errorf("Compact(%d) beyond the current revision succeeded", other+100)
	}
}

// randomKey spreads writes over a few keys so that the same key sees
// creates, updates and deletes.
func randomKey(r *rand.Rand, prefix string, n int) string {
	return fmt.Sprintf("%s%d", prefix, r.IntN(n))
}

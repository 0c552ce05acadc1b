package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/storetest"
)

func openTest(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{})
	})
}

// TestConformanceTinyWatchBuffer runs the suite with watch buffers of two
// events, so that watchers constantly fall behind and catch up from
// history: that path must be as exact as the live one.
func TestConformanceTinyWatchBuffer(t *testing.T) {
	var stores []*Store
	storetest.Run(t, func(t *testing.T) store.Store {
		s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{WatchBuffer: 2})
		stores = append(stores, s)
		return s
	})
	var lagged int64
	for _, s := range stores {
		lagged += s.hub.laggedCount()
	}
	if lagged == 0 {
		t.Error("no watcher ever fell behind; the catch-up path went untested")
	}
}

func TestSlowWatcherCatchesUpFromHistory(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{WatchBuffer: 4, NoFsync: true})
	ctx := t.Context()
	w, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Once subscribed, unread events must overflow its buffer.
	waitFor(t, "the watcher to subscribe", func() bool { return s.hub.subCount() == 1 })
	const n = 200
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("/k%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.hub.laggedCount(); got == 0 {
		t.Fatalf("laggedCount = 0 after %d unread events with a buffer of 4", n)
	}
	for i := range n {
		select {
		case ev := <-w.Events():
			if ev.Revision() != int64(i+1) || ev.KV.Key != fmt.Sprintf("/k%03d", i) {
				t.Fatalf("event %d: revision %d key %q, want %d %q", i, ev.Revision(), ev.KV.Key, i+1, fmt.Sprintf("/k%03d", i))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d did not arrive", i)
		}
	}
}

func TestWatcherOvertakenByCompaction(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{WatchBuffer: 1, NoFsync: true, CompactKeep: -1})
	ctx := t.Context()
	w, err := s.Watch(ctx, "/", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads while n events are written and all but the last
	// compacted. The watcher holds at most one replay chunk or its buffer,
	// far fewer than n, so it must run into the compacted history.
	const n = 300
	for i := range n {
		if _, err := s.Create(ctx, fmt.Sprintf("/k%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Compact(ctx, n-1); err != nil {
		t.Fatal(err)
	}
	var revs []int64
	for ev := range w.Events() {
		revs = append(revs, ev.Revision())
	}
	if !errors.Is(w.Err(), store.ErrCompacted) {
		t.Fatalf("Err = %v after %d events, want ErrCompacted", w.Err(), len(revs))
	}
	for i, r := range revs {
		if r != int64(i+1) {
			t.Fatalf("revisions delivered before ErrCompacted = %v, want 1, 2, 3, ...", revs)
		}
	}
	if len(revs) > replayKeep+2 {
		t.Fatalf("delivered %d events; at most %d can have been read before the compaction", len(revs), replayKeep+2)
	}
}

func TestAutoCompaction(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{CompactKeep: 10, NoFsync: true})
	ctx := t.Context()
	rev, err := s.Create(ctx, "/k", []byte("0"))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 50; i++ {
		if rev, err = s.Update(ctx, "/k", []byte(fmt.Sprint(i)), rev); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "background compaction", func() bool { return s.compacted.Load() >= rev-10-compactSlack(10) })
	c := s.compacted.Load()
	if _, err := s.Watch(ctx, "/", c-1); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch(after %d) with compacted %d: err = %v, want ErrCompacted", c-1, c, err)
	}
	w, err := s.Watch(ctx, "/", rev-10)
	if err != nil {
		t.Fatalf("Watch within the kept history: %v", err)
	}
	var ev store.Event
	select {
	case ev = <-w.Events():
	case <-time.After(10 * time.Second):
		t.Fatal("no event from the kept history")
	}
	if ev.Revision() != rev-9 || string(ev.KV.Value) != "40" {
		t.Errorf("first kept event: revision %d value %q, want %d \"40\"", ev.Revision(), ev.KV.Value, rev-9)
	}
	if n := int64(historyLen(t, s)); n > 10+compactSlack(10)+1 {
		t.Errorf("history holds %d records, want at most %d", n, 10+compactSlack(10)+1)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func historyLen(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketHistory).Stats().KeyN
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCompactInChunks(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{CompactKeep: -1, NoFsync: true})
	ctx := t.Context()
	// More history than one compaction transaction deletes.
	const n = compactChunk + 500
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		h := tx.Bucket(bucketHistory)
		for r := int64(1); r <= n; r++ {
			ev := store.Event{Type: store.EventPut, KV: store.KeyValue{Key: "/k", Value: []byte("v"), CreateRevision: 1, ModRevision: r}}
			if err := h.Put(be64(r), encodeEvent(ev)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(metaRevision, be64(n))
	}); err != nil {
		t.Fatal(err)
	}
	s.rev.Store(n)
	if err := s.Compact(ctx, n-1); err != nil {
		t.Fatal(err)
	}
	if got := historyLen(t, s); got != 1 {
		t.Errorf("history records after Compact(%d) = %d, want 1", n-1, got)
	}
	if got := s.compacted.Load(); got != n-1 {
		t.Errorf("compacted = %d, want %d", got, n-1)
	}
}

func TestReopenKeepsState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	rev, err := s.Create(ctx, "/a", []byte("1"))
	if err != nil {
		t.Fatal(err)
	}
	rev2, err := s.Create(ctx, "/b", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	s = openTest(t, path, Options{})
	if got, _ := s.Revision(ctx); got != rev2 {
		t.Errorf("Revision after reopen = %d, want %d", got, rev2)
	}
	if _, err := s.Watch(ctx, "/", rev-1); !errors.Is(err, store.ErrCompacted) {
		t.Errorf("Watch below the compacted revision after reopen: err = %v, want ErrCompacted", err)
	}
	kv, err := s.Get(ctx, "/a")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.KeyValue{Key: "/a", Value: []byte("1"), CreateRevision: rev, ModRevision: rev}, kv); diff != "" {
		t.Errorf("Get after reopen (-want +got):\n%s", diff)
	}
	rev3, err := s.Create(ctx, "/c", nil)
	if err != nil || rev3 != rev2+1 {
		t.Errorf("Create after reopen = %d, %v; want %d", rev3, err, rev2+1)
	}
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	openTest(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("file mode = %o, want 600", got)
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	openTest(t, path, Options{})
	// flock locks belong to the open file, so a second open in this
	// process contends exactly like another process would.
	start := time.Now()
	s, err := Open(path, Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !strings.Contains(err.Error(), "locked by another process") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not say the file %s is locked", err, path)
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Errorf("Open gave up after %v, want about 200ms", waited)
	}
}

func TestOpenNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	setMeta(t, path, metaSchema, be64(schemaVersion+1))
	_, err = Open(path, Options{})
	want := fmt.Sprintf("schema version %d is newer than version %d", schemaVersion+1, schemaVersion)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Open of a newer schema: err = %v, want it to contain %q", err, want)
	}
}

func TestOpenForeignFileRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "other.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("something"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = Open(path, Options{})
	if err == nil || !strings.Contains(err.Error(), "not a Slipway store") {
		t.Errorf("Open of a foreign bbolt file: err = %v, want \"not a Slipway store\"", err)
	}

	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(junk, Options{}); err == nil {
		t.Error("Open of a junk file succeeded")
	}
}

func setMeta(t *testing.T, path string, key, value []byte) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(key, value) }); err != nil {
		t.Fatal(err)
	}
}

func TestBadInput(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{})
	ctx := t.Context()
	long := strings.Repeat("k", bbolt.MaxKeySize+1)
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"empty key", func() error { _, err := s.Create(ctx, "", nil); return err }, "key is empty"},
		{"long key", func() error { _, err := s.Create(ctx, long, nil); return err }, "exceeds the 32768-byte limit"},
		{"negative after", func() error { _, err := s.Watch(ctx, "/", -1); return err }, "after revision -1 is negative"},
		{"negative limit", func() error { _, err := s.List(ctx, "/", store.ListOptions{Limit: -1}); return err }, "limit -1 is negative"},
		{"negative delete", func() error { _, _, err := s.Delete(ctx, "/k", -1); return err }, "expected revision -1 is negative"},
		{"zero update", func() error { _, err := s.Update(ctx, "/k", nil, 0); return err }, "expected revision 0 must be positive"},
		{"negative compact", func() error { return s.Compact(ctx, -1) }, "compact revision -1 is negative"},
		{"future compact", func() error { return s.Compact(ctx, 5) }, "compact revision 5 is beyond the current revision 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "x.db"), Options{WatchBuffer: -1}); err == nil {
		t.Error("Open with WatchBuffer -1 succeeded")
	}
}

// TestCanceledWriteNotApplied: a write whose context ended before it was
// committed reports the context error and writes nothing.
func TestCanceledWriteNotApplied(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Create(ctx, "/k", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a canceled context: err = %v, want context.Canceled", err)
	}
	if _, err := s.Get(t.Context(), "/k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get after canceled Create: err = %v, want ErrNotFound", err)
	}
}

func TestCheckCleanFile(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "slipway.db"), Options{NoFsync: true})
	for i := range 100 {
		if _, err := s.Create(t.Context(), fmt.Sprintf("/k/%d", i), []byte(strings.Repeat("x", i*50))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
}

package etcd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/etcd"
	"slipway.dev/slipway/internal/store/etcd/etcdtest"
	"slipway.dev/slipway/internal/store/storetest"
)

func open(t testing.TB, endpoint, prefix string) *etcd.Store {
	t.Helper()
	s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{endpoint}, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConformance runs the suite every backend passes. The subtests share
// one etcd, each under a prefix of its own (so each store starts empty).
func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	var n atomic.Int64
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, srv.Endpoint, fmt.Sprintf("/conformance-%d", n.Add(1)))
	})
}

// TestPrefixesDoNotOverlap: a store under /p sees nothing of one under
// /p2, in lists and watches, though one prefix begins the other.
func TestPrefixesDoNotOverlap(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := open(t, srv.Endpoint, "/p"), open(t, srv.Endpoint, "/p2/")
	defer a.Close()
	defer b.Close()
	start, err := a.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Watch(t.Context(), "", start)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Create(t.Context(), "/x", []byte("b")); err != nil {
		t.Fatal(err)
	}
	rev, err := a.Create(t.Context(), "/x", []byte("a"))
	if err != nil {
		t.Fatalf("Create in /p of a key /p2 has: %v", err)
	}
	res, err := a.List(t.Context(), "", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != 1 || string(res.KVs[0].Value) != "a" || res.KVs[0].Key != "/x" {
		t.Errorf("List(\"\") under /p = %+v, want only /x=a", res.KVs)
	}
	select {
	case ev := <-w.Events():
		if ev.Revision() != rev || string(ev.KV.Value) != "a" {
			t.Errorf("first event under /p: %+v, want /x=a at %d", ev, rev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	if _, err := a.Create(t.Context(), "x", nil); err == nil {
		t.Error("Create of a key without a leading / succeeded")
	}
}

// TestAcknowledgedWritesSurviveACrash: every write etcd acknowledged is
// there after etcd is SIGKILLed and started again on its data, and a watch
// open across the crash misses nothing.
func TestAcknowledgedWritesSurviveACrash(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv.Endpoint, "/crash")
	defer s.Close()
	const n = 50
	revs := map[string]int64{}
	for i := range n {
		k := fmt.Sprintf("/k/%02d", i)
		rev, err := s.Create(t.Context(), k, []byte(k))
		if err != nil {
			t.Fatal(err)
		}
		revs[k] = rev
	}
	w, err := s.Watch(t.Context(), "/k/", revs["/k/00"]-1)
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// A watch open across the crash goes on where it was, or ends with an
	// error (its owner then lists again): it never skips an event.
	after, err := s.Create(ctx, "/k/after", nil)
	if err != nil {
		t.Fatalf("Create after the restart: %v", err)
	}
	var want []int64
	for i := range n {
		want = append(want, revs[fmt.Sprintf("/k/%02d", i)])
	}
	checkWatch(t, ctx, w, append(want, after))
	res, err := s.List(ctx, "/k/", store.ListOptions{})
	if err != nil {
		t.Fatalf("List after the restart: %v", err)
	}
	if len(res.KVs) != n+1 {
		t.Fatalf("%d keys after the crash, want %d", len(res.KVs), n+1)
	}
	for _, kv := range res.KVs[:n] {
		if kv.ModRevision != revs[kv.Key] || string(kv.Value) != kv.Key {
			t.Errorf("%s: value %q at %d, want %q at %d", kv.Key, kv.Value, kv.ModRevision, kv.Key, revs[kv.Key])
		}
	}
}

// checkWatch reads w until it has delivered events at the revisions want,
// or ended with an error after a prefix of them.
func checkWatch(t *testing.T, ctx context.Context, w store.Watcher, want []int64) {
	t.Helper()
	for i, rev := range want {
		select {
		case ev, ok := <-w.Events():
			if !ok {
				t.Logf("the watch ended across the restart after %d events: %v", i, w.Err())
				if w.Err() == nil {
					t.Error("the watch ended with no error")
				}
				return
			}
			if ev.Revision() != rev {
				t.Fatalf("event %d at revision %d, want %d", i, ev.Revision(), rev)
			}
		case <-ctx.Done():
			t.Fatalf("the watch delivered %d events, then nothing for 30s", i)
		}
	}
	t.Logf("the watch went on across the restart")
}

// TestOpenUnreachable: Open gives up after DialTimeout and names the
// endpoints.
func TestOpenUnreachable(t *testing.T) {
	ln := "127.0.0.1:1" // nothing listens on port 1
	start := time.Now()
	_, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{"http://" + ln, "http://127.0.0.1:2"}, DialTimeout: 500 * time.Millisecond})
	if err == nil {
		t.Fatal("Open of an unreachable etcd succeeded")
	}
	if !strings.Contains(err.Error(), "http://127.0.0.1:1,http://127.0.0.1:2") || !strings.Contains(err.Error(), "within 500ms") {
		t.Errorf("err = %v, want it to name both endpoints and the timeout", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Open took %v with a 500ms dial timeout", d)
	}
	if _, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{"127.0.0.1:2379"}}); err == nil || !strings.Contains(err.Error(), "must be a URL") {
		t.Errorf("Open with an endpoint that is no URL: err = %v", err)
	}
}

func TestTLSConfigErrors(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	for _, c := range []struct {
		cert, key, ca string
		want          string
	}{
		{cert: missing, key: missing, want: "missing.pem"},
		{cert: junk, want: "give both or neither"},
		{ca: missing, want: "missing.pem"},
		{ca: junk, want: "no PEM certificate"},
	} {
		_, err := etcd.TLSConfig(c.cert, c.key, c.ca)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("TLSConfig(%q, %q, %q): err = %v, want one that says %q", c.cert, c.key, c.ca, err, c.want)
		}
	}
	if cfg, err := etcd.TLSConfig("", "", ""); err != nil || cfg == nil {
		t.Errorf("TLSConfig with no files: %v, %v", cfg, err)
	}
}

// TestAutomaticCompaction: past CompactKeep revisions (and a tenth more)
// the store compacts etcd's history, so a watch from the start is too old.
func TestAutomaticCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{srv.Endpoint}, Prefix: "/auto", CompactKeep: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start, err := s.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i := range 30 {
		if last, err = s.Create(t.Context(), fmt.Sprintf("/k/%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithCancel(t.Context())
		_, err := s.Watch(ctx, "/", start)
		cancel()
		if errors.Is(err, store.ErrCompacted) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("history from %d still watchable 20s after writing up to %d with CompactKeep 10", start, last)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
	}
	if _, err := s.Watch(t.Context(), "/", last-5); err != nil {
		t.Errorf("Watch within the kept revisions: %v", err)
	}
}

// TestClusterLosesAMember: on a cluster of three, with every member's
// endpoint given, writes go on when one member is SIGKILLed (the client
// moves to the others), and every acknowledged write is there after. A
// write in flight when the member died (its leader, perhaps) may fail
// without saying whether it landed: it is retried, as callers do, and a
// retried Create that finds its key took effect.
func TestClusterLosesAMember(t *testing.T) {
	members := etcdtest.StartCluster(t, 3)
	var eps []string
	for _, m := range members {
		eps = append(eps, m.Endpoint)
	}
	s, err := etcd.Open(t.Context(), etcd.Options{Endpoints: eps, Prefix: "/cluster"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	acked := map[string]int64{}
	write := func(i int) {
		t.Helper()
		k := fmt.Sprintf("/k/%03d", i)
		for {
			rev, err := s.Create(ctx, k, []byte(k))
			if errors.Is(err, store.ErrExists) {
				kv, gerr := s.Get(ctx, k)
				if gerr != nil {
					t.Fatal(gerr)
				}
				rev, err = kv.ModRevision, nil
			}
			if err == nil {
				acked[k] = rev
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("Create %s: %v", k, err)
			}
			t.Logf("Create %s failed, retrying: %v", k, err)
		}
	}
	for i := range 20 {
		write(i)
	}
	members[0].Kill() // the client's first endpoint
	for i := 20; i < 40; i++ {
		write(i)
	}
	res, err := s.List(ctx, "/k/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KVs) != len(acked) {
		t.Fatalf("%d keys, want the %d acknowledged", len(res.KVs), len(acked))
	}
	for _, kv := range res.KVs {
		if acked[kv.Key] != kv.ModRevision {
			t.Errorf("%s at %d, acknowledged at %d", kv.Key, kv.ModRevision, acked[kv.Key])
		}
	}
}

// TestNoSpace: once etcd's database passes its quota, writes fail with
// store.ErrNoSpace and CheckWritable says so (the API's /readyz), while
// reads go on.
func TestNoSpace(t *testing.T) {
	srv := etcdtest.StartWithArgs(t, "--quota-backend-bytes", fmt.Sprint(2<<20))
	s := open(t, srv.Endpoint, "/full")
	defer s.Close()
	if err := s.CheckWritable(t.Context()); err != nil {
		t.Fatalf("CheckWritable before any refusal: %v", err)
	}
	value := bytes.Repeat([]byte("x"), 64<<10)
	var err error
	var written int
	for written = 0; written < 1000; written++ {
		if _, err = s.Create(t.Context(), fmt.Sprintf("/k/%04d", written), value); err != nil {
			break
		}
	}
	if !errors.Is(err, store.ErrNoSpace) {
		t.Fatalf("after %d writes of 64 KiB into a 2 MiB quota: err = %v, want ErrNoSpace", written, err)
	}
	if err := s.CheckWritable(t.Context()); !errors.Is(err, store.ErrNoSpace) {
		t.Errorf("CheckWritable with the NOSPACE alarm raised: %v, want ErrNoSpace", err)
	}
	if _, err := s.Get(t.Context(), "/k/0000"); err != nil {
		t.Errorf("Get with the NOSPACE alarm raised: %v", err)
	}
}

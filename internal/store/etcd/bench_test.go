package etcd_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/store/etcd/etcdtest"
)

// BenchmarkStores runs the same operations on bolt and on etcd (one local
// member, both fsyncing every acknowledged write) in one run. Each etcd
// line reports etcd/bolt: its figure over bolt's from the line before.
//
//	go test -run '^$' -bench BenchmarkStores ./internal/store/etcd
func BenchmarkStores(b *testing.B) {
	srv := etcdtest.Start(b)
	var n atomic.Int64
	backends := []struct {
		name string
		open func(b *testing.B) store.Store
	}{
		{"bolt", func(b *testing.B) store.Store {
			s, err := bolt.Open(filepath.Join(b.TempDir(), "bench.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { s.Close() })
			return s
		}},
		{"etcd", func(b *testing.B) store.Store {
			s := open(b, srv.Endpoint, fmt.Sprintf("/bench-%d", n.Add(1)))
			b.Cleanup(func() { s.Close() })
			return s
		}},
	}
	for _, op := range []struct {
		name string
		// run does b.N operations and returns the figure compared
		// (ns/op, or the p99 it reports).
		run func(b *testing.B, s store.Store) float64
	}{
		{"create", benchCreate},
		{"update-cas", benchUpdateCAS},
		{"list-10k", benchList10k},
		{"watch-100-p99", benchWatch100},
	} {
		var bolt float64
		for _, be := range backends {
			b.Run(op.name+"/"+be.name, func(b *testing.B) {
				got := op.run(b, be.open(b))
				if be.name == "bolt" {
					bolt = got
				} else if bolt > 0 {
					b.ReportMetric(got/bolt, "etcd/bolt")
				}
			})
		}
	}
}

var benchValue = bytes.Repeat([]byte("v"), 1024)

func nsPerOp(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }

func benchCreate(b *testing.B, s store.Store) float64 {
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.Create(ctx, fmt.Sprintf("/bench/%09d", i), benchValue); err != nil {
			b.Fatal(err)
		}
		i++
	}
	return nsPerOp(b)
}

func benchUpdateCAS(b *testing.B, s store.Store) float64 {
	ctx := context.Background()
	rev, err := s.Create(ctx, "/bench/k", benchValue)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if rev, err = s.Update(ctx, "/bench/k", benchValue, rev); err != nil {
			b.Fatal(err)
		}
	}
	return nsPerOp(b)
}

func benchList10k(b *testing.B, s store.Store) float64 {
	const n = 10_000
	ctx := context.Background()
	// 32 writers, so that both stores commit the setup in groups.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if _, err := s.Create(ctx, fmt.Sprintf("/list/%06d", i), benchValue); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for b.Loop() {
		res, err := s.List(ctx, "/list/", store.ListOptions{})
		if err != nil || len(res.KVs) != n {
			b.Fatalf("List: %d KVs, %v", len(res.KVs), err)
		}
	}
	return nsPerOp(b)
}

// benchWatch100 writes b.N keys one after another while 100 watchers
// watch the prefix, and reports the p50 and p99 of the time from just
// before the write to a watcher's receiving its event (every event, every
// watcher), and of the write alone.
func benchWatch100(b *testing.B, s store.Store) float64 {
	const watchers = 100
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start, err := s.Revision(ctx)
	if err != nil {
		b.Fatal(err)
	}
	lat := make([][]time.Duration, watchers)
	var wg sync.WaitGroup
	var want atomic.Int64 // events each watcher must see; set after the loop
	want.Store(-1)
	for i := range watchers {
		w, err := s.Watch(ctx, "/watch/", start)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			for ev := range w.Events() {
				sent := time.Unix(0, int64(binary.BigEndian.Uint64(ev.KV.Value)))
				lat[i] = append(lat[i], time.Since(sent))
				if n := want.Load(); n >= 0 && int64(len(lat[i])) >= n {
					return
				}
			}
		})
	}
	var writes []time.Duration
	value := make([]byte, 1024)
	i := 0
	for b.Loop() {
		t0 := time.Now()
		binary.BigEndian.PutUint64(value, uint64(t0.UnixNano()))
		if _, err := s.Create(ctx, fmt.Sprintf("/watch/%09d", i), value); err != nil {
			b.Fatal(err)
		}
		writes = append(writes, time.Since(t0))
		i++
	}
	want.Store(int64(i))
	// Watchers that saw everything before want was set are woken by one
	// more event, which they do not count.
	if _, err := s.Create(ctx, "/watch/~end", value); err != nil {
		b.Fatal(err)
	}
	wg.Wait()
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l[:i]...)
	}
	p99 := percentile(all, 99)
	b.ReportMetric(float64(percentile(all, 50)), "p50-ns")
	b.ReportMetric(float64(p99), "p99-ns")
	b.ReportMetric(float64(percentile(writes, 99)), "write-p99-ns")
	return float64(p99)
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

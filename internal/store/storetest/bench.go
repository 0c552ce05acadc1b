package storetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store"
)

// The benchmark bodies every backend runs, so that their figures compare
// (BenchmarkStores in store/etcd runs them on bolt and etcd in one run).

var benchValue = bytes.Repeat([]byte("v"), 1024)

// BenchCreate creates b.N keys of 1 KB one after another.
func BenchCreate(b *testing.B, s store.Store) {
	ctx := context.Background()
	i := 0
	for b.Loop() {
		if _, err := s.Create(ctx, fmt.Sprintf("/bench/%09d", i), benchValue); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchUpdateCAS updates one key b.N times, each naming the revision the
// last one returned.
func BenchUpdateCAS(b *testing.B, s store.Store) {
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
}

// BenchList creates n keys of 1 KB (from 32 writers, so that a backend
// commits them in groups) and lists them b.N times.
func BenchList(b *testing.B, s store.Store, n int) {
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
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
}

// BenchWatchDelivery writes b.N keys of 1 KB one after another while
// watchers watch their prefix, and reports, over every event and watcher,
// the p50 and p99 of the time from just before the write to the watcher's
// receiving it (p50-ns, p99-ns), and the same clock stopped when the write
// returns (write-p50-ns, write-p99-ns: the commit latency every delivery
// includes). It returns the delivery p99.
func BenchWatchDelivery(b *testing.B, s store.Store, watchers int) time.Duration {
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
	// Watchers that already saw everything before want was set are woken
	// by one more event, which they do not count.
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
	b.ReportMetric(float64(percentile(writes, 50)), "write-p50-ns")
	b.ReportMetric(float64(percentile(writes, 99)), "write-p99-ns")
	return p99
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

package bolt

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

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
)

// Every benchmark has a "raw-bbolt" sibling doing the least bbolt work
// that could serve the same call, measured in the same run: the ratio is
// what the store's revision, history and watch machinery costs.

var benchValue = bytes.Repeat([]byte("v"), 1024)

func benchStore(b *testing.B, opts Options) *Store {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchRaw(b *testing.B, noSync bool) *bbolt.DB {
	b.Helper()
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{NoSync: noSync, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket(bucketKeys); return err }); err != nil {
		b.Fatal(err)
	}
	return db
}

func BenchmarkCreateSequential(b *testing.B) {
	for _, mode := range []struct {
		name   string
		noSync bool
	}{{"fsync", false}, {"nofsync", true}} {
		b.Run(mode.name+"/store", func(b *testing.B) {
			s := benchStore(b, Options{NoFsync: mode.noSync})
			ctx := context.Background()
			i := 0
			for b.Loop() {
				if _, err := s.Create(ctx, fmt.Sprintf("/bench/%09d", i), benchValue); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(mode.name+"/raw-bbolt", func(b *testing.B) {
			db := benchRaw(b, mode.noSync)
			i := 0
			for b.Loop() {
				key := fmt.Appendf(nil, "/bench/%09d", i)
				if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketKeys).Put(key, benchValue) }); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkUpdateCAS(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, Options{})
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
	})
	b.Run("raw-bbolt", func(b *testing.B) {
		// Read, compare, write in one transaction: the least a CAS needs.
		db := benchRaw(b, false)
		key := []byte("/bench/k")
		var rev uint64
		for b.Loop() {
			err := db.Update(func(tx *bbolt.Tx) error {
				bk := tx.Bucket(bucketKeys)
				if cur := bk.Get(key); cur != nil && binary.BigEndian.Uint64(cur) != rev {
					return fmt.Errorf("conflict")
				}
				rev++
				return bk.Put(key, append(binary.BigEndian.AppendUint64(nil, rev), benchValue...))
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkList10000(b *testing.B) {
	const n = 10_000
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, Options{NoFsync: true})
		ctx := context.Background()
		fill(b, n, func(key string) error { _, err := s.Create(ctx, key, benchValue); return err })
		for b.Loop() {
			res, err := s.List(ctx, "/list/", store.ListOptions{})
			if err != nil || len(res.KVs) != n {
				b.Fatalf("List: %d KVs, %v", len(res.KVs), err)
			}
		}
	})
	b.Run("raw-bbolt", func(b *testing.B) {
		db := benchRaw(b, true)
		fill(b, n, func(key string) error {
			return db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketKeys).Put([]byte(key), benchValue) })
		})
		type kv struct {
			key   string
			value []byte
		}
		for b.Loop() {
			var out []kv
			err := db.View(func(tx *bbolt.Tx) error {
				c := tx.Bucket(bucketKeys).Cursor()
				p := []byte("/list/")
				for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
					out = append(out, kv{string(k), bytes.Clone(v)})
				}
				return nil
			})
			if err != nil || len(out) != n {
				b.Fatalf("scan: %d, %v", len(out), err)
			}
		}
	})
}

// fill writes n keys from 8 goroutines, so that the store's group commit
// keeps setup short.
func fill(b *testing.B, n int, put func(key string) error) {
	b.Helper()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := put(fmt.Sprintf("/list/%06d", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkWatchDelivery100 measures, per event and watcher, the time from
// just before the write call to the watcher receiving the event, as p50
// and p99. write-p50-ns and write-p99-ns are the same clock stopped when
// Create returns: the commit latency every delivery includes. One watcher is the baseline for
// a hundred.
func BenchmarkWatchDelivery100(b *testing.B) {
	for _, watchers := range []int{1, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			s := benchStore(b, Options{})
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
			// Watchers that already saw everything before want was set
			// are woken by one more event, which they do not count.
			if _, err := s.Create(ctx, "/watch/~end", value); err != nil {
				b.Fatal(err)
			}
			wg.Wait()
			b.StopTimer()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l[:i]...)
			}
			b.ReportMetric(float64(percentile(all, 50)), "p50-ns")
			b.ReportMetric(float64(percentile(all, 99)), "p99-ns")
			b.ReportMetric(float64(percentile(writes, 50)), "write-p50-ns")
			b.ReportMetric(float64(percentile(writes, 99)), "write-p99-ns")
		})
	}
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[(len(s)-1)*p/100]
}

// BenchmarkCreateParallel shows group commit: 16 writers per core share
// fsyncs. raw-bbolt-update is one transaction (one fsync) per write;
// raw-bbolt-batch is bbolt's own DB.Batch.
func BenchmarkCreateParallel(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s := benchStore(b, Options{})
		ctx := context.Background()
		var next atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := s.Create(ctx, fmt.Sprintf("/bench/%09d", next.Add(1)), benchValue); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	for _, batch := range []bool{false, true} {
		name := "raw-bbolt-update"
		if batch {
			name = "raw-bbolt-batch"
		}
		b.Run(name, func(b *testing.B) {
			db := benchRaw(b, false)
			update := db.Update
			if batch {
				update = db.Batch
			}
			var next atomic.Int64
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Appendf(nil, "/bench/%09d", next.Add(1))
					if err := update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketKeys).Put(key, benchValue) }); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

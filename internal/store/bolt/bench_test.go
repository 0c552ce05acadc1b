package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store/storetest"
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
			storetest.BenchCreate(b, benchStore(b, Options{NoFsync: mode.noSync}))
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
		storetest.BenchUpdateCAS(b, benchStore(b, Options{}))
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
		storetest.BenchList(b, benchStore(b, Options{NoFsync: true}), n)
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
// just before the write call to the watcher receiving the event
// (storetest.BenchWatchDelivery). One watcher is the baseline for a
// hundred.
func BenchmarkWatchDelivery100(b *testing.B) {
	for _, watchers := range []int{1, 100} {
		b.Run(fmt.Sprintf("watchers=%d", watchers), func(b *testing.B) {
			storetest.BenchWatchDelivery(b, benchStore(b, Options{}), watchers)
		})
	}
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

package etcd_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/store/etcd/etcdtest"
	"slipway.dev/slipway/internal/store/storetest"
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

func nsPerOp(b *testing.B) float64 { return float64(b.Elapsed().Nanoseconds()) / float64(b.N) }

func benchCreate(b *testing.B, s store.Store) float64 {
	storetest.BenchCreate(b, s)
	return nsPerOp(b)
}

func benchUpdateCAS(b *testing.B, s store.Store) float64 {
	storetest.BenchUpdateCAS(b, s)
	return nsPerOp(b)
}

func benchList10k(b *testing.B, s store.Store) float64 {
	storetest.BenchList(b, s, 10_000)
	return nsPerOp(b)
}

func benchWatch100(b *testing.B, s store.Store) float64 {
	return float64(storetest.BenchWatchDelivery(b, s, 100))
}

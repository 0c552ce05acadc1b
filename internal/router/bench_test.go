package router

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigInput is 10,000 routes over 50,000 endpoints (5 per route), the
// scale the issue sets.
func bigInput() Input {
	var in Input
	for i := range 10000 {
		var eps []netip.AddrPort
		for j := range 5 {
			n := i*5 + j
			eps = append(eps, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 20, byte(n >> 8), byte(n)}), uint16(8000+n%1000)))
		}
		in.Routes = append(in.Routes, RouteConfig{Key: fmt.Sprintf("p/r%d", i), Host: fmt.Sprintf("r%d.example.com", i),
			Backends: []BackendConfig{{Service: fmt.Sprintf("p/s%d", i), Weight: 100, Revisions: []RevisionConfig{{Revision: 1, Endpoints: eps}}}}})
	}
	return in
}

// BenchmarkBuild10kRoutes measures compiling a table at scale.
func BenchmarkBuild10kRoutes(b *testing.B) {
	in := bigInput()
	for b.Loop() {
		if _, errs := Build(in); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// BenchmarkApply10kRoutes measures swapping in a rebuilt table at scale
// (endpoints known already, as on every change but the first).
func BenchmarkApply10kRoutes(b *testing.B) {
	in := bigInput()
	r := New(Options{})
	t, _ := Build(in)
	r.Apply(t)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		t, _ := Build(in)
		b.StartTimer()
		r.Apply(t)
	}
}

func BenchmarkLookupAndChoose10kRoutes(b *testing.B) {
	t, _ := Build(bigInput())
	req := httptest.NewRequest("GET", "http://r4242.example.com/some/path", nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		rt := Lookup(t, "r4242.example.com", req.URL.Path)
		if p := rt.choose(HTTPView{req}, rnd, avoid{}); p.Endpoint == nil {
			b.Fatal("no pick")
		}
	}
}

// smallInput is bigInput's first n routes.
func smallInput(n int) Input {
	in := bigInput()
	in.Routes = in.Routes[:n]
	return in
}

// BenchmarkLookupFlat measures lookup and choice on a table of 10 routes
// and on one of 10,000, in the same run, and reports both and their
// ratio: a flat lookup keeps the ratio near 1.
func BenchmarkLookupFlat(b *testing.B) {
	small, _ := Build(smallInput(10))
	big, _ := Build(bigInput())
	req := httptest.NewRequest("GET", "http://r7.example.com/some/path", nil)
	rnd := rand.New(rand.NewPCG(1, 2))
	measure := func(t *Table, hosts []string, n int) time.Duration {
		start := time.Now()
		for i := range n {
			rt := Lookup(t, hosts[i%len(hosts)], req.URL.Path)
			if p := rt.choose(HTTPView{req}, rnd, avoid{}); p.Endpoint == nil {
				b.Fatal("no pick")
			}
		}
		return time.Since(start)
	}
	var smallHosts, bigHosts []string
	for i := range 10 {
		smallHosts = append(smallHosts, fmt.Sprintf("r%d.example.com", i))
	}
	// As many hosts, spread over the big table: what differs is the
	// table's size, not how many routes the loop keeps in cache.
	for i := range 10 {
		bigHosts = append(bigHosts, fmt.Sprintf("r%d.example.com", i*997+7))
	}
	var ds, db time.Duration
	for b.Loop() {
		ds += measure(small, smallHosts, 1000)
		db += measure(big, bigHosts, 1000)
	}
	n := float64(b.N) * 1000
	b.ReportMetric(float64(ds.Nanoseconds())/n, "ns/lookup@10")
	b.ReportMetric(float64(db.Nanoseconds())/n, "ns/lookup@10k")
	b.ReportMetric(float64(db)/float64(ds), "ratio")
}

// BenchmarkScaleRSS applies a table of 10,000 routes over 50,000
// endpoints and reports the process's resident memory before (the
// baseline: the test binary alone) and after, and the time Apply takes
// to swap a rebuilt table in.
func BenchmarkScaleRSS(b *testing.B) {
	runtime.GC()
	base := rssBytes(b)
	r := New(Options{})
	in := bigInput()
	t0, _ := Build(in)
	r.Apply(t0)
	var apply, cpu time.Duration
	for b.Loop() {
		t, _ := Build(in)
		runtime.GC() // Build's garbage is not the swap's to collect
		start, cpu0 := time.Now(), cpuTime(b)
		r.Apply(t)
		apply += time.Since(start)
		cpu += cpuTime(b) - cpu0
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	after := rssBytes(b)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-live-MB")
	b.ReportMetric(float64(base)/(1<<20), "baseline-RSS-MB")
	b.ReportMetric(float64(after)/(1<<20), "RSS-MB")
	b.ReportMetric(float64(after-base)/(1<<20), "router-MB")
	b.ReportMetric(float64(apply.Microseconds())/1000/float64(b.N), "ms/swap")
	// CPU time (all threads, the collector's included) is steadier than
	// wall time on a shared machine.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/swap")
	runtime.KeepAlive(r)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssBytes reads VmRSS from /proc/self/status.
func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status:", err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatal("no VmRSS in /proc/self/status")
	return 0
}

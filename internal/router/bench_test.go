package router

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"testing"
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
		rt := t.lookup("r4242.example.com", req.URL.Path)
		if p := rt.choose(httpView{req}, rnd, netip.AddrPort{}); p.ep == nil {
			b.Fatal("no pick")
		}
	}
}

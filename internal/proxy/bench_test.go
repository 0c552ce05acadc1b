package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

// benchUpstream is a plain HTTP server answering every request with body.
func benchUpstream(b *testing.B, body []byte) netip.AddrPort {
	b.Helper()
	ln, err := net.Listen("tcp", backendIP()+":0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// benchDirectVsProxy runs "direct" (client to upstream) and "proxy" (client
// to the VIP, spliced to the same upstream) in the same run, with
// 8×GOMAXPROCS concurrent keep-alive clients, and reports the proxy's
// throughput as a share of the direct one (the of-direct metric). With
// -count N, Go runs every "direct" before the first "proxy", so of-direct
// compares against the last direct run: compare medians with benchstat.
func benchDirectVsProxy(b *testing.B, body []byte) {
	up := benchUpstream(b, body)
	p := New(Options{})
	b.Cleanup(func() { p.Close() })
	vip := freeVIP(b)
	mustApply(b, p, oneService(vip, up))

	nsPerOp := map[string]float64{}
	for _, tc := range []struct {
		name   string
		target netip.AddrPort
	}{{"direct", up}, {"proxy", vip}} {
		b.Run(tc.name, func(b *testing.B) {
			tr := &http.Transport{MaxIdleConnsPerHost: 256, DisableCompression: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr}
			url := "http://" + tc.target.String() + "/"
			b.SetBytes(int64(len(body)))
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, len(body)+1)
				for pb.Next() {
					resp, err := cl.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.ReadFull(resp.Body, buf)
					resp.Body.Close()
					if n != len(body) || !bytes.Equal(buf[:n], body) {
						b.Errorf("short or wrong body: %d bytes", n)
						return
					}
				}
			})
			perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			b.ReportMetric(1e9/perOp, "req/s")
			nsPerOp[tc.name] = perOp
			if d, ok := nsPerOp["direct"]; ok && tc.name == "proxy" {
				b.ReportMetric(d/perOp, "of-direct")
			}
		})
	}
	if d, pr := nsPerOp["direct"], nsPerOp["proxy"]; d > 0 && pr > 0 {
		b.Logf("proxy throughput / direct throughput = %.2f (%.0f vs %.0f req/s)", d/pr, 1e9/pr, 1e9/d)
	}
}

// BenchmarkServiceProxy: small HTTP keep-alive requests (a 64-byte body),
// where the proxy's cost per request shows.
func BenchmarkServiceProxy(b *testing.B) {
	benchDirectVsProxy(b, bytes.Repeat([]byte("x"), 64))
}

// BenchmarkServiceProxyBulk: 1 MiB responses, where bytes per second show.
func BenchmarkServiceProxyBulk(b *testing.B) {
	benchDirectVsProxy(b, bytes.Repeat([]byte("x"), 1<<20))
}

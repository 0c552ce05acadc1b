package router_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// BenchmarkEngines proxies small GETs over keep-alive connections through
// each engine to a real loopback backend, in the same run: the standard
// engine (net/http and httputil.ReverseProxy) is the baseline, and the
// fast engine's ratio to it is reported as std/fast (how many times
// faster). The client and the backend share the CPU, so the ratio
// understates the router's own gain; bench/router/run.sh measures the
// router's CPU alone.
func BenchmarkEngines(b *testing.B) {
	be := benchBackend(b)
	var nsPerOp = map[string]float64{}
	for _, engine := range []string{fast.EngineStd, fast.EngineFast} {
		b.Run(engine, func(b *testing.B) {
			addr := benchRouter(b, engine, be)
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				br := bufio.NewReader(c)
				req := []byte("GET /bench HTTP/1.1\r\nHost: bench.test\r\nUser-Agent: bench\r\n\r\n")
				for pb.Next() {
					if _, err := c.Write(req); err != nil {
						b.Error(err)
						return
					}
					if err := readBenchResponse(br); err != nil {
						b.Error(err)
						return
					}
				}
			})
			nsPerOp[engine] = float64(time.Since(start).Nanoseconds()) / float64(b.N)
		})
	}
	if std, fast := nsPerOp[fast.EngineStd], nsPerOp[fast.EngineFast]; std > 0 && fast > 0 {
		b.Logf("std %.0f ns/op, fast %.0f ns/op: fast is %.2fx the standard engine's throughput", std, fast, std/fast)
	}
}

// readBenchResponse reads one response with a Content-Length body.
func readBenchResponse(br *bufio.Reader) error {
	n := -1
	for first := true; ; first = false {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if first {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return &benchErr{string(line)}
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if n < 0 {
		return &benchErr{"no Content-Length"}
	}
	_, err := br.Discard(n)
	return err
}

type benchErr struct{ s string }

func (e *benchErr) Error() string { return "unexpected response: " + e.s }

func benchBackend(b *testing.B) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	body := []byte("hello from the benchmark backend\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func benchRouter(b *testing.B, engine string, backend netip.AddrPort) string {
	r := router.New(router.Options{})
	t, errs := router.Build(router.Input{Routes: []router.RouteConfig{router.OneBackend("p/bench", "bench.test", "", backend.String())}})
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	r.Apply(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: engine})
	go s.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return ln.Addr().String()
}

// Command benchsrv holds the Go parts of the router benchmark
// (bench/router/run.sh): a tiny keep-alive backend, the Slipway router
// (the real internal/router package, either engine) with a table of one
// route to the backends, a plain httputil.ReverseProxy baseline, and the
// summary of the measurements.
//
//	benchsrv backend -addr 127.0.0.1:18081
//	benchsrv slipway -addr 127.0.0.1:18090 -engine fast -backends 127.0.0.1:18081,127.0.0.1:18082
//	benchsrv slipway -addr 127.0.0.1:18190 -host localhost -tls-cert c.pem -tls-key k.pem
//	benchsrv handshakes -url https://localhost:18190/ -c 64 -d 10s
//	benchsrv goproxy -addr 127.0.0.1:18093 -backends 127.0.0.1:18081,127.0.0.1:18082
//	benchsrv summarize results.tsv
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"

	"slipway.dev/slipway/internal/router"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchsrv backend|slipway|goproxy|handshakes|summarize ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "backend":
		err = backend(os.Args[2:])
	case "slipway":
		err = slipway(os.Args[2:])
	case "goproxy":
		err = goproxy(os.Args[2:])
	case "handshakes":
		err = handshakes(os.Args[2:], os.Stdout)
	case "summarize":
		err = summarize(os.Args[2:], os.Stdout)
	default:
		err = fmt.Errorf("unknown mode %q: want backend, slipway, goproxy, handshakes or summarize", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchsrv:", err)
		os.Exit(1)
	}
}

// body is what the backends answer: small, as a typical API response head
// dominates.
var body = []byte("hello from the benchmark backend\n")

func backend(args []string) error {
	fs := flag.NewFlagSet("backend", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18081", "listen address")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{"33"}
			w.Write(body)
		}),
		IdleTimeout:       5 * time.Minute,
		ReadHeaderTimeout: 10 * time.Second,
	}
	return serveUntilSignal(srv.Serve, ln, srv.Shutdown)
}

func backendList(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, b := range strings.Split(s, ",") {
		a, err := netip.ParseAddrPort(b)
		if err != nil {
			return nil, fmt.Errorf("-backends %q: %w", s, err)
		}
		out = append(out, a)
	}
	return out, nil
}

func slipway(args []string) error {
	fs := flag.NewFlagSet("slipway", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18090", "listen address")
	backends := fs.String("backends", "127.0.0.1:18081,127.0.0.1:18082", "endpoints, comma-separated")
	engine := fs.String("engine", fast.EngineFast, "router engine: fast or std")
	host := fs.String("host", "bench.test", "the route's host")
	profile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	certFile := fs.String("tls-cert", "", "serve HTTPS (the router's TLS listener) with this PEM certificate for -host")
	keyFile := fs.String("tls-key", "", "the PEM key of -tls-cert")
	fs.Parse(args)
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	eps, err := backendList(*backends)
	if err != nil {
		return err
	}
	rt := router.New(router.Options{})
	t, errs := router.Build(router.Input{Routes: []router.RouteConfig{{
		Key: "bench/app", Host: *host,
		Backends: []router.BackendConfig{{Service: "bench/app", Weight: 100,
			Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: eps}}}},
	}}})
	if len(errs) > 0 {
		return fmt.Errorf("table: %v", errs)
	}
	rt.Apply(t)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	if *certFile != "" {
		return serveTLS(rt, ln, *engine, *host, *certFile, *keyFile)
	}
	srv := fast.NewServer(std.NewServer(rt, std.ServerOptions{Logger: slog.New(slog.DiscardHandler)}), fast.Options{Engine: *engine})
	return serveUntilSignal(srv.Serve, ln, srv.Shutdown)
}

// serveTLS serves rt as slipway up's HTTPS listener does (on engine), with
// the certificate for host as a TLS route's.
func serveTLS(rt *router.Router, ln net.Listener, engine, host, certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	certs := router.NewCerts()
	if errs := certs.Apply(router.TLSInput{Routes: []router.TLSRoute{{Key: "bench/app", Host: host, Cert: &cert}}}); len(errs) > 0 {
		return fmt.Errorf("certificates: %v", errs)
	}
	srv := fast.NewServer(std.NewServer(rt, std.ServerOptions{Logger: slog.New(slog.DiscardHandler)}), fast.Options{Engine: engine, Certs: certs})
	return serveUntilSignal(srv.ServeTLS, ln, srv.Shutdown)
}

// goproxy is the baseline the issue names: net/http's server and
// httputil.ReverseProxy (Rewrite, round robin), with a keep-alive pool
// sized like the others'.
func goproxy(args []string) error {
	fs := flag.NewFlagSet("goproxy", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:18093", "listen address")
	backends := fs.String("backends", "127.0.0.1:18081,127.0.0.1:18082", "endpoints, comma-separated")
	fs.Parse(args)
	eps, err := backendList(*backends)
	if err != nil {
		return err
	}
	var next atomic.Uint64
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			ep := eps[next.Add(1)%uint64(len(eps))]
			pr.SetURL(&url.URL{Scheme: "http", Host: ep.String()})
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second},
		ErrorLog:  log.New(io.Discard, "", 0), // clients that leave mid-request at the end of a run
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	return serveUntilSignal(srv.Serve, ln, srv.Shutdown)
}

func serveUntilSignal(serve func(net.Listener) error, ln net.Listener, shutdown func(context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	shutdown(sctx)
	err := <-errc
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

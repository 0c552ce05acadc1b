package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/dataplane"
	"slipway.dev/slipway/internal/handover"
	"slipway.dev/slipway/internal/proxy"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
	"slipway.dev/slipway/internal/services"
)

// dataPlane is the data path of `slipway up`: the services controller
// (which writes the Endpoints the node's drains wait on, so it lives as
// long as the data path), the layer-4 service proxy, the HTTP router with
// its plain and TLS listeners, and the feeds that keep their tables equal
// to the store. It is also the node's Drainer.
type dataPlane struct {
	cfg            Config
	reg            *registry.Registry
	log            *slog.Logger
	lns            listeners
	px             *proxy.Proxy
	rt             *router.Router
	certs          *router.Certs
	routerSrv      *fast.Server // the plain and the TLS listener
	closeAccessLog func()

	// routed and proxied are closed once the router's and the service
	// proxy's first tables (built once every kind was listed) are
	// applied: the router accepts only from then on.
	routed, proxied chan struct{}
}

func newDataPlane(cfg Config, reg *registry.Registry, lns listeners, in *inherited, log *slog.Logger) (*dataPlane, error) {
	accessLog, closeAccessLog, err := openAccessLog(cfg.AccessLog, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	d := &dataPlane{cfg: cfg, reg: reg, log: log, lns: lns, closeAccessLog: closeAccessLog,
		px: proxy.New(proxy.Options{Logger: log.With("component", "proxy"),
			Listen: func(a netip.AddrPort) (net.Listener, error) { return in.listen(proxyListenerName(a), a.String()) }}),
		routed: make(chan struct{}), proxied: make(chan struct{}),
		certs: router.NewCerts(),
		rt: router.New(router.Options{Logger: log.With("component", "router"), TrustedProxies: cfg.TrustedProxies,
			AccessLog: accessLog, DrainTimeout: cfg.RouterDrainTimeout}),
	}
	httpsPort := 0
	if lns.https != nil {
		httpsPort = lns.https.Addr().(*net.TCPAddr).Port
	}
	// The router's plain-HTTP front: strict framing and limits before any
	// request reaches a backend, and a graceful shutdown. Plain HTTP for a
	// host whose route has TLS follows the route's
	// insecureEdgeTerminationPolicy (Redirect, Allow or None).
	// HTTP/1.1, plain or over TLS, takes the router's fast engine; what it
	// does not serve itself (upgrades, unusual framing, TLS routes'
	// redirects, h2 chosen by ALPN) goes to the standard one and this
	// Handler (which lets every HTTPS request through). Certificates swap
	// underneath the TLS listener (SNI picks them): it is never reopened
	// for a change. Its session-ticket keys are the server's
	// (routerSrv.TicketKeys), for a hand-over to share.
	d.routerSrv = fast.NewServer(std.NewServer(d.rt, std.ServerOptions{
		Logger:  log.With("component", "router"),
		Handler: std.InsecurePolicy(std.NewHandler(d.rt), d.rt, d.certs, httpsPort),
	}), fast.Options{Certs: d.certs})
	return d, nil
}

// start serves the router's listeners, once the first table is applied
// (until then a connection waits in the listener's queue: it is not
// refused, and never gets a 404 for a route that exists), and runs the
// feeds until ctx ends.
func (d *dataPlane) start(g *errgroup.Group, ctx context.Context, goFeed func(func() error)) {
	g.Go(func() error {
		select {
		case <-d.routed:
		case <-ctx.Done():
			return nil
		}
		return d.routerSrv.Serve(d.lns.http)
	})
	if d.lns.https != nil {
		g.Go(func() error {
			select {
			case <-d.routed:
			case <-ctx.Done():
				return nil
			}
			return d.routerSrv.ServeTLS(d.lns.https)
		})
	}
	var routed, proxied sync.Once
	goFeed(func() error {
		(&services.Controller{Reg: d.reg, VIPRange: d.cfg.ServiceIPRange, Log: d.log.With("controller", "services")}).Run(ctx)
		return nil
	})
	goFeed(func() error {
		return (&dataplane.Routes{Reg: d.reg, Router: d.rt, Certs: d.certs, Domain: d.cfg.RouterDomain, Log: d.log.With("component", "routes"),
			Applied: func() { routed.Do(func() { close(d.routed) }) }}).Run(ctx)
	})
	goFeed(func() error {
		err := (&dataplane.Services{Reg: d.reg, Proxy: d.px, Log: d.log.With("component", "dataplane"),
			Applied: func() { proxied.Do(func() { close(d.proxied) }) }}).Run(ctx)
		if errors.Is(err, proxy.ErrClosed) {
			return nil
		}
		return err
	})
}

// shutdown stops the data path once its feeds are stopped.
func (d *dataPlane) shutdown(ctx context.Context) error {
	d.px.Close()
	// WebSockets and streams get their close (1001, or the end of the
	// stream) now: the servers' Shutdown would wait for streams until
	// its deadline and never for WebSockets.
	d.rt.GoingAway()
	return d.routerSrv.Shutdown(ctx)
}

// serving is closed once both tables are applied and the router accepts.
func (d *dataPlane) serving(ctx context.Context) error {
	for _, c := range []chan struct{}{d.routed, d.proxied} {
		select {
		case <-c:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// drain is the old generation's end in a hand-over, once the new one
// serves on the same sockets: it stops accepting (closing only its own
// copies of the listeners), closes idle keep-alive connections and
// answers the requests in flight with Connection: close (HTTP/2: GOAWAY),
// lets the service proxy's connections end at a request boundary, and at
// timeout closes WebSockets (1001) and streams and cuts what is left.
func (d *dataPlane) drain(timeout time.Duration) handover.Report {
	start := time.Now()
	d.px.Unlisten()
	open := d.open()
	sctx, cut := context.WithCancel(context.Background())
	defer cut()
	var wg sync.WaitGroup
	wg.Go(func() { d.routerSrv.Shutdown(sctx) })
	shut := make(chan struct{})
	go func() { wg.Wait(); close(shut) }()
	quiet := func() bool {
		select {
		case <-shut:
		default:
			return false
		}
		return d.px.Open() == 0 && d.inFlight() == 0
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	rep := handover.Report{Open: open}
	for !quiet() {
		select {
		case <-tick.C:
			continue
		case <-deadline.C:
		}
		// The deadline: what is left is cut, WebSockets and streams
		// first with their close, within a second.
		rep.Cut = min(d.open()+int(d.inFlight()), open)
		d.rt.GoingAway()
		grace := time.Now().Add(time.Second)
		for !quiet() && time.Now().Before(grace) {
			<-tick.C
		}
		cut()
		d.px.Close()
		wg.Wait()
		break
	}
	d.px.Close()
	rep.Finished = open - rep.Cut
	rep.Millis = time.Since(start).Milliseconds()
	return rep
}

// open counts the client connections of the data plane: the fast
// engine's (plain and TLS) and the service proxy's.
func (d *dataPlane) open() int {
	return d.routerSrv.Open() + d.px.Open()
}

// inFlight counts the router's requests in flight, WebSockets and streams
// among them.
func (d *dataPlane) inFlight() int64 {
	var n int64
	for _, s := range d.rt.AllEndpointStats() {
		n += s.InFlight
	}
	return n
}

// close releases what shutdown leaves: the proxy (when Run fails before
// starting it) and the access log.
func (d *dataPlane) close() {
	d.px.Close()
	d.closeAccessLog()
}

// WaitDrained implements node.Drainer over every data plane: a pod leaves
// traffic only when each of them has acknowledged it.
func (d *dataPlane) WaitDrained(ctx context.Context, ip netip.Addr) error {
	return errors.Join(d.px.WaitDrainedIP(ctx, ip), d.rt.WaitDrainedIP(ctx, ip))
}

// openAccessLog opens the router's access log named by the --access-log
// flag: nil when off.
func openAccessLog(dest string, stderr io.Writer) (*slog.Logger, func(), error) {
	switch dest {
	case "":
		return nil, func() {}, nil
	case "-":
		if stderr == nil {
			stderr = os.Stderr
		}
		return slog.New(slog.NewJSONHandler(stderr, nil)), func() {}, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("--access-log %s: %w", dest, err)
	}
	return slog.New(slog.NewJSONHandler(f, nil)), func() { f.Close() }, nil
}

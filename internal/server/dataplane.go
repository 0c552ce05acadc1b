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

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/dataplane"
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
}

func newDataPlane(cfg Config, reg *registry.Registry, lns listeners, log *slog.Logger) (*dataPlane, error) {
	accessLog, closeAccessLog, err := openAccessLog(cfg.AccessLog, cfg.Stderr)
	if err != nil {
		return nil, err
	}
	d := &dataPlane{cfg: cfg, reg: reg, log: log, lns: lns, closeAccessLog: closeAccessLog,
		px:    proxy.New(proxy.Options{Logger: log.With("component", "proxy")}),
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

// start serves the router's listeners and runs the feeds until ctx ends.
func (d *dataPlane) start(g *errgroup.Group, ctx context.Context) {
	g.Go(func() error { return d.routerSrv.Serve(d.lns.http) })
	if d.lns.https != nil {
		g.Go(func() error { return d.routerSrv.ServeTLS(d.lns.https) })
	}
	g.Go(func() error {
		(&services.Controller{Reg: d.reg, VIPRange: d.cfg.ServiceIPRange, Log: d.log.With("controller", "services")}).Run(ctx)
		return nil
	})
	g.Go(func() error {
		return (&dataplane.Routes{Reg: d.reg, Router: d.rt, Certs: d.certs, Domain: d.cfg.RouterDomain, Log: d.log.With("component", "routes")}).Run(ctx)
	})
	g.Go(func() error {
		err := (&dataplane.Services{Reg: d.reg, Proxy: d.px, Log: d.log.With("component", "dataplane")}).Run(ctx)
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

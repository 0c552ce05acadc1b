// Package server is the composition root: it opens the store and starts the
// API, the controllers, the runtime and the router under one errgroup.
// `slipway up` and the end-to-end tests both run it.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/node"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/docker"
	"slipway.dev/slipway/internal/runtime/process"
	"slipway.dev/slipway/internal/services"
	"slipway.dev/slipway/internal/telemetry"
)

// Config is everything `slipway up` takes.
type Config struct {
	DataDir  string
	APIAddr  string
	HTTPAddr string
	// HTTPSAddr is the router's TLS listener for routes with spec.tls
	// ("" disables it).
	HTTPSAddr string
	Runtime   string
	Version   string
	Commit    string // reported by GET /version with Version
	Logger    *slog.Logger
	// OnReady is called once every listener is bound.
	OnReady func(Info)
	// ShutdownTimeout bounds the graceful stop (default 2m: pods get their
	// grace periods).
	ShutdownTimeout time.Duration
	// KeepPods leaves pods running on shutdown for the next start to adopt.
	KeepPods bool
	// PodIPRange and ServiceIPRange are where pod addresses and service
	// virtual IPs come from (defaults 127.20.0.0/16 and, by runtime,
	// 127.30.0.0/16 or docker.DefaultServiceRange: addresses the pods can
	// reach). PodIPRange is the process runtime's only.
	PodIPRange, ServiceIPRange netip.Prefix
	// RouterDomain makes a Route's default host <route>-<project>.<domain>
	// (default "localhost").
	RouterDomain string
	// TrustedProxies are the peers whose X-Forwarded-* headers the router
	// keeps; everyone else's are replaced.
	TrustedProxies []netip.Prefix
	// AccessLog turns on the router's access log: "-" for stderr, else a
	// file appended to (mode 0600), one JSON object per request; "" is off.
	AccessLog string
	// Stderr is where AccessLog "-" writes (os.Stderr when nil).
	Stderr io.Writer
	// RouterDrainTimeout is how long WebSockets and streamed responses to
	// a leaving endpoint may go on (router.DefaultDrainTimeout when 0).
	RouterDrainTimeout time.Duration
	// Store is the state's backend: StoreBolt (the default: a file in
	// DataDir) or StoreEtcd (at Etcd).
	Store string
	Etcd  EtcdConfig
}

// Info tells where the running platform can be reached.
type Info struct {
	APIURL    string
	HTTPAddr  string
	HTTPSAddr string // empty when disabled
	DataDir   string
	TokenFile string
}

// DefaultRouterDrainTimeout is Config.RouterDrainTimeout's default.
const DefaultRouterDrainTimeout = router.DefaultDrainTimeout

// TokenFileName is the admin token's file in the data dir (mode 0600).
const TokenFileName = "admin.token"

// Run runs the platform until ctx ends, then stops it gracefully. Its
// parts, each built by one function below and started under one errgroup:
//
//	state      the store (bbolt), the registry over it, the admin token
//	api        the HTTP API on --api-addr
//	data path  the services controller, the service proxy, the router and
//	           its listeners, fed from the store (dataplane.go)
//	node       the node agent: this machine's pods on the runtime
//	control    the controllers: deploy, replication, builds
//
// On shutdown the control loops and the node stop first (the node stops
// its pods in order, which needs the data path to take them out of
// traffic), then the data path, then the API.
func Run(ctx context.Context, cfg Config) error {
	cfg, log, err := prepare(cfg)
	if err != nil {
		return err
	}
	st, reg, tokenFile, err := openState(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.Close()
	driver, baseEnv, err := newDriver(ctx, cfg, log.With("component", "runtime"))
	if err != nil {
		return err
	}
	// After the store and the runtime: a second Slipway on the same data
	// dir, or no Docker engine, is told so before anything about addresses.
	if err := checkServiceRange(cfg.Runtime, cfg.ServiceIPRange, cfg.PodIPRange); err != nil {
		return err
	}
	blds, err := newBuilds(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	lns, err := listen(cfg)
	if err != nil {
		return err
	}
	data, err := newDataPlane(cfg, reg, lns, log)
	if err != nil {
		lns.close()
		return err
	}
	defer data.close()
	clk := clock.Real{}
	agent := node.New(node.Options{
		Reg: reg, Driver: driver, Clock: clk, Log: log.With("component", "node"),
		Events:  &events.Recorder{Reg: reg, Source: "node", Clock: clk, Log: log},
		Drainer: data,
		BaseEnv: baseEnv,
	})
	apiSrv := newAPI(cfg, reg, agent, blds, data.rt, st.CheckWritable, log)
	defer apiSrv.cancel()

	// The data path outlives the control loops: stopping pods in order
	// needs it to take them out of traffic.
	dataCtx, stopData := context.WithCancel(context.Background())
	defer stopData()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serve(apiSrv.Server, lns.api) })
	g.Go(func() error { return apiSrv.series.Run(gctx) })
	data.start(g, dataCtx)
	g.Go(func() error { return agent.Run(gctx) })
	g.Go(func() error { return runControllers(gctx, reg, data.rt, log) })
	g.Go(func() error { return blds.run(gctx) })
	g.Go(func() error {
		<-gctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		log.Info("shutting down", "stopPods", !cfg.KeepPods)
		errNode := agent.Shutdown(sctx, !cfg.KeepPods)
		stopData()
		return errors.Join(errNode, data.shutdown(sctx), apiSrv.Shutdown(sctx))
	})

	info := Info{
		APIURL:    "http://" + lns.api.Addr().String(),
		HTTPAddr:  lns.http.Addr().String(),
		HTTPSAddr: listenerAddr(lns.https),
		DataDir:   cfg.DataDir,
		TokenFile: tokenFile,
	}
	log.Info("slipway is up", "api", info.APIURL, "router", info.HTTPAddr, "dataDir", cfg.DataDir)
	if cfg.OnReady != nil {
		cfg.OnReady(info)
	}
	err = g.Wait()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// prepare checks cfg and fills in its defaults, and returns the logger.
func prepare(cfg Config) (Config, *slog.Logger, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Minute
	}
	switch cfg.Runtime {
	case "", "process", "docker":
	default:
		return cfg, nil, fmt.Errorf("--runtime %q: unsupported; choose process (local processes) or docker (containers on the local Docker engine)", cfg.Runtime)
	}
	svcRange, err := serviceRange(cfg.Runtime, cfg.ServiceIPRange)
	if err != nil {
		return cfg, nil, err
	}
	cfg.ServiceIPRange = svcRange
	return cfg, log, nil
}

// openState opens the store in the data dir (created 0700, or refused when
// others may read it) and the registry over it, and makes sure the admin
// token exists; it returns the token's file.
func openState(ctx context.Context, cfg Config, log *slog.Logger) (openedStore, *registry.Registry, string, error) {
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return nil, nil, "", err
	}
	st, err := openStore(ctx, cfg, log)
	if err != nil {
		return nil, nil, "", err
	}
	reg := registry.New(st, registry.Options{Logger: log})
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		st.Close()
		return nil, nil, "", err
	}
	tokenFile := filepath.Join(cfg.DataDir, TokenFileName)
	if err := ensureAdminToken(ctx, reg, tokenFile, log); err != nil {
		st.Close()
		return nil, nil, "", err
	}
	return st, reg, tokenFile, nil
}

// listeners are the platform's sockets, bound before anything serves.
type listeners struct {
	api, http, https net.Listener // https is nil when disabled
}

// listen binds every listener cfg names, or none: the error names the
// flag whose address could not be bound.
func listen(cfg Config) (listeners, error) {
	var l listeners
	var err error
	if l.api, err = net.Listen("tcp", cfg.APIAddr); err != nil {
		return l, fmt.Errorf("--api-addr %s: %w", cfg.APIAddr, err)
	}
	if l.http, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		l.close()
		return listeners{}, fmt.Errorf("--http-addr %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.HTTPSAddr != "" {
		if l.https, err = net.Listen("tcp", cfg.HTTPSAddr); err != nil {
			l.close()
			return listeners{}, fmt.Errorf("--https-addr %s: %w", cfg.HTTPSAddr, err)
		}
	}
	return l, nil
}

func (l listeners) close() {
	for _, ln := range []net.Listener{l.api, l.http, l.https} {
		if ln != nil {
			ln.Close()
		}
	}
}

// apiServer is the HTTP API, whose watch streams end when its shutdown
// starts (cancel), or Shutdown would wait for them until its deadline.
type apiServer struct {
	*http.Server
	cancel context.CancelFunc
	series *telemetry.Series // the console's time series
}

// ready backs /readyz besides the store's answering (the store's
// CheckWritable: a full disk makes the API not ready, saying why).
func newAPI(cfg Config, reg *registry.Registry, agent *node.Agent, blds *builds, rt *router.Router, ready func(context.Context) error, log *slog.Logger) apiServer {
	con, series := newConsole(rt, log)
	h := apiserver.New(reg, apiserver.Options{Logger: log, Version: cfg.Version, Commit: cfg.Commit, Ready: ready, Logs: podLogs{agent},
		Builds: blds.api, Metrics: telemetry.Handler(rt), Console: con})
	con.SetAPI(h)
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	reqCtx, cancel := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	srv.RegisterOnShutdown(cancel)
	return apiServer{Server: srv, cancel: cancel, series: series}
}

func serve(s *http.Server, ln net.Listener) error {
	if err := s.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureAdminToken creates the admin token on first start and writes it to
// the data dir with mode 0600. If the file was lost, a new token replaces
// the old one so the local admin is never locked out.
func ensureAdminToken(ctx context.Context, reg *registry.Registry, path string, log *slog.Logger) error {
	_, statErr := os.Stat(path)
	tok, created, err := reg.EnsureAdminToken(ctx, errors.Is(statErr, os.ErrNotExist))
	if err != nil {
		return err
	}
	if !created {
		return nil
	}
	if err := writeSecretFile(path, []byte(tok+"\n")); err != nil {
		return fmt.Errorf("writing the admin token: %w", err)
	}
	log.Info("created the admin token", "file", path)
	return nil
}

// writeSecretFile writes data atomically with mode 0600.
func writeSecretFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// newDriver starts the runtime cfg.Runtime names, with the environment
// every container starts from.
func newDriver(ctx context.Context, cfg Config, log *slog.Logger) (runtime.Driver, []string, error) {
	dir := filepath.Join(cfg.DataDir, "runtime")
	if cfg.Runtime == "docker" {
		// Images bring their own PATH and locale: nothing of Slipway's
		// environment is passed on.
		d, err := docker.New(ctx, docker.Options{Dir: dir, ServiceRange: cfg.ServiceIPRange, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		return d, nil, nil
	}
	d, err := process.New(process.Options{Dir: dir, IPRange: cfg.PodIPRange, Logger: log, ArtifactDir: artifactDir(cfg.DataDir),
		ClaimsDir: filepath.Join(cfg.DataDir, "volumes")})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the process runtime: %w", err)
	}
	return d, processBaseEnv(os.Environ()), nil
}

// serviceRange is where service virtual IPs come from: the range asked for,
// or the runtime's default. Pods must reach them: on the process runtime
// anything on the host's loopback does; Docker's pods reach only their own
// network, so there the range lies in its reserved half, which the driver
// makes the host own.
func serviceRange(rt string, asked netip.Prefix) (netip.Prefix, error) {
	if rt != "docker" {
		if !asked.IsValid() {
			return services.DefaultVIPRange, nil
		}
		return asked, nil
	}
	if !asked.IsValid() {
		return docker.DefaultServiceRange(docker.DefaultSubnet), nil
	}
	if err := docker.CheckServiceRange(docker.DefaultSubnet, asked); err != nil {
		return netip.Prefix{}, fmt.Errorf("--service-ip-range %w", err)
	}
	return asked, nil
}

// processBaseEnv picks the variables of Slipway's own environment that
// local processes need to behave as in a shell. Nothing else leaks: not
// Slipway's flags, tokens or cloud credentials.
func processBaseEnv(environ []string) []string {
	keep := map[string]bool{"PATH": true, "HOME": true, "USER": true, "LOGNAME": true, "SHELL": true, "LANG": true, "TZ": true, "TMPDIR": true}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if keep[k] || strings.HasPrefix(k, "LC_") {
			out = append(out, kv)
		}
	}
	return out
}

// podLogs serves the API's log endpoint from the node agent, so that the
// API server never imports the runtime.
type podLogs struct{ a *node.Agent }

func (p podLogs) PodLogs(ctx context.Context, project, pod, container string, opts apiserver.PodLogOptions) (io.ReadCloser, error) {
	return p.a.Logs(ctx, project, pod, container, runtime.LogOptions{Follow: opts.Follow, Previous: opts.Previous, Tail: opts.TailLines})
}

func listenerAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

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
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/handover"
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
	// DrainTimeout bounds this generation's drain when a new one takes
	// over (DefaultDrainTimeout when 0): requests in flight finish within
	// it; WebSockets and streams go on until it, then get their close.
	DrainTimeout time.Duration
	// Restart, when it delivers, starts this binary again (the file found
	// at start-up: a new build put there is what runs) with the same
	// arguments, and that process takes over (SIGUSR2 in `slipway up`).
	Restart <-chan struct{}
	// Args are what a restart passes (os.Args[1:] when nil).
	Args []string
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
//	hand-over  from the generation running on the data dir, if any
//	           (handover.go): its listeners, then its store
//	state      the store (bbolt), the registry over it, the admin token
//	api        the HTTP API on --api-addr
//	data path  the services controller, the service proxy, the router and
//	           its listeners, fed from the store (dataplane.go)
//	node       the node agent: this machine's pods on the runtime
//	control    the controllers: deploy, replication, builds
//
// On shutdown the control loops and the node stop first (the node stops
// its pods in order, which needs the data path to take them out of
// traffic), then the data path, then the API. When a new generation takes
// over, the control plane stops the same way but leaves the pods running,
// the data path serves on until the new one serves, then drains.
func Run(ctx context.Context, cfg Config) error {
	started := time.Now()
	cfg, log, err := prepare(cfg)
	if err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary for restarts: %w", err)
	}
	if err := prepareDataDir(cfg.DataDir); err != nil {
		return err
	}
	gens := &generations{me: handover.Generation{Number: 1, Version: cfg.Version, PID: os.Getpid()}}
	tk, err := takeOver(ctx, cfg, gens, log)
	if err != nil {
		return err
	}
	in := &inherited{tk: tk}
	handingOver := false // tk is closed by handOverFrom once the old one drained
	defer func() {
		if tk != nil && !handingOver {
			tk.Close()
		}
	}()
	st, reg, tokenFile, err := openState(ctx, cfg, log)
	if err != nil {
		return err
	}
	var closeStore sync.Once
	defer closeStore.Do(func() { st.Close() })
	driver, baseEnv, err := newDriver(ctx, cfg, log.With("component", "runtime"))
	if err != nil {
		return err
	}
	// After the store and the runtime: a second Slipway on the same data
	// dir, or no Docker engine, is told so before anything about addresses.
	// A takeover's service addresses are the old generation's, handed over.
	if tk == nil {
		if err := checkServiceRange(cfg.Runtime, cfg.ServiceIPRange, cfg.PodIPRange); err != nil {
			return err
		}
	}
	blds, err := newBuilds(ctx, cfg, reg, log)
	if err != nil {
		return err
	}
	lns, err := listen(cfg, in)
	if err != nil {
		return err
	}
	data, err := newDataPlane(cfg, reg, lns, in, log)
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
	apiSrv := newAPI(cfg, reg, agent, blds, data.rt, st.CheckWritable, gens, log)
	defer apiSrv.cancel()

	// The data path outlives the control loops: stopping pods in order
	// needs it to take them out of traffic. Its feeds stop with the
	// control plane; its servers only when the data path stops or drains.
	dataCtx, stopData := context.WithCancel(context.Background())
	defer stopData()
	g, gctx := errgroup.WithContext(ctx)
	ctlCtx, stopCtl := context.WithCancel(gctx)
	defer stopCtl()
	var ctl sync.WaitGroup // the control plane's loops, the API and the feeds
	goCtl := func(f func() error) {
		ctl.Add(1)
		g.Go(func() error {
			defer ctl.Done()
			// An error of a part being stopped is the stop's doing: a
			// released control plane must not take the data path down.
			if err := f(); err != nil && ctlCtx.Err() == nil {
				return err
			}
			return nil
		})
	}
	goCtl(func() error { return serve(apiSrv.Server, lns.api) })
	data.start(g, dataCtx, goCtl)
	goCtl(func() error { return agent.Run(ctlCtx) })
	goCtl(func() error { return runControllers(ctlCtx, reg, data.rt, log) })
	goCtl(func() error { return blds.run(ctlCtx) })

	// stopControl stops the control plane, once: the loops, the node
	// (stopping its pods in order or leaving them), the feeds and the API.
	var stopOnce sync.Once
	var stopErr error
	stopControl := func(ctx context.Context, stopPods bool) error {
		stopOnce.Do(func() {
			stopCtl()
			log.Info("stopping the control plane", "stopPods", stopPods)
			errNode := agent.Shutdown(ctx, stopPods)
			stopData()
			stopErr = errors.Join(errNode, apiSrv.Shutdown(ctx))
			ctl.Wait()
		})
		return stopErr
	}
	own := &owner{cfg: cfg, log: log.With("component", "handover"), lns: lns, data: data, exe: exe, args: cfg.Args,
		release: func(ctx context.Context) error {
			// The new generation takes the pods and the store.
			err := stopControl(ctx, false)
			closeStore.Do(func() { err = errors.Join(err, st.Close()) })
			return err
		}}
	ho, err := handover.Listen(filepath.Join(cfg.DataDir, handover.SocketName), gens.self(), own, log.With("component", "handover"))
	if err != nil {
		log.Warn("hand-over disabled: a new generation will not take over from this one", "err", err)
	} else {
		go ho.Serve()
		defer ho.Close()
	}
	g.Go(func() error {
		var drained <-chan struct{}
		if ho != nil {
			drained = ho.Drained()
		}
		for {
			select {
			case <-gctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
				defer cancel()
				log.Info("shutting down", "stopPods", !cfg.KeepPods)
				errCtl := stopControl(sctx, !cfg.KeepPods)
				return errors.Join(errCtl, data.shutdown(sctx))
			case <-drained:
				// Handed over: the new generation has the report.
				return nil
			case <-cfg.Restart:
				if ho == nil {
					log.Warn("restart asked for, but the hand-over is disabled")
					continue
				}
				if _, _, err := own.Restart(); err != nil {
					log.Error("restart: starting the new generation failed", "err", err)
				}
			}
		}
	})

	info := Info{
		APIURL:    "http://" + lns.api.Addr().String(),
		HTTPAddr:  lns.http.Addr().String(),
		HTTPSAddr: listenerAddr(lns.https),
		DataDir:   cfg.DataDir,
		TokenFile: tokenFile,
	}
	if err := data.serving(gctx); err == nil {
		if tk != nil {
			handingOver = true
			handOverFrom(tk, cfg, gens, started, log)
		}
		log.Info("slipway is up", "api", info.APIURL, "router", info.HTTPAddr, "dataDir", cfg.DataDir,
			"generation", gens.self().Number, "startedIn", time.Since(started).Round(time.Millisecond))
		if cfg.OnReady != nil {
			cfg.OnReady(info)
		}
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
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Args == nil {
		cfg.Args = os.Args[1:]
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
// flag whose address could not be bound. A takeover's listeners are taken
// over where the flag names the same address (or port 0).
func listen(cfg Config, in *inherited) (listeners, error) {
	var l listeners
	var err error
	if l.api, err = in.listen(lnAPI, cfg.APIAddr); err != nil {
		return l, fmt.Errorf("--api-addr %s: %w", cfg.APIAddr, err)
	}
	if l.http, err = in.listen(lnHTTP, cfg.HTTPAddr); err != nil {
		l.close()
		return listeners{}, fmt.Errorf("--http-addr %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.HTTPSAddr != "" {
		if l.https, err = in.listen(lnHTTPS, cfg.HTTPSAddr); err != nil {
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
}

// ready backs /readyz besides the store's answering (the store's
// CheckWritable: a full disk makes the API not ready, saying why).
func newAPI(cfg Config, reg *registry.Registry, agent *node.Agent, blds *builds, rt *router.Router, ready func(context.Context) error, gens *generations, log *slog.Logger) apiServer {
	srv := &http.Server{
		Handler: apiserver.New(reg, apiserver.Options{Logger: log, Version: cfg.Version, Commit: cfg.Commit, Ready: ready, Logs: podLogs{agent},
			Streams: podStreams{agent}, Builds: blds.api, Metrics: telemetry.Handler(rt, telemetry.NewGenerations(gens.metrics)), Generations: gens.list}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	reqCtx, cancel := context.WithCancel(context.Background())
	srv.BaseContext = func(net.Listener) context.Context { return reqCtx }
	srv.RegisterOnShutdown(cancel)
	return apiServer{Server: srv, cancel: cancel}
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

// podStreams serves the API's exec and port-forward endpoints from the
// node agent.
type podStreams struct{ a *node.Agent }

func (p podStreams) Exec(ctx context.Context, project, pod, container string, s apiserver.ExecStreams) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the resize relay
	var resize chan runtime.TermSize
	if s.Resize != nil {
		resize = make(chan runtime.TermSize)
		go func() {
			defer close(resize)
			for {
				select {
				case <-ctx.Done():
					return
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					select {
					case resize <- runtime.TermSize(sz):
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	return p.a.Exec(ctx, project, pod, container, runtime.ExecStreams{Command: s.Command, Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr,
		TTY: s.TTY, Size: runtime.TermSize(s.Size), Resize: resize})
}

func (p podStreams) DialPod(ctx context.Context, project, pod string, port int) (net.Conn, error) {
	return p.a.DialPod(ctx, project, pod, port)
}

func listenerAddr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

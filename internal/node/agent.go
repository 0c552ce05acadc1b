// Package node runs this machine's pods: it watches Pod records, starts
// their containers through a runtime.Driver, probes them, restarts them
// with back-off, writes what it observes to Pod status, and stops them in
// the order that loses no request (leave endpoints, wait for the data
// planes to acknowledge and drain, SIGTERM, SIGKILL after the grace).
package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
)

// Drainer is what the data planes (service proxy, router) tell the node:
// WaitDrained returns once none of them will send a new request or
// connection to any endpoint at the pod's address ip (whatever the port:
// a service may target a port the containers never declared) and none is
// in flight there, or when ctx ends.
type Drainer interface {
	WaitDrained(ctx context.Context, ip netip.Addr) error
}

// Options configures an Agent.
type Options struct {
	Reg     *registry.Registry
	Driver  runtime.Driver
	Drainer Drainer // nil: nothing to wait for
	Events  *events.Recorder
	Clock   clock.Clock
	Log     *slog.Logger
	Backoff Backoff // zero: DefaultBackoff
	// MaxProbeResults is how many recent probe results a container's
	// status keeps (default 5).
	MaxProbeResults int
	// BaseEnv starts every container's environment ("KEY=value"), before
	// the env contract and the container's own variables. The process
	// runtime passes a few of Slipway's own (PATH, HOME...) so that local
	// commands resolve as they would in a shell; images bring their own.
	BaseEnv []string
	// ClaimSyncInterval is how often claims are measured when nothing
	// else happens (default 10 s): usage grows without events.
	ClaimSyncInterval time.Duration
}

// Agent runs the pods of this machine.
type Agent struct {
	opts   Options
	log    *slog.Logger
	prober *prober

	mu      sync.Mutex
	workers map[string]*podWorker // by pod UID
	byName  map[string]string     // project/name → UID
	wg      sync.WaitGroup
	closing bool
	// claimsKick asks the claims loop for a pass (a pod's worker ended:
	// the claims it mounted may be free).
	claimsKick chan struct{}
}

var (
	podKind, _     = api.LookupKind("Pod")
	serviceKind, _ = api.LookupKind("Service")
	secretKind, _  = api.LookupKind("Secret")
)

// New returns an agent; Run starts it.
func New(opts Options) *Agent {
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.ClaimSyncInterval <= 0 {
		opts.ClaimSyncInterval = defaultClaimSync
	}
	if opts.MaxProbeResults <= 0 {
		opts.MaxProbeResults = 5
	}
	return &Agent{opts: opts, log: opts.Log, prober: newProber(opts.Driver),
		workers: map[string]*podWorker{}, byName: map[string]string{}, claimsKick: make(chan struct{}, 1)}
}

// Run adopts what a previous Slipway left running, then runs pods as their
// records come and go, until ctx ends. It does not stop the pods: Shutdown
// decides that.
func (a *Agent) Run(ctx context.Context) error {
	recovered, err := a.opts.Driver.Recover(ctx)
	if err != nil {
		return fmt.Errorf("recovering pods: %w", err)
	}
	objs, _, err := a.opts.Reg.List(ctx, podKind, "", registry.ListOptions{})
	if err != nil {
		return err
	}
	known := map[string]*api.Pod{}
	for _, o := range objs {
		p := o.(*api.Pod)
		known[p.Metadata.UID] = p
	}
	for _, rs := range recovered {
		pod, ok := known[rs.Pod.UID]
		if !ok {
			a.log.Info("stopping an orphaned pod left by a previous run", "pod", rs.Pod.Name, "uid", rs.Pod.UID)
			a.mu.Lock()
			if !a.closing {
				a.wg.Go(func() { a.stopOrphan(rs) })
			}
			a.mu.Unlock()
			continue
		}
		a.log.Info("adopting a running pod", "pod", pod.Metadata.Name, "ip", rs.Sandbox.IP)
		a.startWorker(ctx, pod, &rs)
	}

	go a.dispatchExits(ctx)
	go a.resync(ctx)
	go a.watchFiles(ctx, secretKind)
	go a.watchFiles(ctx, configMapKind)
	go a.runClaims(ctx)
	controller.WatchKind(ctx, a.opts.Reg, podKind, a.log, func(ev registry.WatchEvent) {
		pod := ev.Object.(*api.Pod)
		switch ev.Type {
		case registry.Deleted:
			a.terminate(pod.Metadata.UID)
		default:
			a.mu.Lock()
			w := a.workers[pod.Metadata.UID]
			a.mu.Unlock()
			if w != nil {
				w.send(workerEvent{update: pod})
				return
			}
			if pod.Metadata.DeletionTimestamp == nil {
				a.startWorker(ctx, pod, nil)
			}
		}
	})
	return nil
}

// resyncEvery is how often the agent compares its workers with the store.
const resyncEvery = 10 * time.Second

// resync stops the workers of pods that are no longer in the store. The
// watch reports deletions, but a deletion that falls between a list and
// the watch after it (at start, or when a broken watch lists again) has no
// event: this is the safety net.
func (a *Agent) resync(ctx context.Context) {
	t := clock.NewTicker(a.opts.Clock, resyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		uids := make([]string, 0, len(a.workers))
		for uid := range a.workers {
			uids = append(uids, uid)
		}
		a.mu.Unlock()
		// Listed after the snapshot of workers: a worker's pod that is
		// missing here was deleted.
		objs, _, err := a.opts.Reg.List(ctx, podKind, "", registry.ListOptions{})
		if err != nil {
			continue
		}
		live := map[string]bool{}
		for _, o := range objs {
			live[o.GetMeta().UID] = true
		}
		for _, uid := range uids {
			if !live[uid] {
				a.log.Info("stopping a pod whose record is gone", "uid", uid)
				a.terminate(uid)
			}
		}
	}
}

// startWorker runs a pod; rs is set when the pod was recovered.
func (a *Agent) startWorker(ctx context.Context, pod *api.Pod, rs *runtime.RecoveredSandbox) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closing || a.workers[pod.Metadata.UID] != nil {
		return
	}
	w := newPodWorker(a, pod)
	a.workers[pod.Metadata.UID] = w
	// A worker outlives the watch: only Shutdown (terminate or detach) or
	// the pod's deletion ends it, so that stopping Slipway never abandons a
	// pod half-way.
	ctx = context.WithoutCancel(ctx)
	a.byName[pod.Metadata.Project+"/"+pod.Metadata.Name] = pod.Metadata.UID
	a.wg.Go(func() {
		w.run(ctx, rs)
		a.mu.Lock()
		delete(a.workers, pod.Metadata.UID)
		a.kickClaims()
		if a.byName[pod.Metadata.Project+"/"+pod.Metadata.Name] == pod.Metadata.UID {
			delete(a.byName, pod.Metadata.Project+"/"+pod.Metadata.Name)
		}
		a.mu.Unlock()
	})
}

// terminate stops a pod in order; it returns at once.
func (a *Agent) terminate(uid string) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w != nil {
		w.send(workerEvent{terminate: true})
	}
}

func (a *Agent) dispatchExits(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-a.opts.Driver.Exits():
			if !ok {
				return
			}
			a.mu.Lock()
			w := a.workers[ev.PodUID]
			a.mu.Unlock()
			if w != nil {
				w.send(workerEvent{exit: &ev})
			}
		}
	}
}

// Shutdown ends the agent. With stopPods, every pod is stopped in order
// (the data planes must still run meanwhile); without, pods keep running
// for the next Slipway to adopt. It returns when every worker has ended or
// ctx ends.
func (a *Agent) Shutdown(ctx context.Context, stopPods bool) error {
	a.mu.Lock()
	a.closing = true
	ws := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	for _, w := range ws {
		if stopPods {
			w.send(workerEvent{terminate: true, shutdown: true})
		} else {
			w.send(workerEvent{detach: true})
		}
	}
	done := make(chan struct{})
	go func() { a.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return a.opts.Driver.Close()
}

// stopOrphan stops a sandbox whose pod record is gone.
func (a *Agent) stopOrphan(rs runtime.RecoveredSandbox) {
	// A bound on the runtime's calls (wall clock: they are the runtime's),
	// so that a stuck one does not hold Shutdown forever.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Its record is gone, so no Endpoints name it any more: there is no
	// traffic to wait for.
	var wg sync.WaitGroup
	for _, c := range rs.Containers {
		if c.Status.State == runtime.StateRunning {
			wg.Go(func() { a.opts.Driver.StopContainer(ctx, rs.Pod.UID, c.Config.Name, 30*time.Second) })
		}
	}
	wg.Wait()
	if err := a.opts.Driver.RemoveSandbox(ctx, rs.Pod.UID); err != nil {
		a.log.Warn("removing an orphaned sandbox failed", "uid", rs.Pod.UID, "err", err)
	}
}

// Logs streams a container's log of the named pod.
func (a *Agent) Logs(ctx context.Context, project, pod, container string, opts runtime.LogOptions) (io.ReadCloser, error) {
	o, err := a.opts.Reg.Get(ctx, podKind, project, pod)
	if err != nil {
		return nil, err
	}
	p := o.(*api.Pod)
	if container == "" {
		if len(p.Spec.Containers) != 1 {
			return nil, api.Errorf(api.ReasonBadRequest, "pod %s has %d containers: name one", pod, len(p.Spec.Containers))
		}
		container = p.Spec.Containers[0].Name
	}
	r, err := a.opts.Driver.Logs(ctx, p.Metadata.UID, container, opts)
	if errors.Is(err, runtime.ErrNotFound) {
		what := "log"
		if opts.Previous {
			what = "previous log"
		}
		return nil, api.Errorf(api.ReasonNotFound, "no %s of container %q in pod %q yet", what, container, pod)
	}
	return r, err
}

// Exec runs a command in a container of the named pod (`slipway exec`),
// as the runtime runs it in the container's environment.
func (a *Agent) Exec(ctx context.Context, project, pod, container string, s runtime.ExecStreams) (int, error) {
	o, err := a.opts.Reg.Get(ctx, podKind, project, pod)
	if err != nil {
		return -1, err
	}
	p := o.(*api.Pod)
	code, err := a.opts.Driver.ExecStream(ctx, p.Metadata.UID, container, s)
	switch {
	case errors.Is(err, runtime.ErrNotFound):
		return code, api.Errorf(api.ReasonNotFound, "container %q of pod %q does not run on this node", container, pod)
	case errors.Is(err, runtime.ErrConflict):
		return code, api.Errorf(api.ReasonConflict, "container %q of pod %q is not running", container, pod)
	}
	return code, err
}

// DialPod connects to a port of the named pod's address (`slipway
// port-forward`): the pod's sandbox address, which this machine reaches.
func (a *Agent) DialPod(ctx context.Context, project, pod string, port int) (net.Conn, error) {
	o, err := a.opts.Reg.Get(ctx, podKind, project, pod)
	if err != nil {
		return nil, err
	}
	p := o.(*api.Pod)
	if p.Status.PodIP == "" {
		return nil, api.Errorf(api.ReasonConflict, "pod %q has no address yet", pod)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port)))
}

package node

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
)

// workerEvent is one thing that happened to a pod; a pod's worker handles
// them one at a time, so its state needs no lock.
type workerEvent struct {
	update    *api.Pod
	exit      *runtime.ExitEvent
	probe     *probeEvent
	wake      bool // a back-off ended, or a start failed and is retried
	killed    string
	killErr   error
	terminate bool
	// shutdown: the terminate comes from Slipway stopping, not from the
	// pod's deletion.
	shutdown bool
	detach   bool
	deadline bool // the pod's activeDeadlineSeconds passed
}

type probeEvent struct {
	container string
	gen       int
	kind      string
	result    api.ProbeResult
}

// podWorker runs one pod: the loop and the effects. What to do is the
// lifecycle's decision (lifecycle.go); the worker feeds it what it sees
// and carries out its plans.
type podWorker struct {
	a   *Agent
	pod *api.Pod // its metadata is kept current; its status is lc.stored
	lc  *lifecycle
	// podUID and podName never change; goroutines other than run read
	// these, never pod.
	podUID, podName string
	events          chan workerEvent
	done            chan struct{} // closed when run returns: nothing reads events any more

	stopProbes    map[string]context.CancelFunc // by container
	lastWritten   *api.PodStatus
	dirty         bool // a failed probe result to publish
	timer         func() bool
	deadlineTimer func() bool
}

func newPodWorker(a *Agent, pod *api.Pod) *podWorker {
	return &podWorker{a: a, pod: pod, podUID: pod.Metadata.UID, podName: pod.Metadata.Name,
		lc:     newLifecycle(pod, a.opts.Driver.Capabilities(), a.opts.Backoff, a.opts.MaxProbeResults),
		events: make(chan workerEvent, 64), done: make(chan struct{}), stopProbes: map[string]context.CancelFunc{}}
}

// send queues an event; once the worker has ended it drops it.
func (w *podWorker) send(ev workerEvent) {
	select {
	case w.events <- ev:
	case <-w.done:
	}
}

func (w *podWorker) uid() string { return w.podUID }

func (w *podWorker) now() time.Time { return w.a.opts.Clock.Now() }

// run is the pod's life, from sandbox to removal.
func (w *podWorker) run(ctx context.Context, rs *runtime.RecoveredSandbox) {
	defer close(w.done)
	d := w.a.opts.Driver
	log := w.a.log.With("pod", w.pod.Metadata.Project+"/"+w.pod.Metadata.Name)
	var first plan
	switch {
	case rs != nil:
		first = w.step(ctx, observation{kind: obsAdopted, ip: rs.Sandbox.IP, recovered: rs.Containers})
	case w.lc.oneOff() && w.lc.lost():
		// Nothing to run: the pod ended (its sandbox went with its logs),
		// or it ran and its process is gone. A one-off pod never runs
		// twice, so it is not started again.
		first = w.step(ctx, observation{kind: obsTick})
	default:
		var sb runtime.Sandbox
		created := false
		for {
			if at, ok := w.lc.deadline(w.now()); ok && !w.now().Before(at) {
				// Never got a sandbox in its time: it will not run at all.
				first = w.step(ctx, observation{kind: obsDeadline})
				break
			}
			var err error
			sb, err = d.CreateSandbox(ctx, runtime.PodConfig{
				UID: w.uid(), Name: w.pod.Metadata.Name, Project: w.pod.Metadata.Project,
				App: w.pod.Spec.App, Revision: fmt.Sprint(w.pod.Spec.Revision), Labels: w.pod.Metadata.Labels,
				Ports: w.ports(),
			})
			if err == nil {
				created = true
				break
			}
			log.Warn("creating the pod sandbox failed", "err", err)
			w.publish(ctx, w.step(ctx, observation{kind: obsSandboxFailed, err: err}).status)
			retry := clock.NewTimer(w.a.opts.Clock, 2*time.Second)
			select {
			case <-ctx.Done():
				retry.Stop()
				return
			case ev := <-w.events:
				retry.Stop()
				if ev.terminate || ev.detach {
					return
				}
			case <-retry.C:
			}
		}
		w.a.opts.Events.Record(ctx, w.pod, api.EventNormal, "Scheduled", fmt.Sprintf("assigned %s to this machine (runtime %s)", sb.IP, d.Name()))
		if created {
			first = w.step(ctx, observation{kind: obsSandbox, ip: sb.IP})
		}
	}
	w.settle(ctx, first)
	w.armDeadline()
	defer func() {
		if w.deadlineTimer != nil {
			w.deadlineTimer()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			w.stopAllProbes()
			return
		case ev := <-w.events:
			var ob observation
			switch {
			case ev.terminate && ev.shutdown && w.lc.oneOff():
				// Slipway stops: a one-off pod's run is stopped, but its
				// sandbox (its logs, its exit status) stays for the next
				// Slipway to recover, and it is not run again.
				w.stopContainers(ctx)
				return
			case ev.terminate:
				w.terminate(ctx)
				return
			case ev.detach:
				w.stopAllProbes()
				return
			case ev.update != nil:
				w.pod.Metadata = ev.update.Metadata
			case ev.exit != nil:
				ob = observation{kind: obsExited, container: ev.exit.Name, exit: ev.exit.Status}
			case ev.deadline:
				ob = observation{kind: obsDeadline}
			case ev.probe != nil:
				ob = observation{kind: obsProbe, probe: *ev.probe}
			case ev.killed != "":
				ob = observation{kind: obsStopped, container: ev.killed, err: ev.killErr}
			}
			w.settle(ctx, w.step(ctx, ob))
		}
	}
}

// step hands an observation to the lifecycle and carries out the plan,
// stepping again with the outcome of each action that has one. It returns
// the last plan: the one that holds the pod's state now.
func (w *podWorker) step(ctx context.Context, ob observation) plan {
	p := w.lc.step(ob, w.now())
	last := p
	w.dirty = w.dirty || p.force
	for _, a := range p.actions {
		var next *observation
		switch a.kind {
		case actEvent:
			w.a.opts.Events.Record(ctx, w.pod, a.eventType, a.reason, a.message)
		case actStart:
			ob := w.start(ctx, a.container)
			next = &ob
		case actStop:
			w.stop(a.container, a.message)
		case actProbe:
			w.startProbes(a.container, a.gen)
		case actUnprobe:
			if stop := w.stopProbes[a.container]; stop != nil {
				stop()
				delete(w.stopProbes, a.container)
			}
		case actLog:
			next = &observation{kind: obsLog, container: a.container, log: w.logTail(ctx, a.container)}
		}
		if next != nil {
			last = w.step(ctx, *next)
		}
	}
	return last
}

// settle arms the timer of the next back-off's end and writes the status.
func (w *podWorker) settle(ctx context.Context, p plan) {
	if w.timer != nil {
		w.timer()
		w.timer = nil
	}
	if !p.wake.IsZero() {
		w.timer = w.a.opts.Clock.AfterFunc(p.wake.Sub(w.now()), func() {
			select {
			case w.events <- workerEvent{wake: true}:
			default: // a full queue steps the lifecycle soon anyway
			}
		})
	}
	w.publish(ctx, p.status)
}

// start starts a container and says how it went.
func (w *podWorker) start(ctx context.Context, name string) observation {
	c := w.lc.container(name)
	cfg, err := w.containerConfig(ctx, c.spec)
	if err != nil {
		return observation{kind: obsStartFailed, container: name, err: fmt.Errorf("%w: %v", errConfig, err)}
	}
	st, err := w.a.opts.Driver.StartContainer(ctx, w.uid(), cfg)
	if err != nil {
		return observation{kind: obsStartFailed, container: name, err: err}
	}
	return observation{kind: obsStarted, container: name, startedAt: st.StartedAt}
}

// stop stops a container in the background; its exit comes as an event.
func (w *podWorker) stop(name, failed string) {
	grace := w.grace()
	go func() {
		err := w.a.opts.Driver.StopContainer(context.Background(), w.uid(), name, grace)
		if err != nil {
			w.a.log.Warn(failed, "pod", w.podName, "container", name, "err", err)
		}
		w.send(workerEvent{killed: name, killErr: err})
	}()
}

// logTail reads the end of the log of a container's run that just ended,
// within the bounds of api.ContainerStateTerminated.LogTail.
func (w *podWorker) logTail(ctx context.Context, name string) string {
	r, err := w.a.opts.Driver.Logs(ctx, w.uid(), name, runtime.LogOptions{Tail: api.LogTailLines})
	if err != nil {
		w.a.log.Debug("reading the end of a container's log failed", "pod", w.podName, "container", name, "err", err)
		return ""
	}
	defer r.Close()
	var b strings.Builder
	if _, err := io.Copy(&b, io.LimitReader(r, 64<<10)); err != nil {
		w.a.log.Debug("reading the end of a container's log failed", "pod", w.podName, "container", name, "err", err)
	}
	return trimLog(b.String())
}

// trimLog keeps the last api.LogTailLines lines of s within
// api.LogTailBytes.
func trimLog(s string) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > api.LogTailLines {
		lines = lines[len(lines)-api.LogTailLines:]
	}
	s = strings.Join(lines, "\n")
	if len(s) > api.LogTailBytes {
		// Cut on a rune boundary: a log may hold any UTF-8.
		s = "…" + strings.ToValidUTF8(s[len(s)-api.LogTailBytes:], "")
	}
	return s
}

// armDeadline starts the clock of activeDeadlineSeconds, from the pod's
// start time (kept in its status, so a Slipway restart does not reset it).
func (w *podWorker) armDeadline() {
	at, ok := w.lc.pendingDeadline(w.now())
	if !ok {
		return
	}
	left := at.Sub(w.now())
	w.deadlineTimer = w.a.opts.Clock.AfterFunc(max(left, 0), func() { w.send(workerEvent{deadline: true}) })
}

// stopContainers stops what runs of the pod, in the same order as
// terminate, but keeps its sandbox.
func (w *podWorker) stopContainers(ctx context.Context) {
	w.stopAllProbes()
	bg := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range w.lc.cs {
		if !c.running {
			continue
		}
		wg.Go(func() {
			if err := w.a.opts.Driver.StopContainer(bg, w.uid(), c.spec.Name, w.grace()); err != nil {
				w.a.log.Warn("stopping a container failed", "pod", w.podName, "container", c.spec.Name, "err", err)
			}
		})
	}
	wg.Wait()
	if w.timer != nil {
		w.timer()
	}
}

func (w *podWorker) stopAllProbes() {
	for name, stop := range w.stopProbes {
		stop()
		delete(w.stopProbes, name)
	}
}

// startProbes runs the probes of a container's run gen until it ends.
func (w *podWorker) startProbes(name string, gen int) {
	if stop := w.stopProbes[name]; stop != nil {
		stop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stopProbes[name] = cancel
	spec := w.lc.container(name).spec
	for kind, pr := range probesOf(spec) {
		if pr != nil {
			go w.probeLoop(ctx, spec, w.lc.ip, gen, kind, pr)
		}
	}
}

// containerConfig resolves a container's environment and limits now.
func (w *podWorker) containerConfig(ctx context.Context, c api.Container) (runtime.ContainerConfig, error) {
	reg := w.a.opts.Reg
	project := w.pod.Metadata.Project
	objs, _, err := reg.List(ctx, serviceKind, project, registry.ListOptions{})
	if err != nil {
		return runtime.ContainerConfig{}, err
	}
	svcs := make([]*api.Service, 0, len(objs))
	for _, o := range objs {
		svcs = append(svcs, o.(*api.Service))
	}
	sortServices(svcs)
	env, err := ContainerEnv(w.pod, c, w.lc.ip, svcs, func(name, key string) (string, error) {
		o, err := reg.Get(ctx, secretKind, project, name)
		if err != nil {
			return "", fmt.Errorf("secret %q: %v", name, err)
		}
		v, ok := o.(*api.Secret).Data[key]
		if !ok {
			return "", fmt.Errorf("secret %q has no key %q", name, key)
		}
		return v, nil
	})
	if err != nil {
		return runtime.ContainerConfig{}, err
	}
	env = append(append([]string(nil), w.a.opts.BaseEnv...), env...)
	cfg := runtime.ContainerConfig{Name: c.Name, Image: c.Image, Command: c.Command, Args: c.Args, Env: env, WorkingDir: c.WorkingDir}
	if q, ok := c.Resources.Limits[api.ResourceMemory]; ok {
		cfg.Limits.MemoryBytes, _ = q.Value()
	}
	if q, ok := c.Resources.Limits[api.ResourceCPU]; ok {
		cfg.Limits.CPUMillis, _ = q.MilliValue()
	}
	return cfg, nil
}

// firstProbeRetry is the first delay between the quick retries of a probe
// that has not passed yet in a container's run; it doubles up to the
// probe's period.
const firstProbeRetry = 50 * time.Millisecond

func (w *podWorker) probeLoop(ctx context.Context, spec api.Container, ip netip.Addr, gen int, kind string, pr *api.Probe) {
	wait := time.Duration(pr.InitialDelaySeconds) * time.Second
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	// A container is probed as it starts, usually before it listens. Until
	// its startup or readiness probe first passes, it is also retried
	// quickly between the period's probes, so that a new pod is ready
	// within milliseconds of being able to serve instead of a whole period
	// later (a period every wave of a rollout would pay). Only the period's
	// probes and the first pass are reported: failure thresholds, events
	// and results read as before. Liveness is never hurried.
	quick := kind != probeLiveness
	regular := true // the coming probe is on the period's cadence
	step, sinceRegular := firstProbeRetry, time.Duration(0)
	t := clock.NewTimer(w.a.opts.Clock, wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res := w.a.prober.run(ctx, kind, pr, spec, w.uid(), ip, w.a.opts.Clock.Now)
		if ctx.Err() != nil {
			return
		}
		if regular || res.Success {
			select {
			case w.events <- workerEvent{probe: &probeEvent{container: spec.Name, gen: gen, kind: kind, result: res}}:
			case <-ctx.Done():
				return
			}
		}
		quick = quick && !res.Success
		if !quick {
			regular = true
			t.Reset(period)
			continue
		}
		if regular {
			step, sinceRegular = firstProbeRetry, 0
		}
		d := min(step, period-sinceRegular)
		sinceRegular += d
		step *= 2
		regular = sinceRegular >= period
		t.Reset(d)
	}
}

func (w *podWorker) grace() time.Duration {
	g := int64(30)
	if w.pod.Spec.TerminationGracePeriodSeconds != nil {
		g = *w.pod.Spec.TerminationGracePeriodSeconds
	}
	if w.pod.Metadata.DeletionGracePeriodSeconds != nil {
		g = *w.pod.Metadata.DeletionGracePeriodSeconds
	}
	return time.Duration(g) * time.Second
}

// ports are the ports the pod's containers declare.
func (w *podWorker) ports() []runtime.Port {
	var out []runtime.Port
	for _, c := range w.lc.cs {
		for _, p := range c.spec.Ports {
			out = append(out, runtime.Port{Number: p.Port, Protocol: p.Protocol})
		}
	}
	return out
}

// minStopGrace is the least time between SIGTERM and SIGKILL when the
// drain used up the grace period (the kubelet's floor too).
const minStopGrace = 2 * time.Second

// terminate stops the pod in the order that loses no request: not ready,
// out of every endpoint table and drained, then SIGTERM, then SIGKILL after
// the grace period, then the sandbox goes.
func (w *podWorker) terminate(ctx context.Context) {
	w.stopAllProbes()
	w.publish(ctx, w.lc.step(observation{kind: obsTerminating}, w.now()).status)
	// The grace period is the whole budget, as in Kubernetes: the drain
	// spends from it, and SIGKILL comes when it is spent (never sooner than
	// minStopGrace after SIGTERM).
	grace := w.grace()
	clk := w.a.opts.Clock
	deadline := clk.Now().Add(grace)
	if w.a.opts.Drainer != nil && w.lc.ip.IsValid() {
		// The bound is on the injected clock, not a context deadline (which
		// would be on the wall clock).
		dctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		stop := clk.AfterFunc(grace, func() { cancel(context.DeadlineExceeded) })
		if err := w.a.opts.Drainer.WaitDrained(dctx, w.lc.ip); err != nil {
			if cause := context.Cause(dctx); cause != nil {
				err = cause
			}
			w.a.log.Info("pod still had traffic when its drain bound passed", "pod", w.pod.Metadata.Name, "err", err)
		}
		stop()
		cancel(nil)
	}
	if left := deadline.Sub(clk.Now()); left > minStopGrace || grace == 0 {
		grace = max(left, 0)
	} else {
		grace = minStopGrace
	}
	bg := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range w.lc.cs {
		if !c.running {
			continue
		}
		w.a.opts.Events.Record(bg, w.pod, api.EventNormal, "Killing", "stopping container "+c.spec.Name)
		wg.Go(func() {
			if err := w.a.opts.Driver.StopContainer(bg, w.uid(), c.spec.Name, grace); err != nil {
				w.a.log.Warn("stopping a container failed", "pod", w.podName, "container", c.spec.Name, "err", err)
			}
		})
	}
	wg.Wait()
	if err := w.a.opts.Driver.RemoveSandbox(bg, w.uid()); err != nil {
		w.a.log.Warn("removing the pod sandbox failed", "pod", w.pod.Metadata.Name, "err", err)
	}
	if w.timer != nil {
		w.timer()
	}
}

// publish writes the status when it changed in substance, or when a
// failed probe result is to be shown. Steady successful probes do not
// cause writes.
func (w *podWorker) publish(ctx context.Context, st api.PodStatus) {
	if w.lastWritten != nil && !w.dirty && reflect.DeepEqual(significant(st), significant(*w.lastWritten)) {
		return
	}
	for range 5 {
		o, err := w.a.opts.Reg.Get(ctx, podKind, w.pod.Metadata.Project, w.pod.Metadata.Name)
		if err != nil {
			return // gone (being terminated) or shutting down
		}
		p := o.(*api.Pod)
		if p.Metadata.UID != w.uid() {
			return
		}
		p.Status = st
		if _, err := w.a.opts.Reg.UpdateStatus(ctx, p); err == nil {
			w.lastWritten = &st
			w.dirty = false
			w.lc.stored = st
			return
		} else if !api.IsConflict(err) {
			if ctx.Err() == nil {
				w.a.log.Warn("writing pod status failed", "pod", w.pod.Metadata.Name, "err", err)
			}
			return
		}
	}
}

// significant strips what changes on every probe.
func significant(st api.PodStatus) api.PodStatus {
	st.ContainerStatuses = append([]api.ContainerStatus(nil), st.ContainerStatuses...)
	for i := range st.ContainerStatuses {
		st.ContainerStatuses[i].ProbeResults = nil
	}
	st.Conditions = append([]api.Condition(nil), st.Conditions...)
	for i := range st.Conditions {
		st.Conditions[i].LastTransitionTime = time.Time{}
	}
	return st
}

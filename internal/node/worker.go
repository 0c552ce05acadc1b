package node

import (
	"context"
	"errors"
	"fmt"
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

// containerState is what the worker knows of one container.
type containerState struct {
	spec        api.Container
	status      api.ContainerStatus
	running     bool
	gen         int // incremented at each start; probe results of older runs are dropped
	crashes     int
	startedAt   time.Time
	restartAt   time.Time
	startupDone bool
	ready       bool
	killing     bool
	// done: the container ended and is not restarted (restartPolicy Never,
	// OnFailure after exit 0, or the pod's deadline passed); status.State
	// holds how it ended.
	done       bool
	probes     map[string]*probeState
	stopProbes context.CancelFunc
}

type podWorker struct {
	a   *Agent
	pod *api.Pod
	// podUID and podName never change; goroutines other than run read
	// these, never pod.
	podUID, podName string
	ip              netip.Addr
	cs              []*containerState
	events          chan workerEvent
	done            chan struct{} // closed when run returns: nothing reads events any more

	limitsNote  string
	lastWritten *api.PodStatus
	dirty       bool // a failed probe result to publish
	timer       func() bool

	// Why a one-off pod ended early (DeadlineExceeded), shown in its status.
	endReason, endMessage string
	deadlineHit           bool
	deadlineTimer         func() bool
}

func newPodWorker(a *Agent, pod *api.Pod) *podWorker {
	w := &podWorker{a: a, pod: pod, podUID: pod.Metadata.UID, podName: pod.Metadata.Name, events: make(chan workerEvent, 64), done: make(chan struct{})}
	oneOff := pod.Spec.Restarts() != api.RestartAlways
	finished := oneOff && (pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed)
	if finished {
		// A one-off pod that ended stays ended, with the reason it had.
		w.endReason, w.endMessage = pod.Status.Reason, pod.Status.Message
		w.deadlineHit = pod.Status.Reason == ReasonDeadlineExceeded
	}
	// A pod Slipway stopped on its way down is started again: whatever the
	// last run wrote about its ending does not hold for this one.
	pod.Status.Reason, pod.Status.Message = "", ""
	for _, c := range pod.Spec.Containers {
		st := &containerState{spec: c, probes: map[string]*probeState{}}
		st.status = api.ContainerStatus{Name: c.Name}
		for _, old := range pod.Status.ContainerStatuses {
			if old.Name == c.Name {
				st.status.RestartCount = old.RestartCount
				st.status.LastState = old.LastState
				if oneOff && old.State.Terminated != nil {
					st.done, st.status.State = true, old.State
				}
			}
		}
		w.cs = append(w.cs, st)
	}
	return w
}

// ReasonDeadlineExceeded is a pod's status.reason once its
// activeDeadlineSeconds passed (Kubernetes' word).
const ReasonDeadlineExceeded = "DeadlineExceeded"

// oneOff reports whether the pod's containers are not restarted forever.
func (w *podWorker) oneOff() bool { return w.pod.Spec.Restarts() != api.RestartAlways }

// finished reports whether every container of the pod ended for good.
func (w *podWorker) finished() bool {
	for _, c := range w.cs {
		if !c.done {
			return false
		}
	}
	return len(w.cs) > 0
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
	if rs != nil {
		w.ip = rs.Sandbox.IP
		w.adopt(ctx, rs)
	} else if w.oneOff() && w.lost() {
		// Nothing to run: the pod ended (its sandbox went with its logs),
		// or it ran and its process is gone. A one-off pod never runs
		// twice, so it is not started again.
	} else {
		for {
			if at, ok := w.deadline(); ok && !w.now().Before(at) {
				// Never got a sandbox in its time: it will not run at all.
				w.onDeadline(ctx)
				break
			}
			sb, err := d.CreateSandbox(ctx, runtime.PodConfig{
				UID: w.uid(), Name: w.pod.Metadata.Name, Project: w.pod.Metadata.Project,
				App: w.pod.Spec.App, Revision: fmt.Sprint(w.pod.Spec.Revision), Labels: w.pod.Metadata.Labels,
				Ports: w.ports(),
			})
			if err == nil {
				w.ip = sb.IP
				break
			}
			log.Warn("creating the pod sandbox failed", "err", err)
			w.pod.Status.Reason, w.pod.Status.Message = "SandboxFailed", err.Error()
			w.publish(ctx)
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
		w.a.opts.Events.Record(ctx, w.pod, api.EventNormal, "Scheduled", fmt.Sprintf("assigned %s to this machine (runtime %s)", w.ip, d.Name()))
	}
	w.noteLimits()
	w.startDue(ctx)
	w.publish(ctx)
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
			switch {
			case ev.terminate && ev.shutdown && w.oneOff():
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
				w.onExit(ctx, *ev.exit)
			case ev.deadline:
				w.onDeadline(ctx)
			case ev.probe != nil:
				w.onProbe(ctx, *ev.probe)
			case ev.killed != "":
				// A probe kill finished; its exit event restarts the
				// container. If the stop failed, no exit will come.
				if c := w.container(ev.killed); c != nil && ev.killErr != nil {
					c.killing = false
				}
			}
			w.startDue(ctx)
			w.publish(ctx)
		}
	}
}

// lost reports, for a pod whose sandbox was not recovered, whether its
// containers already ran: then they must not run again. Each one that did
// not end on record is marked as ended with an unknown status.
func (w *podWorker) lost() bool {
	if w.finished() {
		return true
	}
	ran := false
	for _, c := range w.cs {
		if c.done {
			ran = true
			continue
		}
		if c.status.RestartCount > 0 || c.status.LastState.Terminated != nil || w.ranBefore(c.spec.Name) {
			ran = true
			c.done = true
			c.status.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{
				ExitCode: -1, Reason: runtime.ReasonUnknown,
				Message: "its process was gone when Slipway started again (stopped on Slipway's way down, or the machine restarted); a one-off pod is not run twice",
			}}
		}
	}
	if !ran {
		return false
	}
	for _, c := range w.cs {
		if !c.done { // never started: it never will
			c.done = true
			c.status.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{
				ExitCode: -1, Reason: runtime.ReasonUnknown, Message: "not started: the pod's other containers ran and are gone"}}
		}
	}
	return true
}

// ranBefore reports whether the stored status shows the container running.
func (w *podWorker) ranBefore(name string) bool {
	for _, old := range w.pod.Status.ContainerStatuses {
		if old.Name == name && old.State.Running != nil {
			return true
		}
	}
	return false
}

// adopt takes over containers a previous Slipway started.
func (w *podWorker) adopt(ctx context.Context, rs *runtime.RecoveredSandbox) {
	for _, rc := range rs.Containers {
		st := w.container(rc.Config.Name)
		if st == nil || st.done {
			continue
		}
		if rc.Status.State == runtime.StateExited && w.oneOff() {
			// It ended while no Slipway watched: decide as if its exit had
			// just been seen (the driver kept its status if it saw it).
			st.running, st.startedAt = true, rc.Status.StartedAt
			w.ended(ctx, st, rc.Status)
			continue
		}
		if rc.Status.State == runtime.StateRunning {
			st.running = true
			st.startedAt = rc.Status.StartedAt
			st.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: rc.Status.StartedAt}}
			st.startupDone = st.spec.StartupProbe == nil
			for _, old := range w.pod.Status.ContainerStatuses {
				if old.Name == st.spec.Name && old.Started {
					st.startupDone = true // it passed its startup probe before the restart
				}
			}
			st.status.Started = st.startupDone
			// Keep the readiness the pod had: flapping it would take a
			// serving pod out of its services for a probe period. The
			// probes resume at once and correct it if it changed.
			for _, old := range w.pod.Status.ContainerStatuses {
				if old.Name == st.spec.Name {
					st.ready = old.Ready && st.startupDone
				}
			}
			w.startProbes(st)
		}
	}
}

func (w *podWorker) container(name string) *containerState {
	for _, c := range w.cs {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// noteLimits records, once, limits this machine cannot enforce.
func (w *podWorker) noteLimits() {
	caps := w.a.opts.Driver.Capabilities()
	var notes []string
	for _, c := range w.cs {
		if _, ok := c.spec.Resources.Limits[api.ResourceMemory]; ok && !caps.MemoryLimit.Supported {
			notes = append(notes, "memory limit of "+c.spec.Name+" not enforced: "+caps.MemoryLimit.Reason)
		}
		if _, ok := c.spec.Resources.Limits[api.ResourceCPU]; ok && !caps.CPULimit.Supported {
			notes = append(notes, "cpu limit of "+c.spec.Name+" not enforced: "+caps.CPULimit.Reason)
		}
	}
	w.limitsNote = strings.Join(notes, "; ")
}

// startDue starts every container that is not running and whose back-off
// has ended, and arms a timer for the next one.
func (w *podWorker) startDue(ctx context.Context) {
	now := w.now()
	var next time.Time
	for _, c := range w.cs {
		if c.running || c.killing || c.done {
			continue
		}
		if now.Before(c.restartAt) {
			if next.IsZero() || c.restartAt.Before(next) {
				next = c.restartAt
			}
			continue
		}
		if err := w.start(ctx, c); err != nil {
			if !errors.Is(err, errConfig) && w.pod.Spec.Restarts() == api.RestartNever {
				// Kubernetes' StartError: a pod that never restarts does
				// not retry a start that failed either.
				c.done = true
				c.status.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(), FinishedAt: now}}
				w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, "Failed", fmt.Sprintf("container %s: %v", c.spec.Name, err))
				continue
			}
			delay, crashes := w.a.opts.Backoff.Delay(c.crashes, 0)
			c.crashes = crashes
			c.restartAt = now.Add(delay)
			reason := "RunContainerError"
			if errors.Is(err, errConfig) {
				reason = "CreateContainerConfigError"
			}
			c.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: reason, Message: err.Error()}}
			w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, "Failed", fmt.Sprintf("container %s: %v", c.spec.Name, err))
			if next.IsZero() || c.restartAt.Before(next) {
				next = c.restartAt
			}
		}
	}
	if w.timer != nil {
		w.timer()
		w.timer = nil
	}
	if !next.IsZero() {
		w.timer = w.a.opts.Clock.AfterFunc(next.Sub(now), func() {
			select {
			case w.events <- workerEvent{wake: true}:
			default: // a full queue will run startDue soon anyway
			}
		})
	}
}

var errConfig = errors.New("configuration error")

func (w *podWorker) start(ctx context.Context, c *containerState) error {
	cfg, err := w.containerConfig(ctx, c.spec)
	if err != nil {
		return fmt.Errorf("%w: %v", errConfig, err)
	}
	st, err := w.a.opts.Driver.StartContainer(ctx, w.uid(), cfg)
	if err != nil {
		return err
	}
	c.running, c.startupDone, c.ready = true, false, false
	c.startedAt = st.StartedAt
	c.gen++
	c.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: st.StartedAt}}
	c.status.Started = c.spec.StartupProbe == nil
	c.startupDone = c.spec.StartupProbe == nil
	w.a.opts.Events.Record(ctx, w.pod, api.EventNormal, "Started", "started container "+c.spec.Name)
	w.startProbes(c)
	return nil
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
	env, err := ContainerEnv(w.pod, c, w.ip, svcs, func(name, key string) (string, error) {
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

// onExit records a run's end and schedules the restart with back-off.
func (w *podWorker) onExit(ctx context.Context, ev runtime.ExitEvent) {
	c := w.container(ev.Name)
	if c == nil || !c.running {
		return
	}
	w.ended(ctx, c, ev.Status)
}

// ended records a run's end: the container is restarted with back-off
// unless its pod's restart policy (or deadline) says it is done.
func (w *podWorker) ended(ctx context.Context, c *containerState, s runtime.ContainerStatus) {
	c.running, c.ready, c.killing = false, false, false
	if c.stopProbes != nil {
		c.stopProbes()
	}
	term := &api.ContainerStateTerminated{
		ExitCode: int32(s.ExitCode), Signal: int32(s.Signal), Reason: s.Reason, Message: s.Message,
		StartedAt: c.startedAt, FinishedAt: s.FinishedAt,
	}
	if w.restartPolicyEnds(s.ExitCode) {
		c.done = true
		c.status.State = api.ContainerState{Terminated: term}
		c.status.Ready = false
		if s.ExitCode == 0 && !w.deadlineHit {
			w.a.opts.Events.Record(ctx, w.pod, api.EventNormal, "Completed", fmt.Sprintf("container %s exited with code 0", c.spec.Name))
		} else {
			w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, "Failed", fmt.Sprintf("container %s ended (%s, code %d); restartPolicy %s: not restarted", c.spec.Name, s.Reason, s.ExitCode, w.pod.Spec.Restarts()))
		}
		return
	}
	c.status.LastState = api.ContainerState{Terminated: term}
	c.status.RestartCount++
	c.status.Ready = false
	ran := s.FinishedAt.Sub(c.startedAt)
	if s.FinishedAt.IsZero() {
		ran = 0
	}
	delay, crashes := w.a.opts.Backoff.Delay(c.crashes, ran)
	c.crashes = crashes
	c.restartAt = w.now().Add(delay)
	msg := fmt.Sprintf("back-off %v restarting failed container %s in pod %s (last exit: %s, code %d)", delay, c.spec.Name, w.pod.Metadata.Name, s.Reason, s.ExitCode)
	c.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}}
	typ := api.EventWarning
	if s.Reason == runtime.ReasonOOMKilled {
		w.a.opts.Events.Record(ctx, w.pod, typ, "OOMKilled", fmt.Sprintf("container %s exceeded its memory limit and was killed", c.spec.Name))
	}
	w.a.opts.Events.Record(ctx, w.pod, typ, "BackOff", msg)
}

// restartPolicyEnds reports whether a run that ended with code is the
// container's last.
func (w *podWorker) restartPolicyEnds(code int) bool {
	switch {
	case w.deadlineHit:
		return true
	case w.pod.Spec.Restarts() == api.RestartNever:
		return true
	case w.pod.Spec.Restarts() == api.RestartOnFailure:
		return code == 0
	}
	return false
}

// armDeadline starts the clock of activeDeadlineSeconds, from the pod's
// start time (kept in its status, so a Slipway restart does not reset it).
func (w *podWorker) armDeadline() {
	at, ok := w.deadline()
	if !ok || w.finished() || w.deadlineHit {
		return
	}
	left := at.Sub(w.now())
	w.deadlineTimer = w.a.opts.Clock.AfterFunc(max(left, 0), func() { w.send(workerEvent{deadline: true}) })
}

// deadline returns when a one-off pod's activeDeadlineSeconds passes:
// counted from its start, or from its creation while it has none (a pod
// that cannot get a sandbox is bounded too).
func (w *podWorker) deadline() (time.Time, bool) {
	d := w.pod.Spec.ActiveDeadlineSeconds
	if d == nil || *d <= 0 || !w.oneOff() {
		return time.Time{}, false
	}
	start := w.pod.Status.StartTime
	if start.IsZero() {
		start = w.pod.Metadata.CreationTimestamp
	}
	if start.IsZero() {
		start = w.now()
	}
	return start.Add(time.Duration(*d) * time.Second), true
}

// onDeadline stops a one-off pod that ran past activeDeadlineSeconds; its
// containers are not restarted and the pod ends Failed.
func (w *podWorker) onDeadline(ctx context.Context) {
	if w.finished() || w.deadlineHit {
		return
	}
	w.deadlineHit = true
	w.endReason = ReasonDeadlineExceeded
	w.endMessage = fmt.Sprintf("the pod ran longer than its activeDeadlineSeconds (%ds) and was stopped", *w.pod.Spec.ActiveDeadlineSeconds)
	w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, ReasonDeadlineExceeded, w.endMessage)
	grace := w.grace()
	for _, c := range w.cs {
		switch {
		case c.done:
		case c.running:
			if c.killing {
				continue
			}
			c.killing, c.ready = true, false
			name := c.spec.Name
			go func() {
				err := w.a.opts.Driver.StopContainer(context.Background(), w.uid(), name, grace)
				if err != nil {
					w.a.log.Warn("stopping a container past its deadline failed", "pod", w.podName, "container", name, "err", err)
				}
				w.send(workerEvent{killed: name, killErr: err})
			}()
		default: // waiting for a restart or a start: it will have none
			c.done = true
			term := c.status.LastState.Terminated
			if term == nil {
				term = &api.ContainerStateTerminated{ExitCode: -1, Reason: ReasonDeadlineExceeded, Message: "never started before the pod's deadline"}
			}
			c.status.State = api.ContainerState{Terminated: term}
		}
	}
}

// stopContainers stops what runs of the pod, in the same order as
// terminate, but keeps its sandbox.
func (w *podWorker) stopContainers(ctx context.Context) {
	w.stopAllProbes()
	bg := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for _, c := range w.cs {
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
	for _, c := range w.cs {
		if c.stopProbes != nil {
			c.stopProbes()
		}
	}
}

// startProbes runs the container's probes until its run ends.
func (w *podWorker) startProbes(c *containerState) {
	if c.stopProbes != nil {
		c.stopProbes()
	}
	if w.pod.Spec.Restarts() == api.RestartNever {
		// A run-once pod serves nothing and is never restarted: no
		// readiness to track, no liveness to act on.
		c.stopProbes = nil
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopProbes = cancel
	c.probes = map[string]*probeState{}
	gen := c.gen
	for kind, pr := range map[string]*api.Probe{probeStartup: c.spec.StartupProbe, probeReadiness: c.spec.ReadinessProbe, probeLiveness: c.spec.LivenessProbe} {
		if pr == nil {
			continue
		}
		c.probes[kind] = &probeState{}
		go w.probeLoop(ctx, c.spec, gen, kind, pr)
	}
}

// firstProbeRetry is the first delay between the quick retries of a probe
// that has not passed yet in a container's run; it doubles up to the
// probe's period.
const firstProbeRetry = 50 * time.Millisecond

func (w *podWorker) probeLoop(ctx context.Context, spec api.Container, gen int, kind string, pr *api.Probe) {
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
		res := w.a.prober.run(ctx, kind, pr, spec, w.uid(), w.ip, w.a.opts.Clock.Now)
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

// onProbe applies one probe result with Kubernetes' semantics.
func (w *podWorker) onProbe(ctx context.Context, ev probeEvent) {
	c := w.container(ev.container)
	if c == nil || c.gen != ev.gen || !c.running || c.killing {
		return
	}
	var pr *api.Probe
	switch ev.kind {
	case probeStartup:
		pr = c.spec.StartupProbe
		if c.startupDone {
			return
		}
	case probeReadiness:
		pr = c.spec.ReadinessProbe
	case probeLiveness:
		pr = c.spec.LivenessProbe
	}
	if !c.startupDone && ev.kind != probeStartup {
		return // readiness and liveness wait for the startup probe
	}
	w.keepResult(c, ev.result)
	if !ev.result.Success {
		w.dirty = true
		w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, "Unhealthy", fmt.Sprintf("%s probe of %s failed: %s", strings.ToUpper(ev.kind[:1])+ev.kind[1:], c.spec.Name, describeResult(ev.result)))
	}
	passing, failing := c.probes[ev.kind].observe(pr, ev.result.Success)
	switch ev.kind {
	case probeStartup:
		if passing {
			c.startupDone = true
			c.status.Started = true
		} else if failing {
			w.kill(ctx, c, "failed its startup probe")
		}
	case probeReadiness:
		if passing {
			c.ready = true
		} else if failing {
			c.ready = false
		}
	case probeLiveness:
		if failing {
			w.kill(ctx, c, "failed its liveness probe")
		}
	}
}

func describeResult(r api.ProbeResult) string {
	var parts []string
	if r.StatusCode != 0 {
		parts = append(parts, fmt.Sprintf("status %d", r.StatusCode))
	}
	if r.Error != "" && r.StatusCode == 0 {
		parts = append(parts, r.Error)
	}
	if r.Body != "" {
		parts = append(parts, fmt.Sprintf("body %q", r.Body))
	}
	// No duration here: identical failures must aggregate into one Event
	// (describe pod shows each result's duration).
	return strings.Join(parts, ", ")
}

func (w *podWorker) keepResult(c *containerState, r api.ProbeResult) {
	c.status.ProbeResults = append(c.status.ProbeResults, r)
	if n := len(c.status.ProbeResults) - w.a.opts.MaxProbeResults; n > 0 {
		c.status.ProbeResults = append([]api.ProbeResult(nil), c.status.ProbeResults[n:]...)
	}
}

// kill stops a container that failed a probe; its exit restarts it.
func (w *podWorker) kill(ctx context.Context, c *containerState, why string) {
	c.killing, c.ready = true, false
	w.a.opts.Events.Record(ctx, w.pod, api.EventNormal, "Killing", fmt.Sprintf("container %s %s, will be restarted", c.spec.Name, why))
	grace := w.grace()
	name := c.spec.Name
	go func() {
		err := w.a.opts.Driver.StopContainer(context.Background(), w.uid(), name, grace)
		if err != nil {
			w.a.log.Warn("stopping a container failed", "pod", w.podName, "container", name, "err", err)
		}
		w.send(workerEvent{killed: name, killErr: err})
	}()
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
	for _, c := range w.cs {
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
	for _, c := range w.cs {
		c.ready = false
	}
	w.pod.Status.Reason = "Terminating"
	w.publish(ctx)
	// The grace period is the whole budget, as in Kubernetes: the drain
	// spends from it, and SIGKILL comes when it is spent (never sooner than
	// minStopGrace after SIGTERM).
	grace := w.grace()
	clk := w.a.opts.Clock
	deadline := clk.Now().Add(grace)
	if w.a.opts.Drainer != nil && w.ip.IsValid() {
		// The bound is on the injected clock, not a context deadline (which
		// would be on the wall clock).
		dctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
		stop := clk.AfterFunc(grace, func() { cancel(context.DeadlineExceeded) })
		if err := w.a.opts.Drainer.WaitDrained(dctx, w.ip); err != nil {
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
	for _, c := range w.cs {
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

// status computes the pod's status from what the worker knows.
func (w *podWorker) status() api.PodStatus {
	now := w.now()
	old := w.pod.Status
	st := api.PodStatus{PodIP: old.PodIP, StartTime: old.StartTime, Conditions: old.Conditions, Reason: w.pod.Status.Reason, Message: w.pod.Status.Message}
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
		st.Reason, st.Message = "", ""
		if w.pod.Status.Reason == "Terminating" {
			st.Reason = "Terminating"
		}
		if st.StartTime.IsZero() {
			st.StartTime = now
		}
	}
	if w.limitsNote != "" {
		st.Message = w.limitsNote
	}
	if w.endReason != "" && st.Reason != "Terminating" {
		st.Reason, st.Message = w.endReason, w.endMessage
	}
	ready, started := true, false
	failed := w.deadlineHit
	for _, c := range w.cs {
		cs := c.status
		cs.Ready = c.ready && c.running && (c.spec.ReadinessProbe != nil || c.startupDone)
		if c.spec.ReadinessProbe == nil && c.running && c.startupDone {
			cs.Ready = true
		}
		if c.done {
			cs.Ready = false
			started = true
			if t := cs.State.Terminated; t == nil || t.ExitCode != 0 {
				failed = true
			}
		}
		if w.pod.Status.Reason == "Terminating" {
			cs.Ready = false
		}
		if !cs.Ready {
			ready = false
		}
		if c.running || cs.RestartCount > 0 {
			started = true
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.Phase = api.PodPending
	if started {
		st.Phase = api.PodRunning
	}
	cond := api.Condition{Type: api.PodReady, Status: api.ConditionFalse, Reason: "ContainersNotReady"}
	if ready && len(w.cs) > 0 {
		cond = api.Condition{Type: api.PodReady, Status: api.ConditionTrue}
	}
	if w.finished() {
		st.Phase = api.PodSucceeded
		if failed {
			st.Phase = api.PodFailed
		}
		cond = api.Condition{Type: api.PodReady, Status: api.ConditionFalse, Reason: "PodCompleted"}
	}
	if st.Reason == "Terminating" {
		cond.Reason = "Terminating"
	}
	st.Conditions = api.SetCondition(append([]api.Condition(nil), st.Conditions...), cond, now)
	if st.PodIP != "" {
		st.Conditions = api.SetCondition(st.Conditions, api.Condition{Type: api.PodScheduled, Status: api.ConditionTrue}, now)
	}
	return st
}

// publish writes the status when it changed in substance, or when a
// failed probe result is to be shown. Steady successful probes do not
// cause writes.
func (w *podWorker) publish(ctx context.Context) {
	st := w.status()
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
			w.pod.Status = st
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

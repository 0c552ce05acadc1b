package node

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/runtime"
)

// The lifecycle is the pure half of a pod's worker. It holds what the
// worker knows of its pod (the spec, the status last written, each
// container's observed state) and decides, for each observation, what to
// do now: which containers to start, which to stop, which probes to run,
// which events to record, when the next back-off ends, and the pod's
// status. It calls nothing: the worker carries out the actions (runtime
// calls, probe goroutines, events, status writes) and reports what came
// of them as further observations.
//
//	 observation ──► lifecycle.step(ob, now) ──► plan{actions, wake, status}
//	      ▲                                            │
//	      └──── worker: runtime, probes, events ◄──────┘

// observation is one thing the worker saw, or the outcome of an action.
type observation struct {
	kind      obsKind
	container string
	// exit: how a run ended (obsExited).
	exit runtime.ContainerStatus
	// startedAt: when the runtime started the container (obsStarted).
	startedAt time.Time
	// err: why a start failed (obsStartFailed; errConfig when its
	// configuration could not be resolved), or a stop (obsStopped).
	err error
	// ip: the pod's sandbox address (obsSandbox, obsAdopted).
	ip netip.Addr
	// recovered: the containers a previous Slipway left (obsAdopted).
	recovered []runtime.RecoveredContainer
	probe     probeEvent
	// log: the last lines of a container's log, read as logTail asked.
	log string
}

type obsKind int

const (
	// obsTick: nothing happened but time passed (a back-off may have
	// ended, the pod's record changed).
	obsTick obsKind = iota
	obsSandbox
	obsSandboxFailed
	obsAdopted
	obsStarted
	obsStartFailed
	obsExited
	obsProbe
	obsStopped // a stop asked by actStop returned
	obsDeadline
	obsTerminating
	obsLog
)

// action is one effect the worker carries out.
type action struct {
	kind      actKind
	container string
	// gen: the run whose probes actProbe starts.
	gen int
	// eventType, reason, message: the Event of actEvent; message is also
	// what actStop logs if the stop fails.
	eventType, reason, message string
}

type actKind int

const (
	actEvent actKind = iota
	// actStart: start the container; report obsStarted or obsStartFailed.
	actStart
	// actStop: stop the running container (in the background); report
	// obsStopped. Its exit comes as obsExited.
	actStop
	// actProbe: run the container's probes for run gen, replacing any.
	actProbe
	// actUnprobe: stop the container's probes.
	actUnprobe
	// actLog: read the last lines of the container's log (the run that
	// just ended); report obsLog.
	actLog
)

// plan is what step decided.
type plan struct {
	actions []action
	// wake is when the next container's back-off ends (zero: none waits).
	wake time.Time
	// status is the pod's status after the observation.
	status api.PodStatus
	// force: a failed probe result is to be written even though nothing
	// else in the status changed.
	force bool
}

func (p *plan) event(typ, reason, msg string) {
	p.actions = append(p.actions, action{kind: actEvent, eventType: typ, reason: reason, message: msg})
}

func (p *plan) do(kind actKind, container string) {
	p.actions = append(p.actions, action{kind: kind, container: container})
}

// containerState is what the lifecycle knows of one container.
type containerState struct {
	spec        api.Container
	status      api.ContainerStatus
	running     bool
	starting    bool // a start was asked and its outcome not reported yet
	gen         int  // incremented at each start; probe results of older runs are dropped
	crashes     int
	startedAt   time.Time
	restartAt   time.Time
	startupDone bool
	ready       bool
	killing     bool
	// done: the container ended and is not restarted (restartPolicy Never,
	// OnFailure after exit 0, or the pod's deadline passed); status.State
	// holds how it ended.
	done   bool
	probes map[string]*probeState
}

// lifecycle is one pod's state as its worker knows it.
type lifecycle struct {
	spec    api.PodSpec
	podName string
	// created is the pod's creation time, from which its deadline counts
	// until it has a start time.
	created         time.Time
	backoff         Backoff
	maxProbeResults int
	// stored is the status last written (at first, the one read).
	stored     api.PodStatus
	ip         netip.Addr
	limitsNote string
	cs         []*containerState
	// Why a one-off pod ended early (DeadlineExceeded), shown in its status.
	endReason, endMessage string
	deadlineHit           bool
}

// newLifecycle starts from a pod's record: a one-off pod that ended stays
// ended; the counts of restarts and the last terminations carry over.
// caps are the runtime's, for the limits it cannot enforce.
func newLifecycle(pod *api.Pod, caps runtime.Capabilities, b Backoff, maxProbeResults int) *lifecycle {
	lc := &lifecycle{spec: pod.Spec, podName: pod.Metadata.Name, created: pod.Metadata.CreationTimestamp,
		backoff: b, maxProbeResults: maxProbeResults, stored: pod.Status}
	oneOff := lc.oneOff()
	if oneOff && (pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed) {
		// A one-off pod that ended stays ended, with the reason it had.
		lc.endReason, lc.endMessage = pod.Status.Reason, pod.Status.Message
		lc.deadlineHit = pod.Status.Reason == ReasonDeadlineExceeded
	}
	// A pod Slipway stopped on its way down is started again: whatever the
	// last run wrote about its ending does not hold for this one.
	lc.stored.Reason, lc.stored.Message = "", ""
	var notes []string
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
		lc.cs = append(lc.cs, st)
		if _, ok := c.Resources.Limits[api.ResourceMemory]; ok && !caps.MemoryLimit.Supported {
			notes = append(notes, "memory limit of "+c.Name+" not enforced: "+caps.MemoryLimit.Reason)
		}
		if _, ok := c.Resources.Limits[api.ResourceCPU]; ok && !caps.CPULimit.Supported {
			notes = append(notes, "cpu limit of "+c.Name+" not enforced: "+caps.CPULimit.Reason)
		}
	}
	lc.limitsNote = strings.Join(notes, "; ")
	return lc
}

// ReasonDeadlineExceeded is a pod's status.reason once its
// activeDeadlineSeconds passed (Kubernetes' word).
const ReasonDeadlineExceeded = "DeadlineExceeded"

// errConfig marks a start that failed because the container's
// configuration (its environment, its secrets) could not be resolved.
var errConfig = errors.New("configuration error")

// oneOff reports whether the pod's containers are not restarted forever.
func (lc *lifecycle) oneOff() bool { return lc.spec.Restarts() != api.RestartAlways }

// finished reports whether every container of the pod ended for good.
func (lc *lifecycle) finished() bool {
	for _, c := range lc.cs {
		if !c.done {
			return false
		}
	}
	return len(lc.cs) > 0
}

func (lc *lifecycle) container(name string) *containerState {
	for _, c := range lc.cs {
		if c.spec.Name == name {
			return c
		}
	}
	return nil
}

// step applies one observation and decides what follows from it.
func (lc *lifecycle) step(ob observation, now time.Time) plan {
	var p plan
	switch ob.kind {
	case obsSandbox:
		lc.ip = ob.ip
	case obsSandboxFailed:
		lc.stored.Reason, lc.stored.Message = "SandboxFailed", ob.err.Error()
	case obsAdopted:
		lc.ip = ob.ip
		lc.adopt(&p, ob.recovered, now)
	case obsStarted:
		if c := lc.container(ob.container); c != nil {
			lc.started(&p, c, ob.startedAt)
		}
	case obsStartFailed:
		if c := lc.container(ob.container); c != nil {
			lc.startFailed(&p, c, ob.err, now)
		}
	case obsExited:
		if c := lc.container(ob.container); c != nil && c.running {
			lc.ended(&p, c, ob.exit, now)
		}
	case obsProbe:
		lc.probed(&p, ob.probe)
	case obsStopped:
		// A stop finished; its exit event ends the run. If the stop failed,
		// no exit will come.
		if c := lc.container(ob.container); c != nil && ob.err != nil {
			c.killing = false
		}
	case obsDeadline:
		lc.onDeadline(&p)
	case obsTerminating:
		for _, c := range lc.cs {
			c.ready = false
		}
		lc.stored.Reason = "Terminating"
	case obsLog:
		if c := lc.container(ob.container); c != nil {
			withLog(&c.status, ob.log)
		}
	}
	if ob.kind != obsTerminating && ob.kind != obsSandboxFailed {
		lc.startDue(&p, now)
	}
	p.wake = lc.nextStart(now)
	p.status = lc.status(now)
	return p
}

// withLog keeps a log's last lines in the termination that just happened:
// the container's state if it ended for good, else its last state. The
// termination is copied, never changed in place: a status already
// written may share it.
func withLog(cs *api.ContainerStatus, log string) {
	if log == "" {
		return
	}
	for _, st := range []*api.ContainerState{&cs.State, &cs.LastState} {
		if st.Terminated != nil {
			t := *st.Terminated
			t.LogTail = log
			st.Terminated = &t
			return
		}
	}
}

// startDue asks for the start of every container that is not running and
// whose back-off has ended.
func (lc *lifecycle) startDue(p *plan, now time.Time) {
	for _, c := range lc.cs {
		if c.running || c.killing || c.done || c.starting || now.Before(c.restartAt) {
			continue
		}
		c.starting = true
		p.do(actStart, c.spec.Name)
	}
}

// nextStart is when the next waiting container's back-off ends.
func (lc *lifecycle) nextStart(now time.Time) time.Time {
	var next time.Time
	for _, c := range lc.cs {
		if c.running || c.killing || c.done || c.starting || !now.Before(c.restartAt) {
			continue
		}
		if next.IsZero() || c.restartAt.Before(next) {
			next = c.restartAt
		}
	}
	return next
}

func (lc *lifecycle) started(p *plan, c *containerState, at time.Time) {
	c.starting = false
	c.running, c.ready = true, false
	c.startedAt = at
	c.gen++
	c.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: at}}
	c.status.Started = c.spec.StartupProbe == nil
	c.startupDone = c.spec.StartupProbe == nil
	p.event(api.EventNormal, "Started", "started container "+c.spec.Name)
	lc.probe(p, c)
}

// probe runs the probes of the container's current run.
func (lc *lifecycle) probe(p *plan, c *containerState) {
	if lc.spec.Restarts() == api.RestartNever {
		// A run-once pod serves nothing and is never restarted: no
		// readiness to track, no liveness to act on.
		return
	}
	c.probes = map[string]*probeState{}
	for kind, pr := range probesOf(c.spec) {
		if pr != nil {
			c.probes[kind] = &probeState{}
		}
	}
	p.actions = append(p.actions, action{kind: actProbe, container: c.spec.Name, gen: c.gen})
}

// probesOf returns a container's probes by kind (nil when it has none).
func probesOf(c api.Container) map[string]*api.Probe {
	return map[string]*api.Probe{probeStartup: c.StartupProbe, probeReadiness: c.ReadinessProbe, probeLiveness: c.LivenessProbe}
}

func (lc *lifecycle) startFailed(p *plan, c *containerState, err error, now time.Time) {
	c.starting = false
	p.event(api.EventWarning, "Failed", fmt.Sprintf("container %s: %v", c.spec.Name, err))
	if !errors.Is(err, errConfig) && lc.spec.Restarts() == api.RestartNever {
		// Kubernetes' StartError: a pod that never restarts does not retry
		// a start that failed either.
		c.done = true
		c.status.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: 128, Reason: "StartError", Message: err.Error(), FinishedAt: now}}
		return
	}
	delay, crashes := lc.backoff.Delay(c.crashes, 0)
	c.crashes = crashes
	c.restartAt = now.Add(delay)
	reason := "RunContainerError"
	if errors.Is(err, errConfig) {
		reason = "CreateContainerConfigError"
	}
	c.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: reason, Message: err.Error()}}
}

// adopt takes over the containers a previous Slipway started.
func (lc *lifecycle) adopt(p *plan, recovered []runtime.RecoveredContainer, now time.Time) {
	for _, rc := range recovered {
		st := lc.container(rc.Config.Name)
		if st == nil || st.done {
			continue
		}
		if rc.Status.State == runtime.StateExited && lc.oneOff() {
			// It ended while no Slipway watched: decide as if its exit had
			// just been seen (the driver kept its status if it saw it).
			st.running, st.startedAt = true, rc.Status.StartedAt
			lc.ended(p, st, rc.Status, now)
			continue
		}
		if rc.Status.State != runtime.StateRunning {
			continue
		}
		st.running = true
		st.startedAt = rc.Status.StartedAt
		st.status.State = api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: rc.Status.StartedAt}}
		st.startupDone = st.spec.StartupProbe == nil
		for _, old := range lc.stored.ContainerStatuses {
			if old.Name == st.spec.Name && old.Started {
				st.startupDone = true // it passed its startup probe before the restart
			}
		}
		st.status.Started = st.startupDone
		// Keep the readiness the pod had: flapping it would take a serving
		// pod out of its services for a probe period. The probes resume at
		// once and correct it if it changed.
		for _, old := range lc.stored.ContainerStatuses {
			if old.Name == st.spec.Name {
				st.ready = old.Ready && st.startupDone
			}
		}
		lc.probe(p, st)
	}
}

// lost reports, for a one-off pod whose sandbox was not recovered, whether
// its containers already ran: then they must not run again. Each one that
// did not end on record is marked as ended with an unknown status.
func (lc *lifecycle) lost() bool {
	if lc.finished() {
		return true
	}
	ran := false
	for _, c := range lc.cs {
		if c.done {
			ran = true
			continue
		}
		if c.status.RestartCount > 0 || c.status.LastState.Terminated != nil || lc.ranBefore(c.spec.Name) {
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
	for _, c := range lc.cs {
		if !c.done { // never started: it never will
			c.done = true
			c.status.State = api.ContainerState{Terminated: &api.ContainerStateTerminated{
				ExitCode: -1, Reason: runtime.ReasonUnknown, Message: "not started: the pod's other containers ran and are gone"}}
		}
	}
	return true
}

// ranBefore reports whether the stored status shows the container running.
func (lc *lifecycle) ranBefore(name string) bool {
	for _, old := range lc.stored.ContainerStatuses {
		if old.Name == name && old.State.Running != nil {
			return true
		}
	}
	return false
}

// ended records a run's end: the container is restarted with back-off
// unless its pod's restart policy (or deadline) says it is done. The last
// lines of its log are kept when it failed, or when it ended for good.
func (lc *lifecycle) ended(p *plan, c *containerState, s runtime.ContainerStatus, now time.Time) {
	c.running, c.ready, c.killing = false, false, false
	p.do(actUnprobe, c.spec.Name)
	term := &api.ContainerStateTerminated{
		ExitCode: int32(s.ExitCode), Signal: int32(s.Signal), Reason: s.Reason, Message: s.Message,
		StartedAt: c.startedAt, FinishedAt: s.FinishedAt,
	}
	if lc.restartPolicyEnds(s.ExitCode) {
		c.done = true
		c.status.State = api.ContainerState{Terminated: term}
		c.status.Ready = false
		if s.ExitCode == 0 && !lc.deadlineHit {
			p.event(api.EventNormal, "Completed", fmt.Sprintf("container %s exited with code 0", c.spec.Name))
		} else {
			p.event(api.EventWarning, "Failed", fmt.Sprintf("container %s ended (%s, code %d); restartPolicy %s: not restarted", c.spec.Name, s.Reason, s.ExitCode, lc.spec.Restarts()))
		}
		p.do(actLog, c.spec.Name)
		return
	}
	c.status.LastState = api.ContainerState{Terminated: term}
	c.status.RestartCount++
	c.status.Ready = false
	ran := s.FinishedAt.Sub(c.startedAt)
	if s.FinishedAt.IsZero() {
		ran = 0
	}
	delay, crashes := lc.backoff.Delay(c.crashes, ran)
	c.crashes = crashes
	c.restartAt = now.Add(delay)
	msg := fmt.Sprintf("back-off %v restarting failed container %s in pod %s (last exit: %s, code %d)", delay, c.spec.Name, lc.podName, s.Reason, s.ExitCode)
	c.status.State = api.ContainerState{Waiting: &api.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: msg}}
	if s.Reason == runtime.ReasonOOMKilled {
		p.event(api.EventWarning, "OOMKilled", fmt.Sprintf("container %s exceeded its memory limit and was killed", c.spec.Name))
	}
	p.event(api.EventWarning, "BackOff", msg)
	if s.ExitCode != 0 {
		p.do(actLog, c.spec.Name)
	}
}

// restartPolicyEnds reports whether a run that ended with code is the
// container's last.
func (lc *lifecycle) restartPolicyEnds(code int) bool {
	switch {
	case lc.deadlineHit:
		return true
	case lc.spec.Restarts() == api.RestartNever:
		return true
	case lc.spec.Restarts() == api.RestartOnFailure:
		return code == 0
	}
	return false
}

// deadline returns when a one-off pod's activeDeadlineSeconds passes:
// counted from its start, or from its creation while it has none (a pod
// that cannot get a sandbox is bounded too).
func (lc *lifecycle) deadline(now time.Time) (time.Time, bool) {
	d := lc.spec.ActiveDeadlineSeconds
	if d == nil || *d <= 0 || !lc.oneOff() {
		return time.Time{}, false
	}
	start := lc.stored.StartTime
	if start.IsZero() {
		start = lc.created
	}
	if start.IsZero() {
		start = now
	}
	return start.Add(time.Duration(*d) * time.Second), true
}

// pendingDeadline is deadline while it can still make a difference.
func (lc *lifecycle) pendingDeadline(now time.Time) (time.Time, bool) {
	if lc.finished() || lc.deadlineHit {
		return time.Time{}, false
	}
	return lc.deadline(now)
}

// onDeadline stops a one-off pod that ran past activeDeadlineSeconds; its
// containers are not restarted and the pod ends Failed.
func (lc *lifecycle) onDeadline(p *plan) {
	if lc.finished() || lc.deadlineHit || lc.spec.ActiveDeadlineSeconds == nil {
		return
	}
	lc.deadlineHit = true
	lc.endReason = ReasonDeadlineExceeded
	lc.endMessage = fmt.Sprintf("the pod ran longer than its activeDeadlineSeconds (%ds) and was stopped", *lc.spec.ActiveDeadlineSeconds)
	p.event(api.EventWarning, ReasonDeadlineExceeded, lc.endMessage)
	for _, c := range lc.cs {
		switch {
		case c.done:
		case c.running:
			if c.killing {
				continue
			}
			c.killing, c.ready = true, false
			p.actions = append(p.actions, action{kind: actStop, container: c.spec.Name, message: "stopping a container past its deadline failed"})
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

// probed applies one probe result with Kubernetes' semantics.
func (lc *lifecycle) probed(p *plan, ev probeEvent) {
	c := lc.container(ev.container)
	if c == nil || c.gen != ev.gen || !c.running || c.killing || c.probes[ev.kind] == nil {
		return
	}
	pr := probesOf(c.spec)[ev.kind]
	if ev.kind == probeStartup && c.startupDone {
		return
	}
	if !c.startupDone && ev.kind != probeStartup {
		return // readiness and liveness wait for the startup probe
	}
	c.status.ProbeResults = append(c.status.ProbeResults, ev.result)
	if n := len(c.status.ProbeResults) - lc.maxProbeResults; n > 0 {
		c.status.ProbeResults = append([]api.ProbeResult(nil), c.status.ProbeResults[n:]...)
	}
	if !ev.result.Success {
		p.force = true
		p.event(api.EventWarning, "Unhealthy", fmt.Sprintf("%s probe of %s failed: %s", strings.ToUpper(ev.kind[:1])+ev.kind[1:], c.spec.Name, describeResult(ev.result)))
	}
	passing, failing := c.probes[ev.kind].observe(pr, ev.result.Success)
	switch ev.kind {
	case probeStartup:
		if passing {
			c.startupDone = true
			c.status.Started = true
		} else if failing {
			lc.kill(p, c, "failed its startup probe")
		}
	case probeReadiness:
		if passing {
			c.ready = true
		} else if failing {
			c.ready = false
		}
	case probeLiveness:
		if failing {
			lc.kill(p, c, "failed its liveness probe")
		}
	}
}

// kill stops a container that failed a probe; its exit restarts it.
func (lc *lifecycle) kill(p *plan, c *containerState, why string) {
	c.killing, c.ready = true, false
	p.event(api.EventNormal, "Killing", fmt.Sprintf("container %s %s, will be restarted", c.spec.Name, why))
	p.actions = append(p.actions, action{kind: actStop, container: c.spec.Name, message: "stopping a container failed"})
}

// status computes the pod's status from what the lifecycle knows.
func (lc *lifecycle) status(now time.Time) api.PodStatus {
	old := lc.stored
	terminating := old.Reason == "Terminating"
	st := api.PodStatus{PodIP: old.PodIP, StartTime: old.StartTime, Conditions: old.Conditions, Reason: old.Reason, Message: old.Message}
	if lc.ip.IsValid() {
		st.PodIP = lc.ip.String()
		st.Reason, st.Message = "", ""
		if terminating {
			st.Reason = "Terminating"
		}
		if st.StartTime.IsZero() {
			st.StartTime = now
		}
	}
	if lc.limitsNote != "" {
		st.Message = lc.limitsNote
	}
	if lc.endReason != "" && st.Reason != "Terminating" {
		st.Reason, st.Message = lc.endReason, lc.endMessage
	}
	ready, started := true, false
	failed := lc.deadlineHit
	for _, c := range lc.cs {
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
		if terminating {
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
	if ready && len(lc.cs) > 0 {
		cond = api.Condition{Type: api.PodReady, Status: api.ConditionTrue}
	}
	if lc.finished() {
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

package node

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/runtime"
)

// The lifecycle's decisions, without processes, runtime or goroutines:
// each row starts a lifecycle from a pod record, feeds it observations as
// the worker would (the outcome of each start included), and checks the
// plan of the last one.

var lt0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func at(d time.Duration) time.Time { return lt0.Add(d) }

// timed is an observation seen d after lt0.
type timed struct {
	d  time.Duration
	ob observation
}

func lpod(policy string, deadline int64, cs ...api.Container) *api.Pod {
	p := &api.Pod{Metadata: api.ObjectMeta{Name: "p", CreationTimestamp: lt0}, Spec: api.PodSpec{Containers: cs, RestartPolicy: policy}}
	if deadline > 0 {
		p.Spec.ActiveDeadlineSeconds = &deadline
	}
	return p
}

func ctr(name string) api.Container { return api.Container{Name: name, Command: []string{name}} }

func withProbe(c api.Container, kind string, failures int32) api.Container {
	pr := &api.Probe{Exec: &api.ExecAction{Command: []string{"check"}}, SuccessThreshold: 1, FailureThreshold: failures}
	switch kind {
	case probeStartup:
		c.StartupProbe = pr
	case probeReadiness:
		c.ReadinessProbe = pr
	case probeLiveness:
		c.LivenessProbe = pr
	}
	return c
}

var podIP = netip.MustParseAddr("10.1.0.7")

func sandboxed(d time.Duration) timed { return timed{d, observation{kind: obsSandbox, ip: podIP}} }
func started(d time.Duration, name string) timed {
	return timed{d, observation{kind: obsStarted, container: name, startedAt: at(d)}}
}
func startFailed(d time.Duration, name string, err error) timed {
	return timed{d, observation{kind: obsStartFailed, container: name, err: err}}
}
func tick(d time.Duration) timed { return timed{d, observation{kind: obsTick}} }

// exited: the run ended at d with code (reason Completed, Error, or the
// one given).
func exited(d time.Duration, name string, code int, reason ...string) timed {
	s := runtime.ContainerStatus{Name: name, State: runtime.StateExited, ExitCode: code, FinishedAt: at(d), Reason: runtime.ReasonError}
	if code == 0 {
		s.Reason = runtime.ReasonCompleted
	}
	if code > 128 {
		s.Signal = code - 128
	}
	if len(reason) > 0 {
		s.Reason = reason[0]
	}
	return timed{d, observation{kind: obsExited, container: name, exit: s}}
}

func probed(d time.Duration, name string, gen int, kind string, ok bool) timed {
	r := api.ProbeResult{Probe: kind, Time: at(d), Success: ok}
	if !ok {
		r.StatusCode, r.Body = 503, "down"
	}
	return timed{d, observation{kind: obsProbe, probe: probeEvent{container: name, gen: gen, kind: kind, result: r}}}
}

func logged(d time.Duration, name, log string) timed {
	return timed{d, observation{kind: obsLog, container: name, log: log}}
}

func deadlinePassed(d time.Duration) timed { return timed{d, observation{kind: obsDeadline}} }

var errConfigSecret = fmt.Errorf("%w: secret %q: not found", errConfig, "db")

// actionsText writes a plan's actions one a line, as a reader would say them.
func actionsText(p plan) []string {
	var out []string
	for _, a := range p.actions {
		switch a.kind {
		case actEvent:
			out = append(out, fmt.Sprintf("event %s %s: %s", a.eventType, a.reason, a.message))
		case actStart:
			out = append(out, "start "+a.container)
		case actStop:
			out = append(out, "stop "+a.container)
		case actProbe:
			out = append(out, fmt.Sprintf("probe %s#%d", a.container, a.gen))
		case actUnprobe:
			out = append(out, "unprobe "+a.container)
		case actLog:
			out = append(out, "log "+a.container)
		default:
			out = append(out, fmt.Sprintf("action %d %s", a.kind, a.container))
		}
	}
	if p.force {
		out = append(out, "(write the status)")
	}
	return out
}

// statusText sums a pod status up on one line.
func statusText(st api.PodStatus) string {
	var b strings.Builder
	b.WriteString(st.Phase)
	if c := api.FindCondition(st.Conditions, api.PodReady); c != nil {
		fmt.Fprintf(&b, " Ready=%s", c.Status)
		if c.Reason != "" {
			fmt.Fprintf(&b, "(%s)", c.Reason)
		}
	}
	if st.Reason != "" {
		b.WriteString(" reason=" + st.Reason)
	}
	if st.Message != "" {
		fmt.Fprintf(&b, " message=%q", st.Message)
	}
	for _, cs := range st.ContainerStatuses {
		b.WriteString(" | " + cs.Name + ":")
		switch s := cs.State; {
		case s.Running != nil:
			b.WriteString(" running")
		case s.Waiting != nil:
			b.WriteString(" waiting " + s.Waiting.Reason)
		case s.Terminated != nil:
			b.WriteString(" " + terminationText(s.Terminated))
		}
		if cs.Started {
			b.WriteString(" started")
		}
		if cs.Ready {
			b.WriteString(" ready")
		}
		if cs.RestartCount > 0 {
			fmt.Fprintf(&b, " restarts=%d", cs.RestartCount)
		}
		if t := cs.LastState.Terminated; t != nil {
			b.WriteString(" last=" + terminationText(t))
		}
		if n := len(cs.ProbeResults); n > 0 {
			fmt.Fprintf(&b, " probes=%d", n)
		}
	}
	return b.String()
}

func terminationText(t *api.ContainerStateTerminated) string {
	s := fmt.Sprintf("terminated %s(%d)", t.Reason, t.ExitCode)
	if t.Message != "" {
		s += fmt.Sprintf(" %q", t.Message)
	}
	if t.LogTail != "" {
		s += fmt.Sprintf(" log=%q", t.LogTail)
	}
	return s
}

func TestLifecycle(t *testing.T) {
	web, side, job := ctr("web"), ctr("side"), ctr("job")
	always := func(cs ...api.Container) *api.Pod { return lpod(api.RestartAlways, 0, cs...) }
	never := func(cs ...api.Container) *api.Pod { return lpod(api.RestartNever, 0, cs...) }
	onFailure := func(cs ...api.Container) *api.Pod { return lpod(api.RestartOnFailure, 0, cs...) }
	running := []timed{sandboxed(0), started(0, "web")}
	jobRunning := []timed{sandboxed(0), started(0, "job")}
	const never30 = int64(30)
	ready := withProbe(web, probeReadiness, 1)
	live := withProbe(web, probeLiveness, 2)
	startup := withProbe(withProbe(web, probeStartup, 2), probeReadiness, 1)
	adopted := func(d time.Duration, cs ...runtime.RecoveredContainer) timed {
		return timed{d, observation{kind: obsAdopted, ip: podIP, recovered: cs}}
	}
	recovered := func(name string, state runtime.State, code int, reason string) runtime.RecoveredContainer {
		return runtime.RecoveredContainer{Config: runtime.ContainerConfig{Name: name},
			Status: runtime.ContainerStatus{Name: name, State: state, ExitCode: code, Reason: reason, StartedAt: at(-time.Hour)}}
	}
	storedRunning := func(p *api.Pod, readyBefore, startedBefore bool) *api.Pod {
		p.Status = api.PodStatus{Phase: api.PodRunning, PodIP: podIP.String(), StartTime: at(-time.Hour),
			ContainerStatuses: []api.ContainerStatus{{Name: p.Spec.Containers[0].Name, Ready: readyBefore, Started: startedBefore,
				State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: at(-time.Hour)}}}}}
		return p
	}
	storedEnded := func(p *api.Pod, phase, reason, msg string, code int32) *api.Pod {
		p.Status = api.PodStatus{Phase: phase, Reason: reason, Message: msg, PodIP: podIP.String(), StartTime: at(-time.Hour),
			ContainerStatuses: []api.ContainerStatus{{Name: p.Spec.Containers[0].Name,
				State: api.ContainerState{Terminated: &api.ContainerStateTerminated{ExitCode: code, Reason: runtime.ReasonError}}}}}
		return p
	}
	then := func(before []timed, more ...timed) []timed { return append(append([]timed(nil), before...), more...) }
	// killed: a liveness probe failed twice, its threshold; livenessKill is
	// what that second failure does.
	killed := then(running, probed(time.Second, "web", 1, probeLiveness, false), probed(2*time.Second, "web", 1, probeLiveness, false))
	livenessKill := []string{`event Warning Unhealthy: Liveness probe of web failed: status 503, body "down"`,
		"event Normal Killing: container web failed its liveness probe, will be restarted", "stop web", "(write the status)"}

	for _, tc := range []struct {
		name   string
		pod    *api.Pod
		caps   runtime.Capabilities
		before []timed // observations fed first, their plans unchecked
		ob     timed
		want   []string // the actions of ob's plan
		wake   time.Duration
		status string
	}{
		// Starts.
		{name: "a new pod starts every container once it has a sandbox", pod: always(web, side), ob: sandboxed(0),
			want: []string{"start web", "start side"}, status: "Pending Ready=False(ContainersNotReady) | web: | side:"},
		{name: "no sandbox yet: nothing starts", pod: always(web), ob: timed{0, observation{kind: obsSandboxFailed, err: errors.New("no address left")}},
			status: `Pending Ready=False(ContainersNotReady) reason=SandboxFailed message="no address left" | web:`},
		{name: "a started container without probes is ready", pod: always(web), before: []timed{sandboxed(0)}, ob: started(0, "web"),
			want:   []string{"event Normal Started: started container web", "probe web#1"},
			status: "Running Ready=True | web: running started ready"},
		{name: "a readiness probe gates Ready", pod: always(ready), before: []timed{sandboxed(0)}, ob: started(0, "web"),
			want:   []string{"event Normal Started: started container web", "probe web#1"},
			status: "Running Ready=False(ContainersNotReady) | web: running started"},
		{name: "a Never pod runs no probes", pod: never(withProbe(job, probeLiveness, 1)), before: []timed{sandboxed(0)}, ob: started(0, "job"),
			want:   []string{"event Normal Started: started container job"},
			status: "Running Ready=True | job: running started ready"},
		{name: "a configuration error waits out a back-off", pod: always(web, side), before: []timed{sandboxed(0), started(0, "side")}, ob: startFailed(0, "web", errConfigSecret),
			want: []string{`event Warning Failed: container web: configuration error: secret "db": not found`}, wake: 10 * time.Second,
			status: "Running Ready=False(ContainersNotReady) | web: waiting CreateContainerConfigError | side: running started ready"},
		{name: "a runtime error waits out a back-off", pod: always(web), before: []timed{sandboxed(0)}, ob: startFailed(0, "web", errors.New("exec: web: not found")),
			want: []string{"event Warning Failed: container web: exec: web: not found"}, wake: 10 * time.Second,
			status: "Pending Ready=False(ContainersNotReady) | web: waiting RunContainerError"},
		{name: "a start error ends a Never pod", pod: never(job), before: []timed{sandboxed(0)}, ob: startFailed(0, "job", errors.New("exec: job: not found")),
			want:   []string{"event Warning Failed: container job: exec: job: not found"},
			status: `Failed Ready=False(PodCompleted) | job: terminated StartError(128) "exec: job: not found"`},
		{name: "a Never pod retries a configuration error", pod: never(job), before: []timed{sandboxed(0)}, ob: startFailed(0, "job", errConfigSecret),
			want: []string{`event Warning Failed: container job: configuration error: secret "db": not found`}, wake: 10 * time.Second,
			status: "Pending Ready=False(ContainersNotReady) | job: waiting CreateContainerConfigError"},
		{name: "a back-off not over starts nothing", pod: always(web), before: []timed{sandboxed(0), startFailed(0, "web", errConfigSecret)}, ob: tick(9 * time.Second),
			wake: 10 * time.Second, status: "Pending Ready=False(ContainersNotReady) | web: waiting CreateContainerConfigError"},
		{name: "a back-off over starts the container", pod: always(web), before: []timed{sandboxed(0), startFailed(0, "web", errConfigSecret)}, ob: tick(10 * time.Second),
			want: []string{"start web"}, status: "Pending Ready=False(ContainersNotReady) | web: waiting CreateContainerConfigError"},
		{name: "a second start failure waits twice as long", pod: always(web),
			before: []timed{sandboxed(0), startFailed(0, "web", errConfigSecret), tick(10 * time.Second)}, ob: startFailed(10*time.Second, "web", errConfigSecret),
			want: []string{`event Warning Failed: container web: configuration error: secret "db": not found`}, wake: 30 * time.Second,
			status: "Pending Ready=False(ContainersNotReady) | web: waiting CreateContainerConfigError"},

		// Exits under each restart policy.
		{name: "Always: a crash backs off", pod: always(web), before: running, ob: exited(2*time.Second, "web", 3),
			want: []string{"unprobe web", "event Warning BackOff: back-off 10s restarting failed container web in pod p (last exit: Error, code 3)", "log web"},
			wake: 12 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Error(3)"},
		{name: "Always: a clean exit is restarted too", pod: always(web), before: running, ob: exited(2*time.Second, "web", 0),
			want: []string{"unprobe web", "event Warning BackOff: back-off 10s restarting failed container web in pod p (last exit: Completed, code 0)"},
			wake: 12 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Completed(0)"},
		{name: "Always: the restart comes when the back-off ends", pod: always(web), before: then(running, exited(2*time.Second, "web", 3)), ob: tick(12 * time.Second),
			want: []string{"start web"}, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Error(3)"},
		{name: "Always: the restarted run is a new generation", pod: always(web), before: then(running, exited(2*time.Second, "web", 3), tick(12*time.Second)), ob: started(12*time.Second, "web"),
			want:   []string{"event Normal Started: started container web", "probe web#2"},
			status: "Running Ready=True | web: running started ready restarts=1 last=terminated Error(3)"},
		{name: "Always: an OOM kill is told", pod: always(web), before: running, ob: exited(2*time.Second, "web", 137, runtime.ReasonOOMKilled),
			want: []string{"unprobe web", "event Warning OOMKilled: container web exceeded its memory limit and was killed",
				"event Warning BackOff: back-off 10s restarting failed container web in pod p (last exit: OOMKilled, code 137)", "log web"},
			wake: 12 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated OOMKilled(137)"},
		{name: "Always: crashes double the back-off", pod: always(web),
			before: then(running, exited(1*time.Second, "web", 3), tick(11*time.Second), started(11*time.Second, "web"), exited(12*time.Second, "web", 3),
				tick(32*time.Second), started(32*time.Second, "web")),
			ob:   exited(33*time.Second, "web", 3),
			want: []string{"unprobe web", "event Warning BackOff: back-off 40s restarting failed container web in pod p (last exit: Error, code 3)", "log web"},
			wake: 73 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=3 last=terminated Error(3)"},
		{name: "Always: a long run forgets the crashes", pod: always(web),
			before: then(running, exited(1*time.Second, "web", 3), tick(11*time.Second), started(11*time.Second, "web")),
			ob:     exited(11*time.Second+10*time.Minute, "web", 3),
			want:   []string{"unprobe web", "event Warning BackOff: back-off 10s restarting failed container web in pod p (last exit: Error, code 3)", "log web"},
			wake:   21*time.Second + 10*time.Minute, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=2 last=terminated Error(3)"},
		{name: "an exit of a container not running is stale", pod: always(web), before: then(running, exited(2*time.Second, "web", 3)), ob: exited(3*time.Second, "web", 1),
			wake: 12 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Error(3)"},
		{name: "OnFailure: a failure restarts", pod: onFailure(job), before: jobRunning, ob: exited(time.Second, "job", 1),
			want: []string{"unprobe job", "event Warning BackOff: back-off 10s restarting failed container job in pod p (last exit: Error, code 1)", "log job"},
			wake: 11 * time.Second, status: "Running Ready=False(ContainersNotReady) | job: waiting CrashLoopBackOff started restarts=1 last=terminated Error(1)"},
		{name: "OnFailure: a success ends the pod Succeeded", pod: onFailure(job),
			before: then(jobRunning, exited(time.Second, "job", 1), tick(11*time.Second), started(11*time.Second, "job")), ob: exited(12*time.Second, "job", 0),
			want:   []string{"unprobe job", "event Normal Completed: container job exited with code 0", "log job"},
			status: "Succeeded Ready=False(PodCompleted) | job: terminated Completed(0) started restarts=1 last=terminated Error(1)"},
		{name: "Never: exit 0 is Succeeded", pod: never(job), before: jobRunning, ob: exited(time.Second, "job", 0),
			want:   []string{"unprobe job", "event Normal Completed: container job exited with code 0", "log job"},
			status: "Succeeded Ready=False(PodCompleted) | job: terminated Completed(0) started"},
		{name: "Never: a failure is Failed, not restarted", pod: never(job), before: jobRunning, ob: exited(time.Second, "job", 2),
			want:   []string{"unprobe job", "event Warning Failed: container job ended (Error, code 2); restartPolicy Never: not restarted", "log job"},
			status: "Failed Ready=False(PodCompleted) | job: terminated Error(2) started"},
		{name: "Never: an ended container is never started again", pod: never(job), before: then(jobRunning, exited(time.Second, "job", 2)), ob: tick(time.Hour),
			status: "Failed Ready=False(PodCompleted) | job: terminated Error(2) started"},
		{name: "Never: one container ended, one runs: Running", pod: never(job, side), before: []timed{sandboxed(0), started(0, "job"), started(0, "side")},
			ob:     exited(time.Second, "job", 0),
			want:   []string{"unprobe job", "event Normal Completed: container job exited with code 0", "log job"},
			status: "Running Ready=False(ContainersNotReady) | job: terminated Completed(0) started | side: running started ready"},
		{name: "Never: one container failed, the other succeeds: Failed", pod: never(job, side),
			before: []timed{sandboxed(0), started(0, "job"), started(0, "side"), exited(time.Second, "job", 1)}, ob: exited(2*time.Second, "side", 0),
			want:   []string{"unprobe side", "event Normal Completed: container side exited with code 0", "log side"},
			status: "Failed Ready=False(PodCompleted) | job: terminated Error(1) started | side: terminated Completed(0) started"},

		// activeDeadlineSeconds.
		{name: "past its deadline a running container is stopped", pod: lpod(api.RestartNever, never30, job), before: jobRunning, ob: deadlinePassed(30 * time.Second),
			want:   []string{"event Warning DeadlineExceeded: the pod ran longer than its activeDeadlineSeconds (30s) and was stopped", "stop job"},
			status: `Running Ready=True reason=DeadlineExceeded message="the pod ran longer than its activeDeadlineSeconds (30s) and was stopped" | job: running started ready`},
		{name: "the stopped run ends the pod Failed", pod: lpod(api.RestartNever, never30, job), before: then(jobRunning, deadlinePassed(30*time.Second)),
			ob:     exited(31*time.Second, "job", 143),
			want:   []string{"unprobe job", "event Warning Failed: container job ended (Error, code 143); restartPolicy Never: not restarted", "log job"},
			status: `Failed Ready=False(PodCompleted) reason=DeadlineExceeded message="the pod ran longer than its activeDeadlineSeconds (30s) and was stopped" | job: terminated Error(143) started`},
		{name: "OnFailure: a run stopped at the deadline is not restarted", pod: lpod(api.RestartOnFailure, never30, job), before: then(jobRunning, deadlinePassed(30*time.Second)),
			ob:     exited(31*time.Second, "job", 0),
			want:   []string{"unprobe job", "event Warning Failed: container job ended (Completed, code 0); restartPolicy OnFailure: not restarted", "log job"},
			status: `Failed Ready=False(PodCompleted) reason=DeadlineExceeded message="the pod ran longer than its activeDeadlineSeconds (30s) and was stopped" | job: terminated Completed(0) started`},
		{name: "a container waiting for its restart at the deadline ends as it last ended", pod: lpod(api.RestartOnFailure, never30, job),
			before: then(jobRunning, exited(25*time.Second, "job", 1)), ob: deadlinePassed(30 * time.Second),
			want:   []string{"event Warning DeadlineExceeded: the pod ran longer than its activeDeadlineSeconds (30s) and was stopped"},
			status: `Failed Ready=False(PodCompleted) reason=DeadlineExceeded message="the pod ran longer than its activeDeadlineSeconds (30s) and was stopped" | job: terminated Error(1) started restarts=1 last=terminated Error(1)`},
		{name: "a container never started by the deadline", pod: lpod(api.RestartNever, never30, job),
			before: []timed{sandboxed(0), startFailed(0, "job", errConfigSecret)}, ob: deadlinePassed(30 * time.Second),
			want:   []string{"event Warning DeadlineExceeded: the pod ran longer than its activeDeadlineSeconds (30s) and was stopped"},
			status: `Failed Ready=False(PodCompleted) reason=DeadlineExceeded message="the pod ran longer than its activeDeadlineSeconds (30s) and was stopped" | job: terminated DeadlineExceeded(-1) "never started before the pod's deadline"`},
		{name: "a deadline after the end changes nothing", pod: lpod(api.RestartNever, never30, job), before: then(jobRunning, exited(time.Second, "job", 0)),
			ob: deadlinePassed(30 * time.Second), status: "Succeeded Ready=False(PodCompleted) | job: terminated Completed(0) started"},
		{name: "the deadline counts from the pod's start", pod: func() *api.Pod {
			p := lpod(api.RestartNever, never30, job)
			p.Status.StartTime = at(time.Minute)
			return p
		}(), ob: tick(0), status: "Pending Ready=False(ContainersNotReady) | job:", want: []string{"start job"}},

		// Probes.
		{name: "a readiness pass makes the pod ready", pod: always(ready), before: running, ob: probed(time.Second, "web", 1, probeReadiness, true),
			status: "Running Ready=True | web: running started ready probes=1"},
		{name: "a readiness failure: not ready, not restarted, explained", pod: always(ready), before: then(running, probed(time.Second, "web", 1, probeReadiness, true)),
			ob:     probed(2*time.Second, "web", 1, probeReadiness, false),
			want:   []string{`event Warning Unhealthy: Readiness probe of web failed: status 503, body "down"`, "(write the status)"},
			status: "Running Ready=False(ContainersNotReady) | web: running started probes=2"},
		{name: "a liveness failure under its threshold only warns", pod: always(live), before: running, ob: probed(time.Second, "web", 1, probeLiveness, false),
			want:   []string{`event Warning Unhealthy: Liveness probe of web failed: status 503, body "down"`, "(write the status)"},
			status: "Running Ready=True | web: running started ready probes=1"},
		// Without a readiness probe a container stays Ready until the kill
		// ends its run (the exit below).
		{name: "liveness failures at the threshold kill the container", pod: always(live), before: then(running, probed(time.Second, "web", 1, probeLiveness, false)),
			ob:     probed(2*time.Second, "web", 1, probeLiveness, false),
			want:   livenessKill,
			status: "Running Ready=True | web: running started ready probes=2"},
		{name: "a container being killed ignores its probes", pod: always(live),
			before: killed,
			ob:     probed(3*time.Second, "web", 1, probeLiveness, false),
			status: "Running Ready=True | web: running started ready probes=2"},
		{name: "a kill that failed lets the probes act again", pod: always(live),
			before: then(killed, timed{2 * time.Second, observation{kind: obsStopped, container: "web", err: errors.New("no such process")}}),
			ob:     probed(3*time.Second, "web", 1, probeLiveness, false),
			want:   livenessKill,
			status: "Running Ready=True | web: running started ready probes=3"},
		{name: "the killed container restarts with back-off", pod: always(live),
			before: killed,
			ob:     exited(3*time.Second, "web", 143),
			want:   []string{"unprobe web", "event Warning BackOff: back-off 10s restarting failed container web in pod p (last exit: Error, code 143)", "log web"},
			wake:   13 * time.Second, status: "Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Error(143) probes=2"},
		{name: "a result of an earlier run is dropped", pod: always(live), before: then(running, exited(time.Second, "web", 1), tick(11*time.Second), started(11*time.Second, "web")),
			ob: probed(12*time.Second, "web", 1, probeLiveness, false), status: "Running Ready=True | web: running started ready restarts=1 last=terminated Error(1)"},
		{name: "readiness waits for the startup probe", pod: always(startup), before: running, ob: probed(time.Second, "web", 1, probeReadiness, true),
			status: "Running Ready=False(ContainersNotReady) | web: running"},
		{name: "a startup pass: started, then readiness counts", pod: always(startup), before: then(running, probed(time.Second, "web", 1, probeStartup, true)),
			ob: probed(2*time.Second, "web", 1, probeReadiness, true), status: "Running Ready=True | web: running started ready probes=2"},
		{name: "startup failures at the threshold kill the container", pod: always(startup),
			before: then(running, probed(time.Second, "web", 1, probeStartup, false)), ob: probed(2*time.Second, "web", 1, probeStartup, false),
			want: []string{`event Warning Unhealthy: Startup probe of web failed: status 503, body "down"`,
				"event Normal Killing: container web failed its startup probe, will be restarted", "stop web", "(write the status)"},
			status: "Running Ready=False(ContainersNotReady) | web: running probes=2"},
		{name: "only the last results are kept", pod: always(ready),
			before: then(running, probed(1*time.Second, "web", 1, probeReadiness, true), probed(2*time.Second, "web", 1, probeReadiness, true),
				probed(3*time.Second, "web", 1, probeReadiness, true)),
			ob: probed(4*time.Second, "web", 1, probeReadiness, true), status: "Running Ready=True | web: running started ready probes=3"},

		// The end of the log of a run, read as asked by "log".
		{name: "the log of a run that ended for good is kept in its termination", pod: never(job),
			before: then(jobRunning, exited(time.Second, "job", 2)), ob: logged(time.Second, "job", "connecting\nERROR: table exists"),
			status: `Failed Ready=False(PodCompleted) | job: terminated Error(2) log="connecting\nERROR: table exists" started`},
		{name: "the log of a crashed run is kept in its last state", pod: always(web),
			before: then(running, exited(2*time.Second, "web", 3)), ob: logged(2*time.Second, "web", "panic: boom"), wake: 12 * time.Second,
			status: `Running Ready=False(ContainersNotReady) | web: waiting CrashLoopBackOff started restarts=1 last=terminated Error(3) log="panic: boom"`},
		{name: "an empty log adds nothing", pod: never(job),
			before: then(jobRunning, exited(time.Second, "job", 0)), ob: logged(time.Second, "job", ""),
			status: "Succeeded Ready=False(PodCompleted) | job: terminated Completed(0) started"},

		// Adoption after a Slipway restart, and records of earlier runs.
		{name: "an adopted container keeps its readiness and is probed again", pod: storedRunning(always(ready), true, true),
			ob: adopted(0, recovered("web", runtime.StateRunning, 0, "")), want: []string{"probe web#0"},
			status: "Running Ready=True | web: running started ready"},
		{name: "an adopted container that had not passed its startup probe starts over", pod: storedRunning(always(startup), true, false),
			ob: adopted(0, recovered("web", runtime.StateRunning, 0, "")), want: []string{"probe web#0"},
			status: "Running Ready=False(ContainersNotReady) | web: running"},
		{name: "an adopted one-off container that ended unwatched ends the pod", pod: storedRunning(never(job), true, true),
			ob:     adopted(0, recovered("job", runtime.StateExited, -1, runtime.ReasonUnknown)),
			want:   []string{"unprobe job", "event Warning Failed: container job ended (Unknown, code -1); restartPolicy Never: not restarted", "log job"},
			status: "Failed Ready=False(PodCompleted) | job: terminated Unknown(-1)"},
		{name: "a container the runtime did not keep is started", pod: storedRunning(always(web, side), true, true),
			ob: adopted(0, recovered("web", runtime.StateRunning, 0, "")), want: []string{"probe web#0", "start side"},
			status: "Running Ready=False(ContainersNotReady) | web: running started ready | side:"},
		{name: "a one-off pod that ended stays ended", pod: storedEnded(never(job), api.PodSucceeded, "", "", 0), ob: tick(0),
			status: "Succeeded Ready=False(PodCompleted) | job: terminated Error(0)"},
		{name: "a one-off pod that ran out of time keeps its reason", pod: storedEnded(lpod(api.RestartNever, never30, job), api.PodFailed, ReasonDeadlineExceeded, "too long", 143),
			ob: tick(0), status: `Failed Ready=False(PodCompleted) reason=DeadlineExceeded message="too long" | job: terminated Error(143)`},
		{name: "an Always pod that was stopped runs again", pod: storedEnded(always(web), api.PodFailed, "", "", 143), ob: sandboxed(0),
			want: []string{"start web"}, status: "Pending Ready=False(ContainersNotReady) | web:"},

		// The pod's own status.
		{name: "a terminating pod is never ready", pod: always(web), before: running, ob: timed{time.Second, observation{kind: obsTerminating}},
			status: "Running Ready=False(Terminating) reason=Terminating | web: running started"},
		{name: "limits the runtime cannot enforce are told", pod: func() *api.Pod {
			c := web
			c.Resources.Limits = api.ResourceList{api.ResourceMemory: "64Mi", api.ResourceCPU: "500m"}
			return always(c)
		}(), caps: runtime.Capabilities{CPULimit: runtime.Capability{Supported: true}, MemoryLimit: runtime.Capability{Reason: "no cgroup v2 here"}},
			before: []timed{sandboxed(0)}, ob: started(0, "web"), want: []string{"event Normal Started: started container web", "probe web#1"},
			status: `Running Ready=True message="memory limit of web not enforced: no cgroup v2 here" | web: running started ready`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := newLifecycle(tc.pod, tc.caps, DefaultBackoff, 3)
			for _, b := range tc.before {
				// The worker writes each status and keeps what it wrote.
				lc.stored = lc.step(b.ob, at(b.d)).status
			}
			p := lc.step(tc.ob.ob, at(tc.ob.d))
			if diff := cmp.Diff(tc.want, actionsText(p)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			var wake time.Time
			if tc.wake != 0 {
				wake = at(tc.wake)
			}
			if !p.wake.Equal(wake) {
				t.Errorf("next start at %v, want %v", p.wake, wake)
			}
			if got := statusText(p.status); got != tc.status {
				t.Errorf("status\n got %s\nwant %s", got, tc.status)
			}
		})
	}
}

// TestLifecycleStatus checks a whole status once: addresses, times and
// conditions, which the rows above leave out.
func TestLifecycleStatus(t *testing.T) {
	lc := newLifecycle(lpod(api.RestartAlways, 0, ctr("web")), runtime.Capabilities{}, DefaultBackoff, 3)
	lc.stored = lc.step(sandboxed(0).ob, lt0).status
	got := lc.step(started(time.Second, "web").ob, at(time.Second)).status
	want := api.PodStatus{
		Phase: api.PodRunning, PodIP: podIP.String(), StartTime: lt0,
		Conditions: []api.Condition{
			{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: at(time.Second)},
			{Type: api.PodScheduled, Status: api.ConditionTrue, LastTransitionTime: lt0},
		},
		ContainerStatuses: []api.ContainerStatus{{Name: "web", Ready: true, Started: true,
			State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: at(time.Second)}}}},
	}
	// The worker keeps what it wrote; the next status starts from it.
	lc.stored = got
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
	again := lc.step(tick(time.Minute).ob, at(time.Minute)).status
	if diff := cmp.Diff(want, again); diff != "" {
		t.Errorf("status a minute later, nothing changed (-want +got):\n%s", diff)
	}
}

// TestLifecycleLost: a one-off pod whose sandbox is gone is never run
// again once it ran; one that never ran is.
func TestLifecycleLost(t *testing.T) {
	ranning := func(p *api.Pod) *api.Pod {
		p.Status.ContainerStatuses = []api.ContainerStatus{{Name: "job", State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: lt0}}}}
		return p
	}
	for _, tc := range []struct {
		name   string
		pod    *api.Pod
		lost   bool
		status string
	}{
		{"never ran: it runs", lpod(api.RestartNever, 0, ctr("job"), ctr("side")), false, "Pending Ready=False(ContainersNotReady) | job: | side:"},
		{"was running: not run twice", ranning(lpod(api.RestartNever, 0, ctr("job"), ctr("side"))), true,
			`Failed Ready=False(PodCompleted) | job: terminated Unknown(-1) "its process was gone when Slipway started again (stopped on Slipway's way down, or the machine restarted); a one-off pod is not run twice"` +
				` | side: terminated Unknown(-1) "not started: the pod's other containers ran and are gone"`},
		{"had restarted: not run again", func() *api.Pod {
			p := lpod(api.RestartOnFailure, 0, ctr("job"))
			p.Status.ContainerStatuses = []api.ContainerStatus{{Name: "job", RestartCount: 1}}
			return p
		}(), true, `Failed Ready=False(PodCompleted) | job: terminated Unknown(-1) "its process was gone when Slipway started again (stopped on Slipway's way down, or the machine restarted); a one-off pod is not run twice" restarts=1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lc := newLifecycle(tc.pod, runtime.Capabilities{}, DefaultBackoff, 3)
			if got := lc.lost(); got != tc.lost {
				t.Errorf("lost = %v, want %v", got, tc.lost)
			}
			if got := statusText(lc.status(lt0)); got != tc.status {
				t.Errorf("status\n got %s\nwant %s", got, tc.status)
			}
		})
	}
}

// TestLifecycleLogIsCopied: the log goes into a copy of the termination,
// never into the one a status already written shares.
func TestLifecycleLogIsCopied(t *testing.T) {
	lc := newLifecycle(lpod(api.RestartNever, 0, ctr("job")), runtime.Capabilities{}, DefaultBackoff, 3)
	for _, o := range []timed{sandboxed(0), started(0, "job")} {
		lc.stored = lc.step(o.ob, at(o.d)).status
	}
	written := lc.step(exited(time.Second, "job", 1).ob, at(time.Second)).status
	after := lc.step(logged(time.Second, "job", "oops").ob, at(time.Second)).status
	if got := written.ContainerStatuses[0].State.Terminated.LogTail; got != "" {
		t.Errorf("the status written before the log changed: log %q", got)
	}
	if got := after.ContainerStatuses[0].State.Terminated.LogTail; got != "oops" {
		t.Errorf("log %q, want %q", got, "oops")
	}
}

// TestTrimLog: the bounds of a termination's log (hooks show it as is).
func TestTrimLog(t *testing.T) {
	var lines []string
	for i := range 30 {
		lines = append(lines, strings.Repeat("x", i))
	}
	got := trimLog(strings.Join(lines, "\n") + "\n\n")
	if want := strings.Join(lines[20:], "\n"); got != want {
		t.Errorf("trimLog kept %q, want the last 10 lines %q", got, want)
	}
	long := strings.Repeat("é", api.LogTailBytes) // 2 bytes each
	got = trimLog(long)
	if !strings.HasPrefix(got, "…é") || len(got) > api.LogTailBytes+len("…") {
		t.Errorf("trimLog of a long line: %d bytes starting %q", len(got), got[:8])
	}
}

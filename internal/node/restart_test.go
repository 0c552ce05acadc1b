package node

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/runtime"
)

var fastBackoff = Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond, Reset: time.Hour}

// createOneOff creates a pod with the given restart policy and deadline.
func (e *env) createOneOff(name, policy string, deadline int64, c api.Container) {
	e.t.Helper()
	grace := int64(1)
	pod := &api.Pod{
		Metadata: api.ObjectMeta{Name: name},
		Spec:     api.PodSpec{Containers: []api.Container{c}, TerminationGracePeriodSeconds: &grace, RestartPolicy: policy},
	}
	if deadline > 0 {
		pod.Spec.ActiveDeadlineSeconds = &deadline
	}
	if _, err := e.reg.Create(context.Background(), pod); err != nil {
		e.t.Fatal(err)
	}
}

func ended(p *api.Pod) bool {
	return p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed
}

// logs reads a pod's whole log through the agent, as `slipway logs` does.
func (e *env) logs(pod string) string {
	e.t.Helper()
	r, err := e.agent.Logs(context.Background(), api.DefaultProject, pod, "", runtime.LogOptions{})
	if err != nil {
		e.t.Fatalf("logs of %s: %v", pod, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func runs(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func terminated(t *testing.T, p *api.Pod) *api.ContainerStateTerminated {
	t.Helper()
	if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Terminated == nil {
		t.Fatalf("container statuses %+v, want one terminated", p.Status.ContainerStatuses)
	}
	return p.Status.ContainerStatuses[0].State.Terminated
}

// TestNeverPodRunsOnce: a Never pod's container runs once; exit 0 makes the
// pod Succeeded, non-zero Failed; neither is restarted (an Always pod with
// the same script, alongside, is restarted twice meanwhile), and the logs
// stay readable.
func TestNeverPodRunsOnce(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	dir := t.TempDir()
	script := func(name string, code int) api.Container {
		return sh("job", "echo run >> "+filepath.Join(dir, name)+"; echo hello from "+name+"; exit "+string(rune('0'+code)))
	}
	e.createOneOff("ok", api.RestartNever, 0, script("ok", 0))
	e.createOneOff("bad", api.RestartNever, 0, script("bad", 3))
	e.createPod("control", script("control", 3))

	ok := e.waitPod("ok", "ended", 20*time.Second, ended)
	bad := e.waitPod("bad", "ended", 20*time.Second, ended)
	e.waitPod("control", "2 restarts", 20*time.Second, func(p *api.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})

	if ok.Status.Phase != api.PodSucceeded || bad.Status.Phase != api.PodFailed {
		t.Errorf("phases ok=%s bad=%s, want Succeeded, Failed", ok.Status.Phase, bad.Status.Phase)
	}
	if term := terminated(t, ok); term.ExitCode != 0 || term.Reason != runtime.ReasonCompleted {
		t.Errorf("ok terminated %+v, want exit 0 Completed", term)
	}
	if term := terminated(t, bad); term.ExitCode != 3 || term.Reason != runtime.ReasonError {
		t.Errorf("bad terminated %+v, want exit 3 Error", term)
	}
	for _, p := range []*api.Pod{ok, bad} {
		if cs := p.Status.ContainerStatuses[0]; cs.RestartCount != 0 || cs.Ready {
			t.Errorf("%s: restartCount %d ready %v, want 0 false", p.Metadata.Name, cs.RestartCount, cs.Ready)
		}
		if c := api.FindCondition(p.Status.Conditions, api.PodReady); c == nil || c.Status != api.ConditionFalse || c.Reason != "PodCompleted" {
			t.Errorf("%s: Ready condition %+v, want False PodCompleted", p.Metadata.Name, c)
		}
	}
	if got := [2]int{runs(t, filepath.Join(dir, "ok")), runs(t, filepath.Join(dir, "bad"))}; got != [2]int{1, 1} {
		t.Errorf("runs of ok, bad = %v, want [1 1] (the control restarted meanwhile)", got)
	}
	if got := e.logs("bad"); got != "hello from bad\n" {
		t.Errorf("logs of the failed pod = %q", got)
	}
	// Logs stay until the pod is deleted.
	e.waitPod("control", "3 restarts", 20*time.Second, func(p *api.Pod) bool { return p.Status.ContainerStatuses[0].RestartCount >= 3 })
	if got := e.logs("ok"); got != "hello from ok\n" {
		t.Errorf("logs of the succeeded pod = %q", got)
	}
}

// TestOnFailureRestartsUntilSuccess: OnFailure restarts after a failure and
// stops after the first success.
func TestOnFailureRestartsUntilSuccess(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	count := filepath.Join(t.TempDir(), "count")
	// Fails on its first two runs, succeeds on the third.
	e.createOneOff("flaky", api.RestartOnFailure, 0, sh("job", "echo run >> "+count+"; [ $(wc -l < "+count+") -ge 3 ]"))
	p := e.waitPod("flaky", "ended", 20*time.Second, ended)
	e.createPod("control", sh("c", "exit 1"))
	e.waitPod("control", "2 restarts", 20*time.Second, func(p *api.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if p.Status.Phase != api.PodSucceeded {
		t.Errorf("phase %s, want Succeeded", p.Status.Phase)
	}
	cs := p.Status.ContainerStatuses[0]
	if cs.RestartCount != 2 || cs.LastState.Terminated == nil || cs.LastState.Terminated.ExitCode != 1 {
		t.Errorf("restartCount %d lastState %+v, want 2 restarts after exit 1", cs.RestartCount, cs.LastState)
	}
	if n := runs(t, count); n != 3 {
		t.Errorf("%d runs, want 3", n)
	}
}

// TestActiveDeadlineStopsOneOffPod: past activeDeadlineSeconds the pod's
// container is stopped, the pod is Failed with DeadlineExceeded and its
// logs stay readable.
func TestActiveDeadlineStopsOneOffPod(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	e.createOneOff("slow", api.RestartNever, 1, sh("job", "echo migrating; exec sleep 60"))
	p := e.waitPod("slow", "ended", 20*time.Second, ended)
	if p.Status.Phase != api.PodFailed || p.Status.Reason != ReasonDeadlineExceeded {
		t.Errorf("phase %s reason %q, want Failed DeadlineExceeded", p.Status.Phase, p.Status.Reason)
	}
	if want := "the pod ran longer than its activeDeadlineSeconds (1s) and was stopped"; p.Status.Message != want {
		t.Errorf("message %q, want %q", p.Status.Message, want)
	}
	if term := terminated(t, p); term.Signal != 15 {
		t.Errorf("terminated %+v, want ended by SIGTERM", term)
	}
	if got := e.logs("slow"); got != "migrating\n" {
		t.Errorf("logs %q", got)
	}
	// A container that cannot start (its secret is missing) is bounded too.
	blocked := sh("job", "echo never")
	blocked.Env = []api.EnvVar{{Name: "PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "missing", Key: "password"}}}}
	e.createOneOff("blocked", api.RestartNever, 1, blocked)
	p = e.waitPod("blocked", "ended", 20*time.Second, ended)
	if term := terminated(t, p); p.Status.Phase != api.PodFailed || p.Status.Reason != ReasonDeadlineExceeded || term.ExitCode != -1 || term.Message != "never started before the pod's deadline" {
		t.Errorf("blocked: phase %s reason %q terminated %+v, want Failed DeadlineExceeded, never started", p.Status.Phase, p.Status.Reason, term)
	}
	var saw bool
	for _, ev := range e.events("slow") {
		saw = saw || ev.Reason == ReasonDeadlineExceeded
	}
	if !saw {
		t.Error("no DeadlineExceeded event")
	}
}

// TestNeverPodStartErrorFails: a command that cannot start fails the pod
// at once instead of retrying.
func TestNeverPodStartErrorFails(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	e.createOneOff("nocmd", api.RestartNever, 0, api.Container{Name: "job", Command: []string{"/nonexistent/migrate"}})
	p := e.waitPod("nocmd", "ended", 20*time.Second, ended)
	term := terminated(t, p)
	if p.Status.Phase != api.PodFailed || term.Reason != "StartError" || term.ExitCode != 128 || !strings.Contains(term.Message, "/nonexistent/migrate") {
		t.Errorf("phase %s terminated %+v, want Failed StartError 128 naming the command", p.Status.Phase, term)
	}
}

// TestNeverPodAcrossRestarts: a Never pod is never run twice by a new
// Slipway: one still running when Slipway is killed is adopted (and ends
// with an unknown status, which the process runtime cannot observe); one
// that had finished keeps its status and logs across a graceful stop; one
// stopped on a graceful stop is Failed with the signal; and one whose
// sandbox is gone is Failed, not started again.
func TestNeverPodAcrossRestarts(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	counter := func(name string) string { return filepath.Join(dir, name) }
	waitLoop := "echo run >> %s; echo started; while [ ! -f " + gate + " ]; do sleep 0.05; done; echo done"
	e.createOneOff("adopted", api.RestartNever, 0, sh("job", strings.Replace(waitLoop, "%s", counter("adopted"), 1)))
	e.createOneOff("finished", api.RestartNever, 0, sh("job", "echo run >> "+counter("finished")+"; echo finished"))
	e.waitPod("adopted", "running", 20*time.Second, func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })
	e.waitPod("finished", "ended", 20*time.Second, ended)

	// kill -9 of Slipway: pods keep running.
	e.stop(false)
	e.start(fastBackoff, nil)
	os.WriteFile(gate, nil, 0o644)
	p := e.waitPod("adopted", "ended", 20*time.Second, ended)
	if term := terminated(t, p); p.Status.Phase != api.PodFailed || term.ExitCode != -1 || term.Reason != runtime.ReasonUnknown {
		t.Errorf("adopted: phase %s terminated %+v, want Failed with an unknown exit (-1)", p.Status.Phase, term)
	}
	if got := e.logs("adopted"); got != "started\ndone\n" {
		t.Errorf("adopted logs %q", got)
	}
	os.Remove(gate)
	e.createOneOff("stopped", api.RestartNever, 0, sh("job", strings.Replace(waitLoop, "%s", counter("stopped"), 1)))
	e.waitPod("stopped", "running", 20*time.Second, func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })

	// A graceful stop, then a start.
	e.stop(true)
	e.start(fastBackoff, nil)
	p = e.waitPod("stopped", "ended", 20*time.Second, ended)
	if term := terminated(t, p); p.Status.Phase != api.PodFailed || term.Signal != 15 {
		t.Errorf("stopped: phase %s terminated %+v, want Failed by SIGTERM", p.Status.Phase, term)
	}
	if got := e.logs("finished"); got != "finished\n" {
		t.Errorf("finished logs after a graceful restart %q", got)
	}
	if p := e.pod("finished"); p.Status.Phase != api.PodSucceeded {
		t.Errorf("finished: phase %s after a restart, want Succeeded", p.Status.Phase)
	}

	// The machine lost the runtime's state: nothing to recover. "lost"
	// was running when Slipway was killed, and ends unwatched.
	os.Remove(gate)
	e.createOneOff("lost", api.RestartNever, 0, sh("job", strings.Replace(waitLoop, "%s", counter("lost"), 1)+"; touch "+gate+".lost"))
	e.waitPod("lost", "running", 20*time.Second, func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })
	e.stop(false)
	os.WriteFile(gate, nil, 0o644)
	waitFile(t, gate+".lost")
	if err := os.RemoveAll(filepath.Join(e.dir, "runtime")); err != nil {
		t.Fatal(err)
	}
	e.start(fastBackoff, nil)
	e.createPod("control", sh("c", "exit 1"))
	e.waitPod("control", "2 restarts", 20*time.Second, func(p *api.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 2
	})
	if p := e.pod("finished"); p.Status.Phase != api.PodSucceeded {
		t.Errorf("finished: phase %s after losing its sandbox, want Succeeded", p.Status.Phase)
	}
	p = e.waitPod("lost", "ended", 20*time.Second, ended)
	if term := terminated(t, p); p.Status.Phase != api.PodFailed || term.ExitCode != -1 || !strings.Contains(term.Message, "is not run twice") {
		t.Errorf("lost: phase %s terminated %+v, want Failed, exit unknown, not run twice", p.Status.Phase, term)
	}
	got := map[string]int{}
	for _, n := range []string{"adopted", "finished", "stopped", "lost"} {
		got[n] = runs(t, counter(n))
	}
	if diff := cmp.Diff(map[string]int{"adopted": 1, "finished": 1, "stopped": 1, "lost": 1}, got); diff != "" {
		t.Errorf("runs per pod (-want +got):\n%s", diff)
	}
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReadinessRetriedQuicklyAtStart: a container not serving yet when
// first probed is ready as soon as it can serve, not a period (here 60 s)
// later; only the period's probe and the first pass are reported.
func TestReadinessRetriedQuicklyAtStart(t *testing.T) {
	e := newEnv(t, fastBackoff, nil)
	flag := filepath.Join(t.TempDir(), "serving")
	c := sh("app", "sleep 0.3; touch "+flag+"; exec sleep 1000")
	c.ReadinessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", flag}}, PeriodSeconds: 60, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
	e.createPod("starting", c)
	p := e.waitPod("starting", "ready long before its probe period", 30*time.Second, ready)
	var got []bool
	for _, r := range p.Status.ContainerStatuses[0].ProbeResults {
		got = append(got, r.Success)
	}
	if diff := cmp.Diff([]bool{false, true}, got); diff != "" {
		t.Errorf("reported readiness results (-want +got):\n%s", diff)
	}
	var unhealthy int32
	for _, ev := range e.events("starting") {
		if ev.Reason == "Unhealthy" {
			unhealthy += ev.Count
		}
	}
	if unhealthy != 1 {
		t.Errorf("%d Unhealthy events, want 1 (the period's first probe; quick retries are not reported)", unhealthy)
	}
}

// TestFailedRunKeepsItsLogTail: the node keeps the end of a run's log in
// its termination when it failed, and for a one-off pod whatever its exit
// code, so that a reader of the Pod (the hooks) need not read logs; a
// clean exit of an Always pod keeps none.
func TestFailedRunKeepsItsLogTail(t *testing.T) {
	e := newEnv(t, Backoff{Base: time.Hour, Max: time.Hour, Reset: time.Hour}, nil)
	// Twelve lines, of which the last ten are kept; stderr too.
	noisy := "for i in 1 2 3 4 5 6 7 8 9 10 11; do echo line $i; done; echo 'ERROR: table exists' >&2; exit 3"
	e.createOneOff("failed", api.RestartNever, 0, sh("job", noisy))
	e.createOneOff("succeeded", api.RestartNever, 0, sh("job", "echo migrated; exit 0"))
	e.createPod("crashing", sh("c", noisy))
	e.createPod("clean", sh("c", "echo bye; exit 0"))

	want := "line 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\nline 11\nERROR: table exists"
	p := e.waitPod("failed", "ended", 20*time.Second, ended)
	if term := terminated(t, p); term.ExitCode != 3 || term.LogTail != want {
		t.Errorf("failed: terminated %+v, want exit 3 with log tail %q", term, want)
	}
	p = e.waitPod("succeeded", "ended", 20*time.Second, ended)
	if term := terminated(t, p); term.ExitCode != 0 || term.LogTail != "migrated" {
		t.Errorf("succeeded: terminated %+v, want exit 0 with log tail %q", term, "migrated")
	}
	lastTerm := func(p *api.Pod) *api.ContainerStateTerminated {
		if len(p.Status.ContainerStatuses) != 1 {
			return nil
		}
		return p.Status.ContainerStatuses[0].LastState.Terminated
	}
	p = e.waitPod("crashing", "its log kept", 20*time.Second, func(p *api.Pod) bool { t := lastTerm(p); return t != nil && t.LogTail != "" })
	if term := lastTerm(p); term.ExitCode != 3 || term.LogTail != want {
		t.Errorf("crashing: last state %+v, want exit 3 with log tail %q", term, want)
	}
	p = e.waitPod("clean", "restarting", 20*time.Second, func(p *api.Pod) bool { return lastTerm(p) != nil })
	if term := lastTerm(p); term.ExitCode != 0 || term.LogTail != "" {
		t.Errorf("clean: last state %+v, want exit 0 and no log tail", term)
	}
}

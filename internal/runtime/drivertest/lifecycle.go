package drivertest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/runtime"
)

func (h *harness) testStartStatusStop(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	before := time.Now()
	c, st, port := e.startServing(uid, ip, "web", nil)
	want := runtime.ContainerStatus{Name: "web", State: runtime.StateRunning, ConfigHash: c.Hash()}
	if diff := cmp.Diff(want, normal(st)); diff != "" {
		t.Errorf("StartContainer status (-want +got):\n%s", diff)
	}
	if st.PID <= 0 || st.StartedAt.Before(before.Add(-time.Second)) || !st.FinishedAt.IsZero() {
		t.Errorf("StartContainer: PID %d, StartedAt %v (test began %v), FinishedAt %v: want a pid, a start time, no finish", st.PID, st.StartedAt, before, st.FinishedAt)
	}
	if diff := cmp.Diff(st, e.status(uid, "web")); diff != "" {
		t.Errorf("ContainerStatus differs from what StartContainer returned (-start +status):\n%s", diff)
	}

	e.stop(uid, "web", 10*time.Second)
	ev := e.exit(uid, "web", 1)
	wantExit := runtime.ContainerStatus{Name: "web", State: runtime.StateExited, ExitCode: 143, Signal: 15, Reason: runtime.ReasonError, ConfigHash: c.Hash()}
	if diff := cmp.Diff(wantExit, normal(ev.Status)); diff != "" {
		t.Errorf("exit after SIGTERM (-want +got):\n%s", diff)
	}
	if ev.Status.PID != st.PID || ev.Status.StartedAt != st.StartedAt || ev.Status.FinishedAt.Before(st.StartedAt) {
		t.Errorf("exit event: PID %d StartedAt %v FinishedAt %v; want PID %d, StartedAt %v and a later FinishedAt", ev.Status.PID, ev.Status.StartedAt, ev.Status.FinishedAt, st.PID, st.StartedAt)
	}
	if diff := cmp.Diff(ev.Status, e.status(uid, "web")); diff != "" {
		t.Errorf("ContainerStatus after exit differs from the event (-event +status):\n%s", diff)
	}
	if !refused(ip, port) {
		t.Errorf("%s:%s still accepts connections after StopContainer returned", ip, port)
	}
	// Stopping what has exited is a no-op, and reports nothing more.
	e.stop(uid, "web", time.Second)
	if n := e.exitCount(uid, "web"); n != 1 {
		t.Errorf("%d exit events after a second stop, want 1", n)
	}
}

func (h *harness) testExitCodes(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	for _, tc := range []struct {
		name string
		args []string
		want runtime.ContainerStatus
	}{
		{"zero", []string{"-exit", "0"}, runtime.ContainerStatus{ExitCode: 0, Reason: runtime.ReasonCompleted}},
		{"three", []string{"-exit", "3"}, runtime.ContainerStatus{ExitCode: 3, Reason: runtime.ReasonError}},
		{"killed", []string{"-kill-self", "9"}, runtime.ContainerStatus{ExitCode: 137, Signal: 9, Reason: runtime.ReasonError}},
		{"aborted", []string{"-kill-self", "6"}, runtime.ContainerStatus{ExitCode: 2, Reason: runtime.ReasonError}}, // Go turns SIGABRT into exit 2
	} {
		c := e.app(tc.name, ip, "", tc.args)
		e.start(uid, c)
		ev := e.exit(uid, tc.name, 1)
		want := tc.want
		want.Name, want.State, want.ConfigHash = tc.name, runtime.StateExited, c.Hash()
		if diff := cmp.Diff(want, normal(ev.Status)); diff != "" {
			t.Errorf("%s: exit status (-want +got):\n%s", tc.name, diff)
		}
		if ev.PodUID != uid || ev.Name != tc.name {
			t.Errorf("%s: event for %s/%s, want %s/%s", tc.name, ev.PodUID, ev.Name, uid, tc.name)
		}
	}
}

func (h *harness) testStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	_, _, port := e.startServing(uid, ip, "stubborn", []string{"-ignore-term"})
	const grace = time.Second
	asked := time.Now()
	e.stop(uid, "stubborn", grace)
	returned := time.Now()
	ev := e.exit(uid, "stubborn", 1)
	if ev.Status.Signal != 9 || ev.Status.ExitCode != 137 || ev.Status.Reason != runtime.ReasonError {
		t.Errorf("exit of an app ignoring SIGTERM: signal %d, code %d, reason %q; want 9, 137, %q", ev.Status.Signal, ev.Status.ExitCode, ev.Status.Reason, runtime.ReasonError)
	}
	// The driver's own finish time: the kill came after the grace, not before, and not much later.
	if took := ev.Status.FinishedAt.Sub(asked); took < grace || took > grace+3*time.Second {
		t.Errorf("killed %v after StopContainer was called, want between %v and %v", took, grace, grace+3*time.Second)
	}
	if returned.Before(ev.Status.FinishedAt) {
		t.Errorf("StopContainer returned at %v, before the container finished at %v", returned, ev.Status.FinishedAt)
	}
	if !refused(ip, port) {
		t.Errorf("still listening after the kill")
	}
}

func (h *harness) testStopPrompt(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	e.startServing(uid, ip, "polite", nil)
	const grace = 30 * time.Second
	asked := time.Now()
	e.stop(uid, "polite", grace)
	ev := e.exit(uid, "polite", 1)
	if ev.Status.Signal != 15 {
		t.Errorf("signal %d, want 15 (SIGTERM, honoured at once)", ev.Status.Signal)
	}
	if took := ev.Status.FinishedAt.Sub(asked); took > 5*time.Second {
		t.Errorf("finished %v after StopContainer with a %v grace; an app that honours SIGTERM must not wait for the grace", took, grace)
	}
}

func (h *harness) testErrors(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	ctx := context.Background()
	uid, ip := e.pod()
	sb, err := e.d.CreateSandbox(ctx, runtime.PodConfig{UID: uid})
	if err != nil || sb.IP.String() != ip {
		t.Errorf("CreateSandbox again: %v, %v; want the same IP %s (idempotent)", sb.IP, err, ip)
	}
	if _, err := e.d.ContainerStatus(ctx, uid, "nope"); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("ContainerStatus of an unknown container: %v, want ErrNotFound", err)
	}
	if _, err := e.d.StartContainer(ctx, "no-such-pod", e.app("web", ip, "1", nil)); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("StartContainer in an unknown pod: %v, want ErrNotFound", err)
	}
	if err := e.d.StopContainer(ctx, uid, "nope", time.Second); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("StopContainer of an unknown container: %v, want ErrNotFound", err)
	}
	for _, bad := range []runtime.ContainerConfig{
		{Name: "", Command: e.h.command},
		{Name: "../escape", Command: e.h.command},
		{Name: "web", Command: e.h.command, Env: []string{"NOEQUALS"}},
		{Name: "web", Command: e.h.command, Limits: runtime.Limits{MemoryBytes: -1}},
	} {
		if _, err := e.d.StartContainer(ctx, uid, bad); !isErr(err, runtime.ErrInvalid) {
			t.Errorf("StartContainer(%+v): %v, want ErrInvalid", bad, err)
		}
	}
	for _, bad := range []runtime.PodConfig{
		{UID: "a/b"},
		{UID: "ok", Ports: []runtime.Port{{Number: 0, Protocol: "TCP"}}},
		{UID: "ok", Ports: []runtime.Port{{Number: 80, Protocol: "SCTP"}}},
	} {
		if _, err := e.d.CreateSandbox(ctx, bad); !isErr(err, runtime.ErrInvalid) {
			t.Errorf("CreateSandbox(%+v): %v, want ErrInvalid", bad, err)
		}
	}
	_, _, port := e.startServing(uid, ip, "web", nil)
	if _, err := e.d.StartContainer(ctx, uid, e.app("web", ip, port, nil)); !isErr(err, runtime.ErrConflict) {
		t.Errorf("StartContainer of a running container: %v, want ErrConflict", err)
	}
	// Removing the sandbox kills what runs in it and forgets it.
	if err := e.d.RemoveSandbox(ctx, uid); err != nil {
		t.Fatalf("RemoveSandbox: %v", err)
	}
	if !refused(ip, port) {
		t.Errorf("the container still listens after RemoveSandbox")
	}
	if _, err := e.d.ContainerStatus(ctx, uid, "web"); !isErr(err, runtime.ErrNotFound) {
		t.Errorf("ContainerStatus after RemoveSandbox: %v, want ErrNotFound", err)
	}
	if err := e.d.RemoveSandbox(ctx, uid); err != nil {
		t.Errorf("RemoveSandbox of a removed pod: %v, want nil", err)
	}
}

func (h *harness) testPodNetwork(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uidA, ipA := e.pod()
	uidB, ipB := e.pod()
	if ipA == ipB {
		t.Fatalf("two pods got the same IP %s", ipA)
	}
	// Two containers of pod A on two ports of A's IP; pod B's container on
	// the very port of A's first container, on B's IP.
	portA1 := freePort(t, ipA)
	e.start(uidA, e.app("one", ipA, portA1, nil, "WHO=a1"))
	get(t, ipA, portA1, "/healthz")
	portA2 := freePort(t, ipA)
	e.start(uidA, e.app("two", ipA, portA2, nil, "WHO=a2"))
	e.start(uidB, e.app("one", ipB, portA1, nil, "WHO=b1"))
	for _, tc := range []struct{ ip, port, who string }{{ipA, portA1, "a1"}, {ipA, portA2, "a2"}, {ipB, portA1, "b1"}} {
		var env []string
		if err := json.Unmarshal([]byte(get(t, tc.ip, tc.port, "/env")), &env); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(env, "WHO="+tc.who) {
			t.Errorf("%s:%s answered with env %q, want the container WHO=%s", tc.ip, tc.port, env, tc.who)
		}
	}
	if portA1 == portA2 {
		t.Errorf("the two containers of pod A were given the same port %s", portA1)
	}
}

func (h *harness) testEnvAndWorkingDir(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	uid, ip := e.pod()
	wd := t.TempDir()
	port := freePort(t, ip)
	c := e.app("web", ip, port, nil, "PLAIN=1", "SPACES=a b  c", "EQUALS=x=y", "EMPTY=")
	c.WorkingDir = wd
	e.start(uid, c)
	var env []string
	if err := json.Unmarshal([]byte(get(t, ip, port, "/env")), &env); err != nil {
		t.Fatal(err)
	}
	for _, want := range c.Env {
		if !slices.Contains(env, want) {
			t.Errorf("container env lacks %q; it has %q", want, env)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, leakVar+"=") {
			t.Errorf("Slipway's own environment leaked into the container: %s", kv)
		}
	}
	if got := get(t, ip, port, "/cwd"); got != wd {
		t.Errorf("working directory %q, want %q", got, wd)
	}
}

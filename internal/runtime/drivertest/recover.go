package drivertest

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/runtime"
)

// testRecover plays a Slipway restart: the first driver is closed without
// stopping anything, a second one opens the same state and adopts the
// running containers — the same processes, not new ones — and reports their
// later exits.
func (h *harness) testRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	e1 := h.envOn(t, dir)
	uid, ip := e1.pod()
	c1, st1, port1 := e1.startServing(uid, ip, "stubborn", []string{"-ignore-term", "-lines", "1"}, "LOG_TAG=before")
	c2, st2, port2 := e1.startServing(uid, ip, "quitter", nil)
	e1.closeNow()
	get(t, ip, port1, "/healthz")
	get(t, ip, port2, "/healthz")

	e2 := h.envOn(t, dir)
	e2.adoptPod(uid)
	want := []runtime.RecoveredSandbox{{
		Pod:     podConfig(uid),
		Sandbox: runtime.Sandbox{PodUID: uid, IP: mustAddr(t, ip)},
		Containers: []runtime.RecoveredContainer{
			{Config: c2, Status: st2}, // sorted by name
			{Config: c1, Status: st1},
		},
	}}
	for i := range 2 { // a second call adopts nothing twice
		got, err := e2.d.Recover(ctx)
		if err != nil {
			t.Fatalf("Recover #%d: %v", i+1, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Fatalf("Recover #%d (-want +got):\n%s", i+1, diff)
		}
	}
	if diff := cmp.Diff(st1, e2.status(uid, "stubborn")); diff != "" {
		t.Errorf("status of the adopted container (-before restart +after):\n%s", diff)
	}
	if _, ip3 := e2.pod(); ip3 == ip {
		t.Errorf("a new pod got the address %s of a recovered one", ip3)
	}

	// An adopted container's own exit is reported by the new driver.
	get(t, ip, port2, "/exit?code=3")
	ev := e2.exit(uid, "quitter", 1)
	wantQuit := runtime.ContainerStatus{Name: "quitter", State: runtime.StateExited, ExitCode: -1, Reason: runtime.ReasonUnknown, ConfigHash: c2.Hash()}
	if e2.d.Capabilities().ExitCodeAfterRecover {
		wantQuit.ExitCode, wantQuit.Reason = 3, runtime.ReasonError
	}
	if diff := cmp.Diff(wantQuit, normal(ev.Status)); diff != "" {
		t.Errorf("exit of an adopted container (-want +got):\n%s", diff)
	}
	if ev.Status.PID != st2.PID || !ev.Status.StartedAt.Equal(st2.StartedAt) {
		t.Errorf("exit event names pid %d started %v, want the adopted pid %d started %v", ev.Status.PID, ev.Status.StartedAt, st2.PID, st2.StartedAt)
	}

	// Stopping an adopted container honours the grace, then kills.
	asked := time.Now()
	e2.stop(uid, "stubborn", 300*time.Millisecond)
	ev = e2.exit(uid, "stubborn", 1)
	wantKill := runtime.ContainerStatus{Name: "stubborn", State: runtime.StateExited, ExitCode: 137, Signal: 9, Reason: runtime.ReasonError, ConfigHash: c1.Hash()}
	if diff := cmp.Diff(wantKill, normal(ev.Status)); diff != "" {
		t.Errorf("stop of an adopted container ignoring SIGTERM (-want +got):\n%s", diff)
	}
	if took := ev.Status.FinishedAt.Sub(asked); took < 300*time.Millisecond {
		t.Errorf("adopted container killed %v after the stop request, before its 300ms grace", took)
	}
	if logs := h.logsOf(t, e2.d, uid, "stubborn", runtime.LogOptions{}, "out 1 before\nerr 1 before\n"); !h.sameLog(logs, "out 1 before\nerr 1 before\n") {
		t.Errorf("logs of the adopted container: %q", logs)
	}
	if n := e1.exitCount(uid, "quitter") + e1.exitCount(uid, "stubborn"); n != 0 {
		t.Errorf("the closed driver reported %d exits", n)
	}

	// The recovered pod is fully usable: restart a container in it.
	e2.startServing(uid, ip, "quitter", nil)
}

func (h *harness) testOOM(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	requireLimits(t, e.d.Capabilities().MemoryLimit, "memory")
	uid, ip := e.pod()
	hog := e.app("hog", ip, "", []string{"-alloc", strconv.Itoa(1 << 30)})
	hog.Limits.MemoryBytes = 64 << 20
	e.start(uid, hog)
	ev := e.exit(uid, "hog", 1)
	want := runtime.ContainerStatus{Name: "hog", State: runtime.StateExited, ExitCode: 137, Signal: 9, OOMKilled: true, Reason: runtime.ReasonOOMKilled, ConfigHash: hog.Hash()}
	if diff := cmp.Diff(want, normal(ev.Status)); diff != "" {
		t.Errorf("a container allocating 1 GiB under a 64 MiB limit (-want +got):\n%s", diff)
	}
	// Within its limit, the same app completes.
	modest := e.app("modest", ip, "", []string{"-alloc", strconv.Itoa(8 << 20)})
	modest.Limits.MemoryBytes = 64 << 20
	e.start(uid, modest)
	ev = e.exit(uid, "modest", 1)
	if ev.Status.Reason != runtime.ReasonCompleted || ev.Status.OOMKilled {
		t.Errorf("a container allocating 8 MiB under a 64 MiB limit ended %+v, want Completed", ev.Status)
	}
}

func (h *harness) testCPULimit(t *testing.T) {
	t.Parallel()
	e := h.newEnv(t)
	requireLimits(t, e.d.Capabilities().CPULimit, "cpu")
	uid, ip := e.pod()
	port := freePort(t, ip)
	c := e.app("spinner", ip, port, nil)
	c.Limits.CPUMillis = 100
	e.start(uid, c)
	get(t, ip, port, "/healthz")
	used, err := strconv.Atoi(strings.TrimSpace(get(t, ip, port, "/spin?ms=1000")))
	if err != nil {
		t.Fatal(err)
	}
	// 100m is 10 ms per 100 ms period: about 100 ms in a second. Unlimited,
	// an idle core gives about 1000.
	if used > 400 {
		t.Errorf("used %d ms of CPU in 1000 ms of wall time under a 100m limit, want at most 400", used)
	}
}

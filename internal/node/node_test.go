package node

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime/drivertest"
	"slipway.dev/slipway/internal/runtime/process"
	"slipway.dev/slipway/internal/store/bolt"
)

// env is a real registry on a bolt file and a real process driver.
type env struct {
	t      testing.TB
	reg    *registry.Registry
	dir    string
	ipNet  netip.Prefix
	agent  *Agent
	driver *process.Driver
	cancel context.CancelFunc
	done   chan struct{}
}

// testRange gives each test its own pod address range, so that tests of
// several packages running at once never share an address.
func testRange(name string) netip.Prefix {
	h := 0
	for _, c := range name {
		h = (h*31 + int(c)) & 0xff
	}
	return netip.MustParsePrefix(fmt.Sprintf("127.21.%d.0/24", h))
}

func newEnv(t *testing.T, backoff Backoff, drainer Drainer) *env {
	t.Helper()
	return newEnvTB(t, t.Name(), backoff, drainer)
}

func newBenchEnv(b *testing.B) *env {
	return newEnvTB(b, b.Name(), DefaultBackoff, nil)
}

func newEnvTB(t testing.TB, name string, backoff Backoff, drainer Drainer) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, reg: reg, dir: dir, ipNet: testRange(name)}
	e.start(backoff, drainer)
	return e
}

// start runs an agent over a new driver on the same runtime directory (a
// Slipway restart when called again).
func (e *env) start(backoff Backoff, drainer Drainer) {
	d, err := process.New(process.Options{Dir: filepath.Join(e.dir, "runtime"), IPRange: e.ipNet})
	if err != nil {
		e.t.Fatal(err)
	}
	clk := clock.Real{}
	e.driver = d
	e.agent = New(Options{
		Reg: e.reg, Driver: d, Drainer: drainer, Clock: clk, Backoff: backoff,
		Events:            &events.Recorder{Reg: e.reg, Source: "node", Clock: clk, Log: nil},
		BaseEnv:           []string{"PATH=" + os.Getenv("PATH")},
		ClaimSyncInterval: 100 * time.Millisecond,
	})
	e.agent.opts.Events.Log = e.agent.log
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan struct{})
	go func() { e.agent.Run(ctx); close(e.done) }()
	e.t.Cleanup(func() { e.stop(true) })
}

// stop ends the agent, stopping its pods or leaving them running.
func (e *env) stop(stopPods bool) {
	if e.cancel == nil {
		return
	}
	e.cancel()
	<-e.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.agent.Shutdown(ctx, stopPods); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	e.cancel = nil
}

func (e *env) createPod(name string, containers ...api.Container) *api.Pod {
	e.t.Helper()
	grace := int64(2)
	o, err := e.reg.Create(context.Background(), &api.Pod{
		Metadata: api.ObjectMeta{Name: name},
		Spec:     api.PodSpec{Containers: containers, TerminationGracePeriodSeconds: &grace},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return o.(*api.Pod)
}

func (e *env) pod(name string) *api.Pod {
	o, err := e.reg.Get(context.Background(), podKind, api.DefaultProject, name)
	if err != nil {
		return nil
	}
	return o.(*api.Pod)
}

// waitPod polls the pod record until cond holds.
func (e *env) waitPod(name, what string, d time.Duration, cond func(*api.Pod) bool) *api.Pod {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if p := e.pod(name); p != nil && cond(p) {
			return p
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("pod %s: timed out after %v waiting until %s; last status: %+v", name, d, what, e.pod(name))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) events(name string) []*api.Event {
	objs, _, _ := e.reg.List(context.Background(), eventKindForTest, api.DefaultProject, registry.ListOptions{})
	var out []*api.Event
	for _, o := range objs {
		if ev := o.(*api.Event); ev.InvolvedObject.Name == name {
			out = append(out, ev)
		}
	}
	return out
}

var eventKindForTest, _ = api.LookupKind("Event")

func ready(p *api.Pod) bool {
	c := api.FindCondition(p.Status.Conditions, api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

func sh(name, script string) api.Container {
	return api.Container{Name: name, Command: []string{"sh", "-c", script}}
}

func TestCrashLoopBacksOffDoubling(t *testing.T) {
	e := newEnv(t, Backoff{Base: 100 * time.Millisecond, Max: 400 * time.Millisecond, Reset: time.Hour}, nil)
	start := time.Now()
	e.createPod("crasher", sh("c", "exit 3"))
	p := e.waitPod("crasher", "5 restarts", 30*time.Second, func(p *api.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 5
	})
	elapsed := time.Since(start)
	// Runs 2..6 waited 100, 200, 400, 400 ms after runs 1..4 ended.
	if min := 1100 * time.Millisecond; elapsed < min {
		t.Errorf("5 restarts took %v: back-off not respected (want at least %v)", elapsed, min)
	}
	cs := p.Status.ContainerStatuses[0]
	if term := cs.LastState.Terminated; term == nil || term.ExitCode != 3 || term.Reason != "Error" {
		t.Errorf("last state %+v, want terminated with exit code 3, reason Error", cs.LastState)
	}
	var delays []string
	re := regexp.MustCompile(`^back-off (\S+) restarting failed container c`)
	evs := e.events("crasher")
	sort.Slice(evs, func(i, j int) bool { return evs[i].FirstTimestamp.Before(evs[j].FirstTimestamp) })
	for _, ev := range evs {
		if ev.Reason == "BackOff" {
			m := re.FindStringSubmatch(ev.Message)
			if m == nil {
				t.Fatalf("BackOff message %q", ev.Message)
			}
			for range ev.Count { // identical messages aggregate into one Event
				delays = append(delays, m[1])
			}
		}
	}
	seen := strings.Join(delays, ",")
	if !strings.HasPrefix(seen, "100ms,200ms,400ms,400ms") {
		t.Errorf("back-off delays %s, want 100ms,200ms,400ms,400ms...", seen)
	}
	if got := podStatusReason(p); got != "CrashLoopBackOff" && cs.State.Running == nil {
		t.Errorf("waiting reason %q, want CrashLoopBackOff", got)
	}
}

func podStatusReason(p *api.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			return cs.State.Waiting.Reason
		}
	}
	return ""
}

func TestReadinessGatesAndLivenessRestarts(t *testing.T) {
	e := newEnv(t, Backoff{Base: 50 * time.Millisecond, Max: 50 * time.Millisecond, Reset: time.Hour}, nil)
	dir := t.TempDir()
	readyFile, aliveFile := filepath.Join(dir, "ready"), filepath.Join(dir, "alive")
	os.WriteFile(aliveFile, nil, 0o644)
	c := sh("app", "sleep 1000")
	c.ReadinessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", readyFile}}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 1}
	c.LivenessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"test", "-f", aliveFile}}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 2}
	e.createPod("gated", c)

	p := e.waitPod("gated", "running", 10*time.Second, func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })
	if ready(p) {
		t.Fatal("pod ready while its readiness probe fails")
	}
	os.WriteFile(readyFile, nil, 0o644)
	e.waitPod("gated", "ready", 10*time.Second, ready)
	os.Remove(readyFile)
	p = e.waitPod("gated", "not ready again", 10*time.Second, func(p *api.Pod) bool { return !ready(p) })
	if n := p.Status.ContainerStatuses[0].RestartCount; n != 0 {
		t.Fatalf("a failing readiness probe restarted the container (%d restarts)", n)
	}
	// The failing probe explains itself.
	var sawFailure bool
	for _, r := range p.Status.ContainerStatuses[0].ProbeResults {
		if r.Probe == "readiness" && !r.Success && strings.Contains(r.Error, "exited with code 1") {
			sawFailure = true
		}
	}
	if !sawFailure {
		t.Errorf("probe results do not explain the readiness failure: %+v", p.Status.ContainerStatuses[0].ProbeResults)
	}

	os.Remove(aliveFile)
	p = e.waitPod("gated", "restarted by liveness", 15*time.Second, func(p *api.Pod) bool {
		return p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	var killing bool
	for _, ev := range e.events("gated") {
		if ev.Reason == "Killing" && strings.Contains(ev.Message, "failed its liveness probe") {
			killing = true
		}
	}
	if !killing {
		t.Error("no Killing event names the liveness failure")
	}
}

// orderDrainer records when WaitDrained was asked and holds it until
// released, so a test can check that nothing is signalled before it.
type orderDrainer struct {
	mu      sync.Mutex
	called  chan netip.Addr
	release chan struct{}
}

func (d *orderDrainer) WaitDrained(ctx context.Context, ip netip.Addr) error {
	d.called <- ip
	select {
	case <-d.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestTerminationWaitsForDrainThenTermThenKill(t *testing.T) {
	dr := &orderDrainer{called: make(chan netip.Addr, 1), release: make(chan struct{})}
	e := newEnv(t, DefaultBackoff, dr)
	marker := filepath.Join(t.TempDir(), "got-term")
	// The app records SIGTERM and ignores it, so only SIGKILL ends it.
	c := sh("stubborn", fmt.Sprintf("trap 'date +%%s%%N > %s' TERM; while true; do sleep 0.05; done", marker))
	c.Ports = []api.ContainerPort{{Name: "http", Port: 8080}}
	p := e.createPod("stubborn", c)
	p = e.waitPod("stubborn", "ready", 10*time.Second, ready)

	if _, err := e.reg.Delete(context.Background(), podKind, api.DefaultProject, "stubborn", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var drained netip.Addr
	select {
	case drained = <-dr.called:
	case <-time.After(10 * time.Second):
		t.Fatal("termination did not ask the data planes to drain")
	}
	if want := netip.MustParseAddr(p.Status.PodIP); drained != want {
		t.Fatalf("drained %v, want the pod's address %v", drained, want)
	}
	// While the drain is pending, the app must not have been signalled.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("SIGTERM was sent before the data planes had drained")
		}
		time.Sleep(10 * time.Millisecond)
	}
	released := time.Now()
	close(dr.release)
	// SIGTERM comes right after the drain; SIGKILL after the 2s grace.
	var termAt time.Time
	waitFor(t, 10*time.Second, "SIGTERM reaches the app", func() bool {
		b, err := os.ReadFile(marker)
		if err != nil || len(strings.TrimSpace(string(b))) == 0 {
			return false
		}
		var ns int64
		fmt.Sscan(strings.TrimSpace(string(b)), &ns)
		termAt = time.Unix(0, ns)
		return true
	})
	if termAt.Before(released) {
		t.Fatalf("SIGTERM at %v, before the drain ended at %v", termAt, released)
	}
	waitFor(t, 15*time.Second, "the sandbox is removed", func() bool {
		e.agent.mu.Lock()
		defer e.agent.mu.Unlock()
		return len(e.agent.workers) == 0
	})
	// SIGTERM came after the release, and SIGKILL at least 2s after SIGTERM
	// (the grace, or its floor once the drain has spent it).
	if gone := time.Since(released); gone < 2*time.Second {
		t.Errorf("the app was gone %v after the drain ended; SIGKILL must wait at least 2s after SIGTERM", gone)
	}
}

func TestRestartAdoptsRunningPods(t *testing.T) {
	e := newEnv(t, DefaultBackoff, nil)
	for i := range 3 {
		e.createPod(fmt.Sprintf("keep-%d", i), sh("c", "sleep 1000"))
	}
	pids := map[string]int{}
	for i := range 3 {
		name := fmt.Sprintf("keep-%d", i)
		e.waitPod(name, "ready", 10*time.Second, ready)
		uid := e.pod(name).Metadata.UID
		st, err := e.driver.ContainerStatus(context.Background(), uid, "c")
		if err != nil || st.PID == 0 {
			t.Fatalf("status of %s: %+v %v", name, st, err)
		}
		pids[name] = st.PID
	}
	e.stop(false) // leave the pods running, as --keep-pods or a crash does
	e.start(DefaultBackoff, nil)
	for name, pid := range pids {
		uid := e.pod(name).Metadata.UID
		waitFor(t, 10*time.Second, name+" adopted", func() bool {
			e.agent.mu.Lock()
			defer e.agent.mu.Unlock()
			return e.agent.workers[uid] != nil
		})
		st, err := e.driver.ContainerStatus(context.Background(), uid, "c")
		if err != nil || st.PID != pid || st.State != "Running" {
			t.Errorf("%s after restart: %+v %v; want the same pid %d running", name, st, err, pid)
		}
		if n := e.pod(name).Status.ContainerStatuses[0].RestartCount; n != 0 {
			t.Errorf("%s restarted %d times across the Slipway restart", name, n)
		}
	}
}

func TestEnvContract(t *testing.T) {
	e := newEnv(t, DefaultBackoff, nil)
	out := filepath.Join(t.TempDir(), "env")
	c := sh("web", "env > "+out+"; sleep 1000")
	c.Ports = []api.ContainerPort{{Name: "http", Port: 8080}, {Name: "admin-port", Port: 9090}}
	c.Env = []api.EnvVar{{Name: "GREETING", Value: "hi"}, {Name: "DB_PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password"}}}}
	ctx := context.Background()
	if _, err := e.reg.Create(ctx, &api.Secret{Metadata: api.ObjectMeta{Name: "db"}, Data: map[string]string{"password": "pw"}}); err != nil {
		t.Fatal(err)
	}
	svc, err := e.reg.Create(ctx, &api.Service{Metadata: api.ObjectMeta{Name: "my-db"}, Spec: api.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []api.ServicePort{{Port: 5432}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := svc.(*api.Service)
	s.Status.ClusterIP = "127.30.0.9"
	if _, err := e.reg.UpdateStatus(ctx, s); err != nil {
		t.Fatal(err)
	}
	p := e.createPod("envy", c)
	p = e.waitPod("envy", "running", 10*time.Second, func(p *api.Pod) bool { return p.Status.Phase == api.PodRunning })
	var got string
	waitFor(t, 10*time.Second, "env written", func() bool {
		b, _ := os.ReadFile(out)
		got = string(b)
		return strings.Contains(got, "GREETING")
	})
	for _, want := range []string{
		"HOST=" + p.Status.PodIP, "POD_IP=" + p.Status.PodIP, "PORT=8080", "PORT_HTTP=8080", "PORT_ADMIN_PORT=9090",
		"POD_NAME=envy", "SLIPWAY_PROJECT=default", "GREETING=hi", "DB_PASSWORD=pw",
		"MY_DB_SERVICE_HOST=127.30.0.9", "MY_DB_SERVICE_PORT=5432",
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, got)
		}
	}
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting until %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := DefaultBackoff
	crashes := 0
	var got []time.Duration
	for range 7 {
		var d time.Duration
		d, crashes = b.Delay(crashes, time.Second)
		got = append(got, d)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second, 300 * time.Second, 300 * time.Second}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if d, n := b.Delay(crashes, 10*time.Minute); d != 10*time.Second || n != 1 {
		t.Errorf("after 10 minutes of running: delay %v count %d, want 10s and 1", d, n)
	}
}

func TestMemoryLimitShowsOOMKilled(t *testing.T) {
	e := newEnv(t, Backoff{Base: time.Hour, Max: time.Hour, Reset: time.Hour}, nil)
	if capab := e.driver.Capabilities().MemoryLimit; !capab.Supported {
		if os.Getenv("SLIPWAY_REQUIRE_CGROUPS") == "1" {
			t.Fatalf("memory limits cannot be enforced here (%s) but SLIPWAY_REQUIRE_CGROUPS=1", capab.Reason)
		}
		t.Skipf("memory limits cannot be enforced on this machine: %s", capab.Reason)
	}
	app := drivertest.BuildTestApp(t)
	c := api.Container{Name: "hog", Command: []string{app, "-alloc", fmt.Sprint(256 << 20)},
		Resources: api.ResourceRequirements{Limits: api.ResourceList{api.ResourceMemory: "32Mi"}}}
	e.createPod("hog", c)
	p := e.waitPod("hog", "its container killed", 30*time.Second, func(p *api.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].LastState.Terminated != nil
	})
	term := p.Status.ContainerStatuses[0].LastState.Terminated
	if term.Reason != "OOMKilled" || term.ExitCode != 137 {
		t.Fatalf("terminated %+v, want reason OOMKilled with exit code 137", term)
	}
	var event bool
	for _, ev := range e.events("hog") {
		if ev.Reason == "OOMKilled" && ev.Type == api.EventWarning {
			event = true
		}
	}
	if !event {
		t.Error("no OOMKilled warning event on the pod")
	}
}

package autoscale

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// fakeRouter stands in for the router's counters (the autoscaler may not
// import the router; server's adapter is tested end to end).
type fakeRouter struct {
	mu sync.Mutex
	s  map[string]RouterSample
}

func (f *fakeRouter) App(project, name string) (RouterSample, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.s[project+"/"+name]
	return s, ok
}

func (f *fakeRouter) set(inFlight, requests int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.s["default/hello"] = RouterSample{InFlight: inFlight, Requests: requests}
}

// rig is a real registry on a bolt store, a fake clock and the fake router.
type rig struct {
	t   *testing.T
	reg *registry.Registry
	clk *clock.Fake
	rt  *fakeRouter
	ctx context.Context
	c   *Controller
	n   int // pods made
}

func newRig(t *testing.T) *rig {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	ctx := context.Background()
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, reg: reg, clk: clock.NewFake(t0), rt: &fakeRouter{s: map[string]RouterSample{}}, ctx: ctx}
	log := slog.New(slog.DiscardHandler)
	r.c = &Controller{Reg: reg, Log: log, Clock: r.clk, Metrics: r.rt,
		Events: &events.Recorder{Reg: reg, Source: "autoscaler", Clock: r.clk, Log: log}}
	return r
}

func (r *rig) createApp(replicas int32, as *api.Autoscaling) {
	r.t.Helper()
	app := &api.App{Metadata: api.ObjectMeta{Name: "hello"}, Spec: api.AppSpec{Replicas: &replicas, Autoscaling: as,
		Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: []string{"sleep", "1000"}}}}}}
	if _, err := r.reg.Create(r.ctx, app); err != nil {
		r.t.Fatal(err)
	}
}

// pods makes ready pods (and not-ready ones) of the app.
func (r *rig) pods(ready, notReady int) {
	r.t.Helper()
	for i := range ready + notReady {
		st := api.ConditionTrue
		if i >= ready {
			st = api.ConditionFalse
		}
		r.n++
		p := &api.Pod{Metadata: api.ObjectMeta{Name: fmt.Sprintf("hello-1-%05d", r.n), Labels: map[string]string{api.LabelApp: "hello"}},
			Spec:   api.PodSpec{App: "hello", Revision: 1, Containers: []api.Container{{Name: "web", Command: []string{"sleep", "1000"}}}},
			Status: api.PodStatus{Phase: api.PodRunning, Conditions: []api.Condition{{Type: api.PodReady, Status: st}}}}
		if _, err := r.reg.CreateWithStatus(r.ctx, p); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rig) app() *api.App {
	r.t.Helper()
	obj, err := r.reg.Get(r.ctx, appKind, api.DefaultProject, "hello")
	if err != nil {
		r.t.Fatal(err)
	}
	return obj.(*api.App)
}

func (r *rig) reconcile() controller.Result {
	r.t.Helper()
	res, err := r.c.Reconcile(r.ctx, controller.Key{Project: api.DefaultProject, Name: "hello"})
	if err != nil {
		r.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (r *rig) events() []string {
	r.t.Helper()
	kind, _ := api.LookupKind("Event")
	objs, _, err := r.reg.List(r.ctx, kind, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		e := o.(*api.Event)
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func replicasOf(a *api.App) int32 { return *a.Spec.Replicas }

// An evaluation writes spec.replicas and status.autoscaling and records
// an Event; the next is not before intervalSeconds; a scale-down waits out
// the stabilization window.
func TestControllerScalesUpAndDownOnItsInterval(t *testing.T) {
	r := newRig(t)
	r.createApp(2, concurrency(1, 10, "4"))
	r.pods(2, 0)
	r.rt.set(16, 100) // 8 in flight per ready pod, target 4: 4 pods

	if res := r.reconcile(); res.RequeueAfter != 15*time.Second {
		t.Errorf("requeue after %v, want the interval 15s", res.RequeueAfter)
	}
	a := r.app()
	if got := replicasOf(a); got != 4 {
		t.Fatalf("replicas %d after 16 in flight over 2 pods at target 4, want 4", got)
	}
	st := a.Status.Autoscaling
	if st == nil || st.CurrentReplicas != 2 || st.DesiredReplicas != 4 || !st.LastScaleTime.Equal(t0) ||
		len(st.CurrentMetrics) != 1 || st.CurrentMetrics[0].Value != "8.00" {
		t.Fatalf("status.autoscaling = %+v", st)
	}
	if ev := r.events(); len(ev) != 1 || ev[0] != "SuccessfulRescale: New size: 4; reason: concurrency above target" {
		t.Errorf("events %q", ev)
	}

	// Before the interval: nothing is evaluated, the key comes back when due.
	r.rt.set(64, 200)
	r.clk.Advance(5 * time.Second)
	if res := r.reconcile(); res.RequeueAfter != 10*time.Second {
		t.Errorf("requeue after %v 5s into the interval, want 10s", res.RequeueAfter)
	}
	if got := replicasOf(r.app()); got != 4 {
		t.Fatalf("replicas %d changed before the interval", got)
	}

	// The load goes: the scale-down waits out the 300 s window.
	r.pods(2, 0) // the two new pods, ready
	r.rt.set(0, 300)
	for elapsed := 15 * time.Second; elapsed < 300*time.Second; elapsed += 15 * time.Second {
		r.clk.Advance(15 * time.Second)
		r.reconcile()
		if got := replicasOf(r.app()); got != 4 {
			t.Fatalf("replicas %d at %v, before the scale-down window ended", got, elapsed)
		}
	}
	r.clk.Advance(15 * time.Second)
	r.reconcile()
	if got := replicasOf(r.app()); got != 1 {
		t.Fatalf("replicas %d after the window with no load, want minReplicas 1", got)
	}
}

// The pods beyond spec.replicas (a rollout's surge) are not averaged over.
func TestControllerLeavesSurgePodsOut(t *testing.T) {
	r := newRig(t)
	r.createApp(4, concurrency(1, 10, "4"))
	r.pods(5, 0) // 4 replicas and one surge pod
	r.rt.set(20, 100)
	r.reconcile()
	st := r.app().Status.Autoscaling
	// 20 over 4 load-carrying pods is 5 per pod (25 % above target): 5 pods.
	// Over 5 pods it would be 4 per pod, within tolerance: no change.
	if st.CurrentMetrics[0].Value != "5.00" || replicasOf(r.app()) != 5 {
		t.Fatalf("metrics %+v, replicas %d: want 5.00 per pod over 4 and 5 replicas", st.CurrentMetrics, replicasOf(r.app()))
	}
}

// A runtime without usage: cpu is a missing metric and status says why;
// the router's metric still scales up.
func TestControllerReportsMissingResourceMetrics(t *testing.T) {
	r := newRig(t)
	as := concurrency(1, 10, "4")
	as.Metrics = append(as.Metrics, api.AutoscalingMetric{Type: api.AutoscaleCPU, TargetUtilization: i32(70)})
	r.createApp(2, as)
	r.pods(2, 0)
	r.rt.set(16, 0)
	r.reconcile()
	a := r.app()
	c := api.FindCondition(a.Status.Autoscaling.Conditions, api.ConditionScalingActive)
	if c == nil || c.Status != api.ConditionFalse || c.Reason != ReasonFailedGetResource || !strings.Contains(c.Message, "runtime reports no usage") {
		t.Fatalf("ScalingActive %+v", c)
	}
	if replicasOf(a) != 4 {
		t.Fatalf("replicas %d: the router's metric should still scale up", replicasOf(a))
	}
}

// Turning autoscaling off removes its account and keeps spec.replicas.
func TestControllerForgetsWhenTurnedOff(t *testing.T) {
	r := newRig(t)
	r.createApp(2, concurrency(1, 10, "4"))
	r.pods(2, 0)
	r.rt.set(16, 0)
	r.reconcile()
	a := r.app()
	a.Spec.Autoscaling = nil
	if _, err := r.reg.Update(r.ctx, a); err != nil {
		t.Fatal(err)
	}
	r.reconcile()
	if a := r.app(); a.Status.Autoscaling != nil || replicasOf(a) != 4 {
		t.Fatalf("status.autoscaling %+v, replicas %d: want none and 4", a.Status.Autoscaling, replicasOf(a))
	}
}

// The loop: the controller's queue runs on the fake clock, so an
// evaluation happens when the clock passes the interval, and not before.
func TestControllerLoopEvaluatesOnTheClock(t *testing.T) {
	r := newRig(t)
	r.createApp(2, concurrency(1, 10, "4"))
	r.pods(2, 0)
	r.rt.set(8, 0) // at target
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.c.Run(ctx, controller.NewQueue[controller.Key](r.clk, controller.DefaultBackoff))
	}()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first evaluation", func() bool { return r.app().Status.Autoscaling != nil })
	first := r.app().Status.Autoscaling.LastEvaluation
	r.rt.set(40, 0) // 20 per pod: 10 pods, limited to 2+4 = 6 by the rate policy
	waitFor(t, "the next evaluation's timer", func() bool { return r.clk.Pending() > 0 })
	r.clk.Advance(14 * time.Second)
	if got := replicasOf(r.app()); got != 2 {
		t.Fatalf("replicas %d before the interval passed", got)
	}
	r.clk.Advance(time.Second)
	waitFor(t, "the second evaluation", func() bool { return r.app().Status.Autoscaling.LastEvaluation.After(first) })
	a := r.app()
	if last := a.Status.Autoscaling.LastEvaluation; !last.Equal(first.Add(15*time.Second)) || replicasOf(a) != 6 {
		t.Errorf("second evaluation at %v with replicas %d, want %v and 6", last, replicasOf(a), first.Add(15*time.Second))
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

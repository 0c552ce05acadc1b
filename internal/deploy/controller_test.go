package deploy

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// bench is a real registry on a bolt store, a fake clock and controllers
// made on demand (a new one is a restarted Slipway: it knows only the store).
type bench struct {
	t       *testing.T
	reg     *registry.Registry
	clk     *clock.Fake
	metrics fakeMetrics
	ctx     context.Context
}

// fakeMetrics stands in for the router's counters (deploy may not import
// the router; the server's adapter is tested end to end).
type fakeMetrics map[int64]Sample

func (m fakeMetrics) Revision(project, app string, rev int64) (Sample, bool) {
	s, ok := m[rev]
	return s, ok
}

func (m fakeMetrics) Routes(project, app string) (Sample, bool) { return Sample{}, false }

func newBench(t *testing.T) *bench {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &bench{t: t, reg: reg, clk: clock.NewFake(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)), metrics: fakeMetrics{}, ctx: context.Background()}
}

func (b *bench) controller() *Controller {
	return &Controller{Reg: b.reg, Log: slog.New(slog.DiscardHandler), Now: b.clk.Now, Metrics: b.metrics,
		Events: &events.Recorder{Reg: b.reg, Source: "deploy", Clock: b.clk, Log: slog.New(slog.DiscardHandler)}}
}

func (b *bench) reconcile(c *Controller) controller.Result {
	b.t.Helper()
	res, err := c.Reconcile(b.ctx, controller.Key{Project: api.DefaultProject, Name: "hello"})
	if err != nil {
		b.t.Fatalf("reconcile: %v", err)
	}
	return res
}

func (b *bench) app() *api.App {
	b.t.Helper()
	obj, err := b.reg.Get(b.ctx, appKind, api.DefaultProject, "hello")
	if err != nil {
		b.t.Fatal(err)
	}
	return obj.(*api.App)
}

func (b *bench) revisions() map[int64]*api.Revision {
	b.t.Helper()
	objs, _, err := b.reg.List(b.ctx, revisionKind, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	out := map[int64]*api.Revision{}
	for _, o := range objs {
		r := o.(*api.Revision)
		out[r.Spec.Number] = r
	}
	return out
}

func (b *bench) specs() map[int64]int32 {
	out := map[int64]int32{}
	for n, r := range b.revisions() {
		out[n] = r.Spec.Replicas
	}
	return out
}

// replicate plays the replication controller: every revision reports its
// spec, all pods ready.
func (b *bench) replicate() {
	b.t.Helper()
	for _, r := range b.revisions() {
		r.Status = api.RevisionStatus{ObservedGeneration: r.Metadata.Generation, Replicas: r.Spec.Replicas, ReadyReplicas: r.Spec.Replicas, AvailableReplicas: r.Spec.Replicas}
		if _, err := b.reg.UpdateStatus(b.ctx, r); err != nil {
			b.t.Fatal(err)
		}
	}
}

func (b *bench) update(f func(a *api.App)) {
	b.t.Helper()
	a := b.app()
	f(a)
	if _, err := b.reg.Update(b.ctx, a); err != nil {
		b.t.Fatal(err)
	}
}

func (b *bench) request(verb string) {
	b.update(func(a *api.App) {
		a.Metadata.Annotations = map[string]string{api.RolloutRequestAnnotation: fmt.Sprintf("%s %d", verb, b.clk.Now().UnixNano())}
	})
}

func (b *bench) events() []string {
	eventKind, _ := api.LookupKind("Event")
	objs, _, err := b.reg.List(b.ctx, eventKind, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		b.t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		e := o.(*api.Event)
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

func (b *bench) createApp(strategy api.Strategy) {
	b.t.Helper()
	a := app(2, "v1")
	a.Metadata = api.ObjectMeta{Name: "hello", Project: api.DefaultProject}
	a.Spec.Strategy = strategy
	if _, err := b.reg.Create(b.ctx, a); err != nil {
		b.t.Fatal(err)
	}
}

func setVersion(v string) func(*api.App) {
	return func(a *api.App) { a.Spec.Template.Containers[0].Env = []api.EnvVar{{Name: "VERSION", Value: v}} }
}

func trafficOf(a *api.App) string {
	var parts []string
	for _, t := range a.Status.Traffic {
		parts = append(parts, fmt.Sprintf("%d=%d", t.Revision, t.Weight))
	}
	return strings.Join(parts, ",")
}

// TestControllerBlueGreenSurvivesRestart: a BlueGreen rollout waiting for
// promotion is promoted by a new controller (a restarted Slipway) from
// what the store holds; the scale-down delay runs from the promotion time
// in status.
func TestControllerBlueGreenSurvivesRestart(t *testing.T) {
	b := newBench(t)
	b.createApp(api.Strategy{Type: api.StrategyBlueGreen, BlueGreen: &api.BlueGreenStrategy{}})
	c := b.controller()
	b.reconcile(c)
	b.replicate()
	b.reconcile(c)
	if a := b.app(); a.Status.Phase != api.AppHealthy || a.Status.StableRevision != 1 {
		t.Fatalf("v1: %+v", a.Status)
	}
	b.update(setVersion("v2"))
	b.reconcile(c)
	b.replicate()
	b.reconcile(c)
	if a := b.app(); a.Status.Phase != api.AppPaused || trafficOf(a) != "1=100" || a.Status.PreviewRevision != 2 {
		t.Fatalf("before promotion: phase %s traffic %s preview %d", a.Status.Phase, trafficOf(a), a.Status.PreviewRevision)
	}

	restarted := b.controller()
	b.clk.Advance(5 * time.Second)
	b.request(api.RequestPromote)
	res := b.reconcile(restarted)
	a := b.app()
	if trafficOf(a) != "2=100" || a.Status.StableRevision != 2 || a.Status.Phase != api.AppHealthy || res.RequeueAfter != 30*time.Second {
		t.Fatalf("after promotion: traffic %s stable %d phase %s requeue %v", trafficOf(a), a.Status.StableRevision, a.Status.Phase, res.RequeueAfter)
	}
	if got := b.specs(); got[1] != 2 || got[2] != 2 {
		t.Fatalf("the old revision must stay warm: %v", got)
	}
	again := b.controller()
	b.clk.Advance(30 * time.Second)
	b.reconcile(again)
	if got := b.specs(); got[1] != 0 || got[2] != 2 {
		t.Fatalf("after scaleDownDelaySeconds: %v", got)
	}
	ev := strings.Join(b.events(), "\n")
	for _, want := range []string{"PreviewReady: revision 2 is ready on the preview", "Promoted: all traffic to revision 2", "RolloutCompleted: revision 2 serves all traffic"} {
		if !strings.Contains(ev, want) {
			t.Errorf("events lack %q:\n%s", want, ev)
		}
	}
}

// TestControllerCanaryAnalysisAndWebhook: the canary passes a webhook
// gate (a real HTTP server on 127.0.0.1), then its background analysis
// fails on the counters and the rollout aborts with the reason in a
// condition and an event.
func TestControllerCanaryAnalysisAndWebhook(t *testing.T) {
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
	defer hook.Close()
	b := newBench(t)
	gate := &api.Analysis{Interval: "10s", Metrics: []api.AnalysisMetric{{Name: "smoke", Type: api.MetricWebhook, Webhook: &api.WebhookMetric{URL: hook.URL, TimeoutSeconds: 5}}}}
	bg := &api.Analysis{Interval: "10s", MinRequests: 10, Metrics: []api.AnalysisMetric{{Name: "errors", Type: api.MetricErrorRate, Max: ptr(0.05)}}}
	b.createApp(api.Strategy{Type: api.StrategyCanary, Canary: &api.CanaryStrategy{Analysis: bg,
		Steps: []api.CanaryStep{{SetWeight: ptr(int32(50))}, {Analysis: gate}, {Pause: &api.PauseStep{}}}}})
	c := b.controller()
	b.reconcile(c)
	b.replicate()
	b.reconcile(c)
	b.update(setVersion("v2"))
	b.metrics[2] = Sample{}
	b.reconcile(c)
	b.replicate()
	b.reconcile(c)
	if a := b.app(); trafficOf(a) != "1=50,2=50" || *a.Status.CurrentStep != 1 {
		t.Fatalf("50%%: traffic %s step %v", trafficOf(a), a.Status.CurrentStep)
	}
	b.clk.Advance(10 * time.Second)
	b.metrics[2] = Sample{Requests: [6]int64{2: 50}}
	b.reconcile(c)
	if a := b.app(); calls.Load() != 1 || a.Status.Phase != api.AppPaused || *a.Status.CurrentStep != 2 {
		t.Fatalf("after the webhook gate: calls %d phase %s step %v %+v", calls.Load(), a.Status.Phase, a.Status.CurrentStep, a.Status.Rollout.Analysis)
	}
	b.clk.Advance(10 * time.Second)
	b.metrics[2] = Sample{Requests: [6]int64{2: 90, 5: 10}} // since the last measurement: 50 answered, 10 of them 5xx
	b.reconcile(b.controller())
	a := b.app()
	if a.Status.Phase != api.AppDegraded || trafficOf(a) != "1=100" || b.specs()[2] != 0 {
		t.Fatalf("after the failing measurement: phase %s traffic %s specs %v", a.Status.Phase, trafficOf(a), b.specs())
	}
	c2 := api.FindCondition(a.Status.Conditions, "Progressing")
	want := "analysis background of revision 2 failed: metric errors: errorRate 0.2000 > max 0.05 over 50 requests"
	if c2 == nil || c2.Reason != "AnalysisFailed" || c2.Message != want {
		t.Errorf("condition %+v, want AnalysisFailed %q", c2, want)
	}
	if ev := strings.Join(b.events(), "\n"); !strings.Contains(ev, "AnalysisFailed: rollout of revision 2 aborted: "+want) {
		t.Errorf("events lack the abort:\n%s", ev)
	}
}

// TestControllerSecretChangeRollsOut: changing the value of a key the
// template references makes a new revision; the value appears nowhere in
// the App or its revisions.
func TestControllerSecretChangeRollsOut(t *testing.T) {
	b := newBench(t)
	sec := &api.Secret{Metadata: api.ObjectMeta{Name: "db", Project: api.DefaultProject}, Data: map[string]string{"password": "hunter2"}}
	if _, err := b.reg.Create(b.ctx, sec); err != nil {
		t.Fatal(err)
	}
	a := app(1, "v1")
	a.Metadata = api.ObjectMeta{Name: "hello", Project: api.DefaultProject}
	a.Spec.Template.Containers[0].Env = append(a.Spec.Template.Containers[0].Env,
		api.EnvVar{Name: "PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password"}}})
	if _, err := b.reg.Create(b.ctx, a); err != nil {
		t.Fatal(err)
	}
	c := b.controller()
	b.reconcile(c)
	b.replicate()
	b.reconcile(c)
	obj, _ := b.reg.Get(b.ctx, secretKind, api.DefaultProject, "db")
	s := obj.(*api.Secret)
	s.Data["password"] = "correct horse"
	if _, err := b.reg.Update(b.ctx, s); err != nil {
		t.Fatal(err)
	}
	b.reconcile(c)
	revs := b.revisions()
	if len(revs) != 2 || revs[2].Spec.TemplateHash == revs[1].Spec.TemplateHash {
		t.Fatalf("revisions after the secret change: %d", len(revs))
	}
	b.reconcile(c)
	if len(b.revisions()) != 2 {
		t.Errorf("an unchanged secret made another revision")
	}
	for _, r := range revs {
		if strings.Contains(fmt.Sprint(r.Spec), "correct horse") || strings.Contains(fmt.Sprint(r.Spec), "hunter2") {
			t.Errorf("revision %d holds the secret value", r.Spec.Number)
		}
	}
}

// fakeHooks stands in for internal/hooks (tested there with real pods):
// it records each Run and answers with the run set by the test.
type fakeHooks struct {
	calls []string
	run   HookRun
}

func (f *fakeHooks) Forget(ctx context.Context, project, name string, app *api.App) error {
	f.calls = append(f.calls, "forget")
	return nil
}

func (f *fakeHooks) Run(ctx context.Context, app *api.App, rev *api.Revision, kind string, attempt int32) (HookRun, error) {
	f.calls = append(f.calls, fmt.Sprintf("%s r%d #%d", kind, rev.Spec.Number, attempt))
	return f.run, nil
}

// TestControllerRunsThePreHookOncePerAttempt: the pre hook is started
// right after the status recording it is written, a restarted controller
// only looks at the same attempt, and the new revision gets pods once it
// succeeded.
func TestControllerRunsThePreHookOncePerAttempt(t *testing.T) {
	b := newBench(t)
	b.createApp(api.Strategy{Type: api.StrategyBlueGreen, BlueGreen: &api.BlueGreenStrategy{},
		Hooks: &api.Hooks{Pre: &api.Hook{Command: []string{"./migrate"}, FailurePolicy: api.HookAbort}}})
	hooks := &fakeHooks{run: HookRun{Phase: api.PodSucceeded, Action: HookProceed, Pod: "p"}}
	c := b.controller()
	c.Hooks = hooks
	for range 3 {
		b.reconcile(c)
		b.replicate()
	}
	if a := b.app(); a.Status.Phase != api.AppHealthy {
		t.Fatalf("v1: %+v", a.Status)
	}
	hooks.calls, hooks.run = nil, HookRun{Phase: api.PodRunning, Action: HookWait, Pod: "p"}
	b.update(setVersion("v2"))
	b.reconcile(c)
	if got := b.specs(); got[2] != 0 {
		t.Fatalf("revision 2 got pods before its pre hook: %v", got)
	}
	restarted := b.controller()
	restarted.Hooks = hooks
	b.reconcile(restarted)
	hooks.run = HookRun{Phase: api.PodSucceeded, Action: HookProceed, Pod: "p"}
	b.reconcile(restarted)
	if got := b.specs(); got[2] != 2 {
		t.Fatalf("revision 2 after its pre hook: %v", got)
	}
	want := []string{"pre r2 #1", "pre r2 #1", "pre r2 #1"}
	if strings.Join(hooks.calls, ",") != strings.Join(want, ",") {
		t.Errorf("runs %q, want %q (started once, then looked at)", hooks.calls, want)
	}
}

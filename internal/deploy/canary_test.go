package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func canary(a *api.App, c api.CanaryStrategy) *api.App {
	a.Spec.Strategy = api.Strategy{Type: api.StrategyCanary, Canary: &c}
	return a
}

func setWeight(w int32) api.CanaryStep { return api.CanaryStep{SetWeight: ptr(w)} }
func pause(d api.Duration) api.CanaryStep {
	return api.CanaryStep{Pause: &api.PauseStep{Duration: d}}
}

// step runs a decision, lets the pods come up and ready, and decides again.
func (s *sim) step() {
	s.decide()
	s.replicate()
	s.readyAll()
	s.decide()
}

func TestCanarySteps(t *testing.T) {
	s := newSim(t, canary(app(10, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{
		setWeight(10), pause("30s"), setWeight(50), pause(""), setWeight(80)}}))
	s.settle()
	s.change("v2")
	s.decide()
	// The canary's pods for 10% (1 of 10) start; no weight before they are ready.
	s.expect("created", map[int64]int32{1: 10, 2: 1}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	s.replicate()
	s.readyAll()
	p := s.decide()
	s.expect("10%", map[int64]int32{1: 10, 2: 1}, map[int64]int32{1: 90, 2: 10}, api.AppProgressing, api.RolloutProgressing)
	if got := *s.app.Status.CurrentStep; got != 1 || p.RequeueAfter != 30*time.Second {
		t.Errorf("step %d requeue %v, want step 1 (the pause) and 30s", got, p.RequeueAfter)
	}
	s.advance(29 * time.Second)
	s.decide()
	s.expect("in the pause", map[int64]int32{1: 10, 2: 1}, map[int64]int32{1: 90, 2: 10}, api.AppProgressing, api.RolloutProgressing)
	s.advance(time.Second)
	s.decide()
	// Pause over: 5 canary pods for 50%, weight unchanged until they are ready.
	s.expect("scaling for 50%", map[int64]int32{1: 10, 2: 5}, map[int64]int32{1: 90, 2: 10}, api.AppProgressing, api.RolloutProgressing)
	s.replicate()
	s.readyAll()
	s.decide()
	s.expect("50%, paused", map[int64]int32{1: 10, 2: 5}, map[int64]int32{1: 50, 2: 50}, api.AppPaused, api.RolloutPaused)
	if r := s.app.Status.Rollout; r.Reason != "CanaryPauseStep" {
		t.Errorf("pause reason %q", r.Reason)
	}
	s.request(api.RequestPromote)
	s.step()
	s.expect("80%, then the last step: full size", map[int64]int32{1: 10, 2: 10}, map[int64]int32{1: 20, 2: 80}, api.AppProgressing, api.RolloutProgressing)
	s.step()
	s.step()
	s.expect("done", map[int64]int32{1: 0, 2: 10}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	if s.app.Status.StableRevision != 2 {
		t.Errorf("stable %d, want 2", s.app.Status.StableRevision)
	}
}

func TestCanaryPromoteFullSkipsSteps(t *testing.T) {
	s := newSim(t, canary(app(4, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(25), pause("")}}))
	s.settle()
	s.change("v2")
	s.step()
	s.expect("paused at 25%", map[int64]int32{1: 4, 2: 1}, map[int64]int32{1: 75, 2: 25}, api.AppPaused, api.RolloutPaused)
	s.request(api.RequestPromoteFull)
	s.decide()
	s.expect("full size first", map[int64]int32{1: 4, 2: 4}, map[int64]int32{1: 75, 2: 25}, api.AppProgressing, api.RolloutProgressing)
	s.replicate()
	s.readyAll()
	s.decide()
	s.expect("promoted", map[int64]int32{1: 0, 2: 4}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
}

func TestCanaryDynamicStableScale(t *testing.T) {
	s := newSim(t, canary(app(4, "v1"), api.CanaryStrategy{DynamicStableScale: true, Steps: []api.CanaryStep{setWeight(50), pause("")}}))
	s.settle()
	s.change("v2")
	s.step()
	s.expect("50%", map[int64]int32{1: 2, 2: 2}, map[int64]int32{1: 50, 2: 50}, api.AppPaused, api.RolloutPaused)
}

func TestCanaryMatchTargetsTheCanary(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{Match: []api.RouteMatch{{Header: &api.KeyMatch{Name: "X-Beta", Value: "1"}}},
		Steps: []api.CanaryStep{setWeight(0), pause("")}}))
	s.settle()
	s.change("v2")
	s.step()
	s.expect("0%", map[int64]int32{1: 2, 2: 1}, map[int64]int32{1: 100}, api.AppPaused, api.RolloutPaused)
	if s.app.Status.PreviewRevision != 2 {
		t.Errorf("preview (match) revision %d, want 2", s.app.Status.PreviewRevision)
	}
}

func analysis(policy string, minRequests int64, metrics ...api.AnalysisMetric) *api.Analysis {
	return &api.Analysis{Interval: "10s", MinRequests: minRequests, InconclusivePolicy: policy, Metrics: metrics}
}

// TestCanaryBackgroundAnalysisAborts: the canary fails 30% of its
// requests; the first measurement aborts: all traffic to stable at once,
// the canary scaled to 0, Degraded with metric, value and threshold.
func TestCanaryBackgroundAnalysisAborts(t *testing.T) {
	s := newSim(t, canary(app(4, "v1"), api.CanaryStrategy{
		Analysis: analysis(api.InconclusiveWait, 20, api.AnalysisMetric{Name: "success", Type: api.MetricSuccessRate, Min: ptr(0.95)}),
		Steps:    []api.CanaryStep{setWeight(25), pause("")}}))
	s.settle()
	s.change("v2")
	s.serve(2, 0, 0, 0) // the router knows the revision, no request yet
	s.step()
	s.expect("25%", map[int64]int32{1: 4, 2: 1}, map[int64]int32{1: 75, 2: 25}, api.AppPaused, api.RolloutPaused)
	s.serve(2, 10, 3, 5*time.Millisecond)
	s.advance(10 * time.Second)
	s.decide()
	s.expect("too few requests", map[int64]int32{1: 4, 2: 1}, map[int64]int32{1: 75, 2: 25}, api.AppPaused, api.RolloutPaused)
	run := s.app.Status.Rollout.Analysis[0]
	if run.Phase != api.AnalysisRunning || run.Inconclusives != 1 || run.Results[0].Verdict != api.AnalysisInconclusive {
		t.Errorf("run %+v, want one inconclusive measurement", run)
	}
	s.serve(2, 100, 30, 5*time.Millisecond)
	s.advance(10 * time.Second)
	s.decide()
	s.expect("aborted", map[int64]int32{1: 4, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	c := api.FindCondition(s.app.Status.Conditions, "Progressing")
	if want := "metric success: successRate 0.7000 < min 0.95 over 100 requests"; c == nil || c.Reason != "AnalysisFailed" || !strings.Contains(c.Message, want) {
		t.Errorf("condition %+v, want AnalysisFailed with %q", c, want)
	}
	if !s.hasEvent("AnalysisFailed") {
		t.Errorf("no AnalysisFailed event")
	}
	// Retry moves forward again, with a fresh analysis.
	s.request(api.RequestRetry)
	s.step()
	s.expect("retried", map[int64]int32{1: 4, 2: 1}, map[int64]int32{1: 75, 2: 25}, api.AppPaused, api.RolloutPaused)
	if n := len(s.app.Status.Rollout.Analysis); n != 1 || s.app.Status.Rollout.Analysis[0].Measurements != 0 {
		t.Errorf("analysis after retry: %+v", s.app.Status.Rollout.Analysis)
	}
}

func TestAnalysisVerdicts(t *testing.T) {
	type tc struct {
		name    string
		a       *api.Analysis
		n, fail int64
		lat     time.Duration
		hooks   map[string]bool
		phase   string
	}
	m := func(typ string, min, max *float64) api.AnalysisMetric {
		return api.AnalysisMetric{Name: "m", Type: typ, Min: min, Max: max}
	}
	hook := api.AnalysisMetric{Name: "m", Type: api.MetricWebhook, Webhook: &api.WebhookMetric{URL: "http://127.0.0.1:1/", TimeoutSeconds: 1}}
	for _, c := range []tc{
		{"success passes", analysis("", 0, m(api.MetricSuccessRate, ptr(0.9), nil)), 100, 10, time.Millisecond, nil, api.AnalysisSuccessful},
		{"success fails", analysis("", 0, m(api.MetricSuccessRate, ptr(0.9), nil)), 100, 11, time.Millisecond, nil, api.AnalysisFailed},
		{"error rate passes", analysis("", 0, m(api.MetricErrorRate, nil, ptr(0.05))), 100, 5, time.Millisecond, nil, api.AnalysisSuccessful},
		{"error rate fails", analysis("", 0, m(api.MetricErrorRate, nil, ptr(0.05))), 100, 6, time.Millisecond, nil, api.AnalysisFailed},
		{"p99 passes", analysis("", 0, m(api.MetricLatencyP99, nil, ptr(100.0))), 100, 0, 50 * time.Millisecond, nil, api.AnalysisSuccessful},
		{"p99 fails", analysis("", 0, m(api.MetricLatencyP99, nil, ptr(100.0))), 100, 0, 500 * time.Millisecond, nil, api.AnalysisFailed},
		{"no traffic waits", analysis(api.InconclusiveWait, 0, m(api.MetricSuccessRate, ptr(0.9), nil)), 0, 0, 0, nil, api.AnalysisRunning},
		{"no traffic fails by policy", analysis(api.InconclusiveFail, 0, m(api.MetricSuccessRate, ptr(0.9), nil)), 0, 0, 0, nil, api.AnalysisFailed},
		{"webhook 2xx passes", analysis("", 0, hook), 0, 0, 0, map[string]bool{"step-1/m": true}, api.AnalysisSuccessful},
		{"webhook failure fails", analysis("", 0, hook), 0, 0, 0, map[string]bool{"step-1/m": false}, api.AnalysisFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50), {Analysis: c.a}}}))
			s.settle()
			s.change("v2")
			s.serve(2, 0, 0, 0)
			s.step() // 50%, then the analysis step starts
			s.serve(2, c.n, c.fail, c.lat)
			s.hooks = c.hooks
			s.advance(10 * time.Second)
			s.decide()
			run := s.app.Status.Rollout.Analysis
			if len(run) != 1 {
				t.Fatalf("runs %+v", run)
			}
			if run[0].Phase != c.phase {
				t.Errorf("phase %s, want %s (%s)", run[0].Phase, c.phase, run[0].Message)
			}
		})
	}
}

func TestCanaryCrashLoopAborts(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50), pause("")}}))
	s.settle()
	s.change("v2")
	s.decide()
	s.replicate()
	s.pods[2][0].restarts = 3
	s.decide()
	s.expect("crash loop", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	if r := s.app.Status.Rollout; r.Reason != "CrashLoop" || !strings.Contains(r.Message, "restarted 3 times") {
		t.Errorf("rollout %+v", r)
	}
}

func TestProgressDeadlineAborts(t *testing.T) {
	a := canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50)}})
	a.Spec.ProgressDeadlineSeconds = ptr(int32(60))
	s := newSim(t, a)
	s.settle()
	s.change("v2")
	s.decide()
	s.replicate() // pods never become ready
	s.advance(59 * time.Second)
	if p := s.decide(); p.RequeueAfter != time.Second {
		t.Errorf("requeue %v, want 1s (the deadline)", p.RequeueAfter)
	}
	s.advance(time.Second)
	s.decide()
	s.expect("deadline", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	if r := s.app.Status.Rollout; r.Reason != "ProgressDeadlineExceeded" {
		t.Errorf("reason %q", r.Reason)
	}
}

// TestChangeDuringCanarySupersedesIt: the half-finished canary is scaled
// down, stable keeps all traffic, and the new revision starts over.
func TestChangeDuringCanarySupersedesIt(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50), pause("")}}))
	s.settle()
	s.change("v2")
	s.step()
	s.expect("v2 at 50%", map[int64]int32{1: 2, 2: 1}, map[int64]int32{1: 50, 2: 50}, api.AppPaused, api.RolloutPaused)
	s.change("v3")
	s.decide()
	s.expect("v3 created", map[int64]int32{1: 2, 2: 0, 3: 1}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if r := s.app.Status.Rollout; r.Revision != 3 || r.From != 1 || s.app.Status.CurrentStep != nil {
		t.Errorf("rollout %+v step %v, want revision 3 from 1 at step 0", r, s.app.Status.CurrentStep)
	}
	if !s.hasEvent("RolloutSuperseded") {
		t.Errorf("no RolloutSuperseded event")
	}
}

func TestAbortRequestThenNewChange(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50), pause("")}}))
	s.settle()
	s.change("v2")
	s.step()
	s.request(api.RequestAbort)
	s.decide()
	s.expect("aborted", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	s.change("v3")
	s.step()
	s.expect("v3", map[int64]int32{1: 2, 2: 0, 3: 1}, map[int64]int32{1: 50, 3: 50}, api.AppPaused, api.RolloutPaused)
}

func TestSecretChangeMakesRevision(t *testing.T) {
	a := app(1, "v1")
	a.Spec.Template.Containers[0].Env = append(a.Spec.Template.Containers[0].Env,
		api.EnvVar{Name: "PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password"}}})
	refs := SecretRefs(a.Spec.Template)
	if diff := cmp.Diff(map[string][]string{"db": {"password"}}, refs); diff != "" {
		t.Fatalf("refs: %s", diff)
	}
	s := newSim(t, a)
	s.secret = SecretHash(refs, map[string]map[string]string{"db": {"password": "one", "unused": "x"}})
	s.settle()
	s.secret = SecretHash(refs, map[string]map[string]string{"db": {"password": "one", "unused": "y"}})
	if p := s.decide(); p.Create != nil {
		t.Fatalf("an unreferenced key's change made a revision")
	}
	s.secret = SecretHash(refs, map[string]map[string]string{"db": {"password": "two"}})
	if p := s.decide(); p.Create == nil || p.Create.Spec.Number != 2 {
		t.Fatalf("a referenced value's change made no revision: %+v", p.Create)
	}
	if strings.Contains(s.secret, "two") {
		t.Errorf("the hash shows the value")
	}
}

func TestImageChangeOnlyTriggerHoldsConfigChanges(t *testing.T) {
	a := app(1, "v1")
	a.Spec.Template.Containers[0].Image = "hello:1"
	a.Spec.Triggers = []api.Trigger{{Type: api.TriggerImageChange}}
	s := newSim(t, a)
	s.settle()
	s.change("v2") // env only
	if p := s.decide(); p.Create != nil || s.app.Status.Phase != api.AppPaused {
		t.Fatalf("a config change rolled out without a ConfigChange trigger: create %v phase %s", p.Create, s.app.Status.Phase)
	}
	b := *s.app
	b.Spec.Template.Containers = []api.Container{b.Spec.Template.Containers[0]}
	b.Spec.Template.Containers[0].Image = "hello:2"
	s.app = &b
	if p := s.decide(); p.Create == nil {
		t.Fatalf("an image change did not roll out")
	}
}

// TestRecreateReportsItsGap: the report of a Recreate rollout states the
// time no pod was ready and the requests counted per revision since the
// rollout started.
func TestRecreateReportsItsGap(t *testing.T) {
	a := app(2, "v1")
	a.Spec.Strategy = api.Strategy{Type: api.StrategyRecreate}
	s := newSim(t, a)
	s.routes = &Sample{}
	s.serve(1, 500, 0, time.Millisecond)
	s.noPod(9) // before the rollout: not counted
	s.settle()
	s.change("v2")
	s.decide() // revision 1 to 0
	s.serve(1, 40, 2, time.Millisecond)
	s.replicate() // its pods are gone
	s.advance(time.Second)
	s.decide() // no ready pod: the gap opens; revision 2 scaled up
	s.noPod(7)
	s.replicate()
	s.advance(1500 * time.Millisecond)
	s.readyAll()
	s.serve(2, 60, 0, time.Millisecond)
	s.advance(500 * time.Millisecond)
	s.decide()
	s.expect("done", map[int64]int32{1: 0, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	want := &api.Report{DurationMillis: 3000, Measured: true, Failed: 9, NoReadyPod: 7, LongestNoReadyMillis: 1500,
		Revisions: []api.RevisionReport{{Revision: 1, Requests: 40, ServerErrors: 2}, {Revision: 2, Requests: 60}}}
	if diff := cmp.Diff(want, s.app.Status.Rollout.Report); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	// A request revision 1 was still answering when its pods went is
	// counted once the report is final, a moment later.
	s.serve(1, 1, 0, time.Millisecond)
	if p := s.decide(); p.RequeueAfter != time.Second || s.app.Status.Rollout.Report.Final {
		t.Fatalf("requeue %v final %v, want 1s and not yet final", p.RequeueAfter, s.app.Status.Rollout.Report.Final)
	}
	s.advance(time.Second)
	s.decide()
	want.Final, want.Revisions[0].Requests = true, 41
	if diff := cmp.Diff(want, s.app.Status.Rollout.Report); diff != "" {
		t.Errorf("final report (-want +got):\n%s", diff)
	}
}

// TestBackgroundAnalysisEndsWithTheRollout: a background analysis that
// passed while the canary ran is Successful when the rollout completes.
func TestBackgroundAnalysisEndsWithTheRollout(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{
		Analysis: analysis(api.InconclusiveWait, 0, api.AnalysisMetric{Name: "success", Type: api.MetricSuccessRate, Min: ptr(0.95)}),
		Steps:    []api.CanaryStep{setWeight(50), pause("10s")}}))
	s.settle()
	s.change("v2")
	s.serve(2, 0, 0, 0)
	s.step()
	s.serve(2, 100, 1, time.Millisecond)
	s.advance(10 * time.Second)
	s.step()
	s.step()
	s.expect("done", map[int64]int32{1: 0, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	if run := s.app.Status.Rollout.Analysis[0]; run.Phase != api.AnalysisSuccessful || run.Measurements != 1 {
		t.Errorf("run %+v, want Successful after 1 measurement", run)
	}
	if n := len(s.app.Status.Rollout.Analysis[0].Last.Latency); n != 1 {
		t.Errorf("stored latency buckets %d, want 1 (trailing empty ones left out)", n)
	}
}

// TestRollingCrashLoopGoesBackWithinItsBounds: a Rolling rollout whose new
// pods crash-loop aborts, and goes back to the stable revision by the
// same surge bounds (its pods never drop below replicas-maxUnavailable).
func TestRollingCrashLoopGoesBackWithinItsBounds(t *testing.T) {
	s := newSim(t, rolling(app(4, "v1"), api.FromInt(1), api.FromInt(0)))
	s.settle()
	s.change("v2")
	s.step() // one surge pod of v2, ready: one v1 pod goes
	s.step()
	if got := s.specs(); got[1] >= 4 || got[2] < 1 {
		t.Fatalf("the rollout did not move: %v", got)
	}
	s.pods[2][0].restarts = 3
	s.decide()
	if r := s.app.Status.Rollout; r.State != api.RolloutAborted || r.Reason != "CrashLoop" || s.app.Status.Phase != api.AppDegraded {
		t.Fatalf("rollout %+v phase %s", r, s.app.Status.Phase)
	}
	for range 10 {
		s.replicate()
		s.readyAll()
		s.decide()
		if ready := s.rev(1).Status.ReadyReplicas + s.rev(2).Status.ReadyReplicas; ready < 4 {
			t.Fatalf("ready pods %d below replicas-maxUnavailable 4; specs %v", ready, s.specs())
		}
	}
	s.expect("back on v1", map[int64]int32{1: 4, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
}

// TestPauseHoldsARolloutWhereItStands: `rollout pause` (spec.paused) in the
// middle of a canary freezes sizes, weights and steps, and keeps the
// progress deadline from firing; resume carries on from the same step.
func TestPauseHoldsARolloutWhereItStands(t *testing.T) {
	a := canary(app(10, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(20), pause("10s"), setWeight(60)}})
	a.Spec.ProgressDeadlineSeconds = ptr(int32(60))
	s := newSim(t, a)
	s.settle()
	s.change("v2")
	s.step()
	s.expect("20%", map[int64]int32{1: 10, 2: 2}, map[int64]int32{1: 80, 2: 20}, api.AppProgressing, api.RolloutProgressing)

	s.app.Spec.Paused = true
	s.decide()
	s.expect("paused", map[int64]int32{1: 10, 2: 2}, map[int64]int32{1: 80, 2: 20}, api.AppPaused, api.RolloutPaused)
	if r := s.app.Status.Rollout; r.Reason != ReasonPausedBySpec || !s.hasEvent("Paused") {
		t.Errorf("reason %q, events %v", r.Reason, s.events)
	}
	// Far past the timed pause and the progress deadline: nothing moves.
	for range 3 {
		s.advance(5 * time.Minute)
		s.replicate()
		s.readyAll()
		s.decide()
	}
	s.expect("still paused", map[int64]int32{1: 10, 2: 2}, map[int64]int32{1: 80, 2: 20}, api.AppPaused, api.RolloutPaused)

	s.app.Spec.Paused = false
	s.step()
	s.expect("resumed: the timed pause counts afresh", map[int64]int32{1: 10, 2: 2}, map[int64]int32{1: 80, 2: 20}, api.AppProgressing, api.RolloutProgressing)
	s.advance(10 * time.Second)
	s.decide()
	s.expect("resumed: the next step", map[int64]int32{1: 10, 2: 6}, map[int64]int32{1: 80, 2: 20}, api.AppProgressing, api.RolloutProgressing)
	for range 4 {
		s.step()
	}
	s.expect("done", map[int64]int32{1: 0, 2: 10}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
}

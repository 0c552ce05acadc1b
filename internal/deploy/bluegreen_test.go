package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func blueGreen(a *api.App, bg api.BlueGreenStrategy) *api.App {
	a.Spec.Strategy = api.Strategy{Type: api.StrategyBlueGreen, BlueGreen: &bg}
	return a
}

// expect checks the revisions' specs, the traffic split, the phase and the
// rollout state after a decision.
func (s *sim) expect(step string, specs map[int64]int32, traffic map[int64]int32, phase, state string) {
	s.t.Helper()
	if diff := cmp.Diff(specs, s.specs()); diff != "" {
		s.t.Errorf("%s: replicas (-want +got):\n%s", step, diff)
	}
	if diff := cmp.Diff(traffic, s.traffic()); diff != "" {
		s.t.Errorf("%s: traffic (-want +got):\n%s", step, diff)
	}
	if st := s.app.Status; st.Phase != phase || st.Rollout == nil || st.Rollout.State != state {
		s.t.Errorf("%s: phase %q rollout %+v, want %s/%s", step, st.Phase, st.Rollout, phase, state)
	}
}

func TestBlueGreenPreviewThenPromote(t *testing.T) {
	s := newSim(t, blueGreen(app(3, "v1"), api.BlueGreenStrategy{}))
	s.settle()
	s.expect("v1", map[int64]int32{1: 3}, map[int64]int32{1: 100}, api.AppHealthy, api.RolloutCompleted)

	s.change("v2")
	s.decide()
	s.expect("v2 created", map[int64]int32{1: 3, 2: 3}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if s.app.Status.PreviewRevision != 2 {
		t.Errorf("preview revision %d, want 2", s.app.Status.PreviewRevision)
	}
	s.replicate()
	s.decide() // pods of 2 exist but are not ready: still all on 1
	s.expect("v2 starting", map[int64]int32{1: 3, 2: 3}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	s.readyAll()
	s.decide()
	s.expect("v2 ready", map[int64]int32{1: 3, 2: 3}, map[int64]int32{1: 100}, api.AppPaused, api.RolloutPaused)
	if r := s.app.Status.Rollout; r.Reason != "BlueGreenPause" || s.app.Status.PreviewRevision != 2 {
		t.Errorf("rollout %+v preview %d, want BlueGreenPause on preview 2", r, s.app.Status.PreviewRevision)
	}
	s.advance(time.Hour)
	s.decide() // no promotion without a request, and a pause has no deadline
	s.expect("an hour later", map[int64]int32{1: 3, 2: 3}, map[int64]int32{1: 100}, api.AppPaused, api.RolloutPaused)

	s.request(api.RequestPromote)
	p := s.decide()
	s.expect("promoted", map[int64]int32{1: 3, 2: 3}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	if st := s.app.Status; st.StableRevision != 2 || st.PreviewRevision != 0 || p.RequeueAfter != 30*time.Second {
		t.Errorf("stable %d preview %d requeue %v, want 2, 0, 30s (the default scaleDownDelaySeconds)", st.StableRevision, st.PreviewRevision, p.RequeueAfter)
	}
	s.advance(29 * time.Second)
	s.decide()
	s.expect("within the scale-down delay", map[int64]int32{1: 3, 2: 3}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	s.advance(time.Second)
	s.decide()
	s.expect("after the scale-down delay", map[int64]int32{1: 0, 2: 3}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
}

func TestBlueGreenAutoPromoteAfterSeconds(t *testing.T) {
	s := newSim(t, blueGreen(app(2, "v1"), api.BlueGreenStrategy{AutoPromote: true, AutoPromoteAfterSeconds: 10, ScaleDownDelaySeconds: ptr(int32(0))}))
	s.settle()
	s.change("v2")
	s.decide()
	s.replicate()
	s.readyAll()
	p := s.decide()
	s.expect("ready", map[int64]int32{1: 2, 2: 2}, map[int64]int32{1: 100}, api.AppPaused, api.RolloutPaused)
	if p.RequeueAfter != 10*time.Second {
		t.Errorf("requeue after %v, want 10s", p.RequeueAfter)
	}
	s.advance(10 * time.Second)
	s.decide()
	s.expect("auto-promoted", map[int64]int32{1: 2, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	s.decide() // scaleDownDelaySeconds 0: the old revision goes at once
	s.expect("scaling down", map[int64]int32{1: 0, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
	s.replicate()
	s.decide()
	s.expect("scaled down", map[int64]int32{1: 0, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)
}

// TestBlueGreenRollbackIsInstantAndSticks: after a promotion, rollback
// flips all traffic back to the warm old revision; re-deciding with the
// same template never rolls the rolled-back revision out again, and retry
// does.
func TestBlueGreenRollbackIsInstantAndSticks(t *testing.T) {
	s := newSim(t, blueGreen(app(2, "v1"), api.BlueGreenStrategy{}))
	s.settle()
	s.change("v2")
	s.decide()
	s.replicate()
	s.readyAll()
	s.decide()
	s.request(api.RequestPromote)
	s.decide()
	s.expect("promoted", map[int64]int32{1: 2, 2: 2}, map[int64]int32{2: 100}, api.AppHealthy, api.RolloutCompleted)

	s.request(api.RequestRollback)
	s.decide()
	s.expect("rolled back", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppHealthy, api.RolloutRolledBack)
	if st := s.app.Status; st.StableRevision != 1 || st.LatestRevision != 2 {
		t.Errorf("stable %d latest %d, want 1 and 2", st.StableRevision, st.LatestRevision)
	}
	for range 3 {
		s.replicate()
		s.advance(time.Minute)
		if p := s.decide(); p.Create != nil {
			t.Fatalf("the same template rolled out again after a rollback: %+v", p.Create.Spec)
		}
	}
	s.expect("later", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppHealthy, api.RolloutRolledBack)

	s.request(api.RequestRetry)
	s.decide()
	s.expect("retried", map[int64]int32{1: 2, 2: 2}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if !s.hasEvent("RolloutRetried") {
		t.Errorf("no RolloutRetried event: %+v", s.events)
	}
}

func TestBlueGreenPrePromotionAnalysisFailureAborts(t *testing.T) {
	s := newSim(t, blueGreen(app(2, "v1"), api.BlueGreenStrategy{AutoPromote: true, PrePromotionAnalysis: &api.Analysis{
		Interval: "10s", Metrics: []api.AnalysisMetric{{Name: "ok", Type: api.MetricSuccessRate, Min: ptr(0.95)}}}}))
	s.settle()
	s.change("v2")
	s.decide()
	s.replicate()
	s.readyAll()
	s.decide()
	s.expect("analysing", map[int64]int32{1: 2, 2: 2}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	s.serve(2, 100, 30, 5*time.Millisecond) // preview traffic, 30% failing
	s.advance(10 * time.Second)
	s.decide()
	s.expect("aborted", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	c := api.FindCondition(s.app.Status.Conditions, "Progressing")
	if c == nil || c.Status != api.ConditionFalse || c.Reason != "AnalysisFailed" || !strings.Contains(c.Message, "successRate 0.7000 < min 0.95 over 100 requests") {
		t.Errorf("condition %+v, want AnalysisFailed naming the measured value and the threshold", c)
	}
}

package deploy

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func ptr[T any](v T) *T { return &v }

func app(replicas int32, version string) *api.App {
	a := &api.App{Metadata: api.ObjectMeta{Name: "hello", Project: "default", Generation: 3}}
	a.Spec.Replicas = ptr(replicas)
	a.Spec.Template.Containers = []api.Container{{Name: "web", Command: []string{"./hello"}, Env: []api.EnvVar{{Name: "VERSION", Value: version}}}}
	return a
}

func revisionOf(a *api.App, n int64, replicas, ready int32) *api.Revision {
	return &api.Revision{
		Metadata: api.ObjectMeta{Name: RevisionName("hello", n)},
		Spec:     api.RevisionSpec{App: "hello", Number: n, TemplateHash: TemplateHash(a.Spec.Template), Template: a.Spec.Template, Replicas: replicas},
		Status:   api.RevisionStatus{Replicas: replicas, ReadyReplicas: ready, AvailableReplicas: ready},
	}
}

func TestFirstApplyCreatesRevisionOne(t *testing.T) {
	a := app(3, "v1")
	p := PlanApp(a, nil)
	if p.Create == nil || p.Create.Metadata.Name != "hello-1" || p.Create.Spec.Replicas != 3 || p.Create.Spec.Number != 1 {
		t.Fatalf("Create = %+v", p.Create)
	}
	if diff := cmp.Diff(map[string]string{"app": "hello", "revision": "1"}, p.Create.Metadata.Labels); diff != "" {
		t.Errorf("labels: %s", diff)
	}
	if p.Status.Phase != api.AppProgressing || p.Status.LatestRevision != 1 || p.Status.ObservedGeneration != 3 {
		t.Errorf("status %+v", p.Status)
	}
}

func TestTemplateChangeMakesNextRevisionAtFirstSurgeStep(t *testing.T) {
	v1 := app(2, "v1")
	r1 := revisionOf(v1, 1, 2, 2)
	v2 := app(2, "v2")
	p := PlanApp(v2, []*api.Revision{r1})
	if p.Create == nil || p.Create.Spec.Number != 2 || p.Create.Spec.TemplateHash == r1.Spec.TemplateHash {
		t.Fatalf("Create = %+v", p.Create)
	}
	// Default maxSurge 25% of 2 rounds up to 1; maxUnavailable 0 keeps revision 1 whole.
	if p.Create.Spec.Replicas != 1 || len(p.Scale) != 0 {
		t.Errorf("new revision at %d, Scale %v; want 1 and no scaling", p.Create.Spec.Replicas, p.Scale)
	}
	if c := api.FindCondition(p.Status.Conditions, "Progressing"); p.Status.Phase != api.AppProgressing || c == nil || c.Reason != "NewRevisionCreated" {
		t.Errorf("status %+v", p.Status)
	}
}

func TestScaleChangeKeepsRevision(t *testing.T) {
	v1 := app(2, "v1")
	r1 := revisionOf(v1, 1, 2, 2)
	p := PlanApp(app(5, "v1"), []*api.Revision{r1})
	if p.Create != nil {
		t.Fatalf("a replica change made a new revision")
	}
	if diff := cmp.Diff(map[string]int32{"hello-1": 5}, p.Scale); diff != "" {
		t.Errorf("Scale (-want +got):\n%s", diff)
	}
}

func TestSettledAppIsHealthy(t *testing.T) {
	v1 := app(2, "v1")
	p := PlanApp(v1, []*api.Revision{revisionOf(v1, 1, 2, 2)})
	if p.Create != nil || len(p.Scale) != 0 {
		t.Fatalf("settled app planned changes: %+v", p)
	}
	want := api.AppStatus{ObservedGeneration: 3, Phase: api.AppHealthy, LatestRevision: 1, StableRevision: 1,
		Replicas: 2, ReadyReplicas: 2, AvailableReplicas: 2, Traffic: []api.TrafficTarget{{Revision: 1, Weight: 100}},
		Conditions: []api.Condition{{Type: "Progressing", Status: api.ConditionTrue, Reason: "NewRevisionAvailable", Message: "revision 1"}},
		Revisions:  []api.RevisionState{{Revision: 1, Desired: 2, Replicas: 2, Ready: 2, Available: 2, Weight: 100}},
		Rollout:    &api.RolloutStatus{Revision: 1, State: api.RolloutCompleted, Report: &api.Report{}}}
	if diff := cmp.Diff(want, p.Status); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestPausedAppHoldsTemplateChange(t *testing.T) {
	v1 := app(2, "v1")
	r1 := revisionOf(v1, 1, 2, 2)
	v2 := app(2, "v2")
	v2.Spec.Paused = true
	p := PlanApp(v2, []*api.Revision{r1})
	if p.Create != nil || len(p.Scale) != 0 {
		t.Fatalf("paused app rolled out: %+v", p)
	}
	if p.Status.Phase != api.AppPaused {
		t.Errorf("phase %q, want Paused", p.Status.Phase)
	}
}

func TestHistoryLimitDeletesOldestDrainedRevisions(t *testing.T) {
	cur := app(1, "v9")
	cur.Spec.RevisionHistoryLimit = ptr(int32(2))
	var revs []*api.Revision
	for n := int64(1); n <= 5; n++ {
		r := revisionOf(app(1, "old"), n, 0, 0)
		revs = append(revs, r)
	}
	revs[0].Status.Replicas = 1 // still has a pod: kept until it is gone
	latest := revisionOf(cur, 6, 1, 1)
	revs = append(revs, latest)
	p := PlanApp(cur, revs)
	if diff := cmp.Diff([]string{"hello-2", "hello-3"}, p.Delete); diff != "" {
		t.Errorf("Delete (-want +got):\n%s", diff)
	}
}

// TestDecideDoesNotMutateItsInput: the App given to Decide, status
// included, is the same after it (the controller compares the two).
func TestDecideDoesNotMutateItsInput(t *testing.T) {
	s := newSim(t, canary(app(2, "v1"), api.CanaryStrategy{
		Analysis: analysis("", 0, api.AnalysisMetric{Name: "ok", Type: api.MetricSuccessRate, Min: ptr(0.5)}),
		Steps:    []api.CanaryStep{setWeight(50), pause("")}}))
	s.settle()
	s.change("v2")
	s.serve(2, 0, 0, 0)
	s.step()
	s.serve(2, 10, 0, time.Millisecond)
	s.advance(time.Minute)
	before := *s.app
	before.Status = cloneStatus(s.app.Status)
	Decide(s.app, s.observed(), s.now)
	if diff := cmp.Diff(before.Status, s.app.Status); diff != "" {
		t.Errorf("Decide changed its input (-before +after):\n%s", diff)
	}
}

package deploy

import (
	"testing"

	"slipway.dev/slipway/internal/api"
)

// A rollout records the strategy it runs under, and keeps it once ended
// when spec.strategy changes afterwards (the view names it by this).
func TestRolloutRecordsItsStrategy(t *testing.T) {
	v1 := app(2, "v1")
	r1 := revisionOf(v1, 1, 2, 2)
	v2 := app(2, "v2")
	v2.Status = PlanApp(v1, []*api.Revision{r1}).Status
	p := PlanApp(v2, []*api.Revision{r1})
	if ro := p.Status.Rollout; ro == nil || ro.From != 1 || ro.Strategy != api.StrategyRolling {
		t.Fatalf("rollout of revision 2: %+v, want one from revision 1 recording Rolling", ro)
	}

	// Done, then the spec's strategy changes without a new template.
	r2 := revisionOf(v2, 2, 2, 2)
	r1.Spec.Replicas, r1.Status = 0, api.RevisionStatus{}
	later := app(2, "v2")
	later.Spec.Strategy = api.Strategy{Type: api.StrategyCanary, Canary: &api.CanaryStrategy{Steps: []api.CanaryStep{{SetWeight: ptr(int32(50))}}}}
	later.Status = p.Status
	later.Status.StableRevision, later.Status.LatestRevision = 2, 2
	later.Status.Rollout.State = api.RolloutCompleted
	got := PlanApp(later, []*api.Revision{r1, r2}).Status.Rollout
	if got == nil || got.Revision != 2 || got.Strategy != api.StrategyRolling {
		t.Errorf("after the strategy changed: %+v, want revision 2's rollout still Rolling", got)
	}
}

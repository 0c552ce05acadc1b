package deploy

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

// TestCrashLoopWithNothingToGoBackTo: a revision whose container
// crash-loops while there is no working revision to abort back to (the
// App's first, or its stable one crashing after it completed) makes the
// App Degraded with reason CrashLoopBackOff, naming the container and its
// last exit code, and keeps its pods (the node restarts them with
// back-off); a container that restarted but is ready again, or fewer
// restarts, is not a crash loop; a later fixed revision rolls out and the
// App is Healthy.
func TestCrashLoopWithNothingToGoBackTo(t *testing.T) {
	strategies := map[string]func(*api.App) *api.App{
		"Rolling":  func(a *api.App) *api.App { return a },
		"Recreate": func(a *api.App) *api.App { a.Spec.Strategy.Type = api.StrategyRecreate; return a },
		"Canary": func(a *api.App) *api.App {
			return canary(a, api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50), pause("")}})
		},
		"BlueGreen": func(a *api.App) *api.App { return blueGreen(a, api.BlueGreenStrategy{}) },
	}
	const crashing = "revision 1 is crash-looping: container web of pod hello-1-1 last exited with code 1 (Error), restarted 3 times; restarts go on with back-off until a new revision fixes it; last log lines:\nstarting\ncannot open the database"
	for _, tc := range []struct {
		name     string
		settled  bool  // revision 1 completed (all ready) before its pods crash
		restarts int32 // of the first pod
		ready    bool  // the first pod is ready again
		phase    string
		reason   string // of the Progressing condition
		message  string // the App's
	}{
		{name: "first revision crash-loops", restarts: 3, phase: api.AppDegraded, reason: ReasonCrashLoopBackOff, message: crashing},
		{name: "first revision restarted twice", restarts: 2, phase: api.AppProgressing, reason: "RevisionProgressing", message: "revision 1: 0 of 2 pods ready"},
		{name: "first revision ready again after 3 restarts", restarts: 3, ready: true, phase: api.AppProgressing, reason: "RevisionProgressing", message: "revision 1: 1 of 2 pods ready"},
		{name: "stable revision crash-loops after completing", settled: true, restarts: 3, phase: api.AppDegraded, reason: ReasonCrashLoopBackOff, message: crashing},
	} {
		for sname, strategy := range strategies {
			t.Run(tc.name+"/"+sname, func(t *testing.T) {
				s := newSim(t, strategy(app(2, "v1")))
				if tc.settled {
					s.settle()
					for _, p := range s.pods[1] {
						p.ready = false
					}
				} else {
					s.decide()
					s.replicate()
				}
				s.pods[1][0].restarts, s.pods[1][0].ready = tc.restarts, tc.ready
				s.replicate()
				s.decide()
				st := s.app.Status
				c := api.FindCondition(st.Conditions, "Progressing")
				if st.Phase != tc.phase || c == nil || c.Reason != tc.reason || st.Message != tc.message {
					t.Fatalf("phase %s, condition %+v, message %q; want %s, reason %s, %q", st.Phase, c, st.Message, tc.phase, tc.reason, tc.message)
				}
				if tc.reason == ReasonCrashLoopBackOff && (c.Status != api.ConditionFalse || c.Message != tc.message) {
					t.Errorf("condition %+v; want False with the message", c)
				}
				if diff := cmp.Diff(map[int64]int32{1: 2}, s.specs()); diff != "" {
					t.Errorf("the revision was resized (-want +got):\n%s", diff)
				}
				if got := s.hasEvent(ReasonCrashLoopBackOff); got != (tc.reason == ReasonCrashLoopBackOff) {
					t.Errorf("CrashLoopBackOff event recorded: %v", got)
				}
				// Deciding again changes nothing and records no second event.
				n := len(s.events)
				s.decide()
				if s.app.Status.Phase != tc.phase || len(s.events) != n && tc.reason == ReasonCrashLoopBackOff {
					t.Errorf("a second decision: phase %s, events %v", s.app.Status.Phase, s.events[n:])
				}
				if tc.reason != ReasonCrashLoopBackOff {
					return
				}

				// The fix: a new revision rolls out as any would.
				s.change("v2")
				for range 30 {
					s.decide()
					s.replicate()
					s.readyAll()
					if s.rev(2) != nil && s.app.Status.Phase == api.AppHealthy && s.specs()[1] == 0 {
						break
					}
					s.promoteIfPaused()
					s.advance(10 * time.Second) // BlueGreen keeps the old revision warm for 30s
				}
				if st := s.app.Status; st.Phase != api.AppHealthy || st.StableRevision != 2 || strings.Contains(st.Message, "crash") {
					t.Fatalf("after the fix: phase %s stable %d message %q specs %v", st.Phase, st.StableRevision, st.Message, s.specs())
				}
				if diff := cmp.Diff(map[int64]int32{1: 0, 2: 2}, s.specs()); diff != "" {
					t.Errorf("after the fix (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// promoteIfPaused promotes a rollout waiting for `rollout promote`.
func (s *sim) promoteIfPaused() {
	if s.app.Status.Phase == api.AppPaused {
		s.request(api.RequestPromote)
	}
}

package deploy

import (
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
)

func withHooks(a *api.App, h api.Hooks) *api.App {
	a.Spec.Strategy.Hooks = &h
	return a
}

var migrate = &api.Hook{Command: []string{"./migrate"}, FailurePolicy: api.HookAbort}

// hookAt reports the run of a hook as the runner would.
func (s *sim) hookAt(kind string, attempt int32, phase, action string) {
	s.runs[kind] = HookRun{Attempt: attempt, Phase: phase, Action: action, Pod: "hello-2-" + kind, Message: phase}
}

func TestPreHookGatesTheNewRevision(t *testing.T) {
	s := newSim(t, withHooks(blueGreen(app(2, "v1"), api.BlueGreenStrategy{}), api.Hooks{Pre: migrate}))
	s.runs = map[string]HookRun{}
	s.settle() // the first rollout runs its pre hook too
	s.hookAt(HookPre, 1, api.PodSucceeded, HookProceed)
	s.settle()
	s.expect("v1", map[int64]int32{1: 2}, map[int64]int32{1: 100}, api.AppHealthy, api.RolloutCompleted)

	s.change("v2")
	s.runs = map[string]HookRun{}
	s.decide()
	s.expect("pre pending", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if got := HooksToRun(s.app.Status); len(got) != 1 || got[0].Hook != HookPre || got[0].Attempt != 1 {
		t.Fatalf("hooks to run %+v, want pre attempt 1", got)
	}
	s.hookAt(HookPre, 1, api.PodRunning, HookWait)
	s.decide()
	s.expect("pre running", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if want := "revision 2: 0 of 2 pods ready; waiting for the pre hook (attempt 1, Running)"; s.app.Status.Message != want {
		t.Errorf("message %q, want %q", s.app.Status.Message, want)
	}
	s.hookAt(HookPre, 1, api.PodSucceeded, HookProceed)
	s.decide()
	s.expect("pre passed", map[int64]int32{1: 2, 2: 2}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	if got := HooksToRun(s.app.Status); len(got) != 0 {
		t.Errorf("hooks to run after success: %+v", got)
	}
}

func TestFailedPreHookLeavesStableUntouched(t *testing.T) {
	s := newSim(t, withHooks(canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50)}}), api.Hooks{Pre: migrate}))
	s.settle()
	s.change("v2")
	s.runs = map[string]HookRun{}
	s.decide()
	s.hookAt(HookPre, 1, api.PodFailed, HookAbort)
	s.decide()
	s.expect("pre failed", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	if r := s.app.Status.Rollout; r.Reason != "HookFailed" || !strings.Contains(r.Message, "the pre hook of revision 2 failed (attempt 1, pod hello-2-pre)") {
		t.Errorf("rollout %+v", r)
	}
	// Retry runs a new attempt: a new pod.
	s.request(api.RequestRetry)
	s.decide()
	if got := HooksToRun(s.app.Status); len(got) != 1 || got[0].Attempt != 2 {
		t.Fatalf("after retry: hooks to run %+v, want pre attempt 2", got)
	}
	s.expect("retry waits for attempt 2", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
}

func TestHookRetryPolicyStartsTheNextAttempt(t *testing.T) {
	s := newSim(t, withHooks(blueGreen(app(1, "v1"), api.BlueGreenStrategy{}), api.Hooks{Pre: &api.Hook{Command: []string{"x"}, FailurePolicy: api.HookRetry}}))
	s.settle()
	s.change("v2")
	s.runs = map[string]HookRun{}
	s.decide()
	s.runs[HookPre] = HookRun{Attempt: 1, Phase: api.PodFailed, Action: HookRetry, RetryAt: s.now.Add(5 * time.Second)}
	if p := s.decide(); p.RequeueAfter != 5*time.Second || HooksToRun(s.app.Status)[0].Attempt != 1 {
		t.Fatalf("requeue %v hooks %+v, want 5s and attempt 1", p.RequeueAfter, HooksToRun(s.app.Status))
	}
	s.advance(5 * time.Second)
	s.decide()
	if got := HooksToRun(s.app.Status); got[0].Attempt != 2 || !s.hasEvent("HookRetried") {
		t.Fatalf("hooks %+v, want attempt 2 and a HookRetried event", got)
	}
}

func TestRecreateMidHookRunsBetweenOldAndNewPods(t *testing.T) {
	a := app(2, "v1")
	a.Spec.Strategy = api.Strategy{Type: api.StrategyRecreate}
	s := newSim(t, withHooks(a, api.Hooks{Mid: migrate}))
	s.settle()
	s.change("v2")
	s.runs = map[string]HookRun{}
	s.decide()
	s.expect("old going", map[int64]int32{1: 0, 2: 0}, map[int64]int32{1: 100}, api.AppProgressing, api.RolloutProgressing)
	s.replicate()
	s.decide()
	s.expect("mid pending", map[int64]int32{1: 0, 2: 0}, map[int64]int32{}, api.AppProgressing, api.RolloutProgressing)
	if got := HooksToRun(s.app.Status); len(got) != 1 || got[0].Hook != HookMid {
		t.Fatalf("hooks to run %+v, want mid", got)
	}
	s.hookAt(HookMid, 1, api.PodSucceeded, HookProceed)
	s.decide()
	s.expect("new starting", map[int64]int32{1: 0, 2: 2}, map[int64]int32{}, api.AppProgressing, api.RolloutProgressing)
}

func TestPostHookGatesCompletion(t *testing.T) {
	s := newSim(t, withHooks(canary(app(2, "v1"), api.CanaryStrategy{Steps: []api.CanaryStep{setWeight(50)}}), api.Hooks{Post: migrate}))
	s.settle()
	s.change("v2")
	s.runs = map[string]HookRun{}
	s.step()
	s.step()
	s.expect("traffic moved, post pending", map[int64]int32{1: 2, 2: 2}, map[int64]int32{2: 100}, api.AppProgressing, api.RolloutProgressing)
	s.hookAt(HookPost, 1, api.PodFailed, HookAbort)
	s.decide()
	s.expect("post failed", map[int64]int32{1: 2, 2: 0}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
}

// TestFirstRolloutPostHookFailureKeepsItsPods: with nothing to go back to,
// an aborted first rollout keeps what it has, Degraded, until a retry.
func TestFirstRolloutPostHookFailureKeepsItsPods(t *testing.T) {
	s := newSim(t, withHooks(app(2, "v1"), api.Hooks{Post: migrate}))
	s.runs = map[string]HookRun{}
	s.step()
	s.step()
	s.hookAt(HookPost, 1, api.PodFailed, HookAbort)
	s.decide()
	s.expect("post failed", map[int64]int32{1: 2}, map[int64]int32{1: 100}, api.AppDegraded, api.RolloutAborted)
	s.request(api.RequestRetry)
	s.decide()
	s.hookAt(HookPost, 2, api.PodSucceeded, HookProceed)
	s.decide()
	s.expect("retried", map[int64]int32{1: 2}, map[int64]int32{1: 100}, api.AppHealthy, api.RolloutCompleted)
}

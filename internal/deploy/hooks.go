package deploy

import (
	"context"
	"fmt"
	"time"

	"slipway.dev/slipway/internal/api"
)

// Hook kinds, as in spec.strategy.hooks.
const (
	HookPre  = "pre"
	HookMid  = "mid"
	HookPost = "post"
)

// Hook actions: the hook's failure policy applied to its run.
const (
	HookWait    = "Wait"
	HookProceed = "Proceed"
	HookRetry   = "Retry"
	HookAbort   = "Abort"
)

// HookRun is what is known of one run of a rollout hook.
type HookRun struct {
	Attempt int32
	Phase   string // Pending, Running, Succeeded, Failed
	Action  string // HookWait, HookProceed, HookRetry or HookAbort
	Pod     string
	Message string
	// RetryAt is when a failed run may be followed by the next attempt.
	RetryAt time.Time
}

// Hooks runs rollout hooks as one-off pods; the server implements it over
// internal/hooks. Run makes sure the attempt-th run of the revision's hook
// exists (creating its pod the first time, only reading after that) and
// reports on it with the hook's failure policy applied.
type Hooks interface {
	Run(ctx context.Context, app *api.App, rev *api.Revision, kind string, attempt int32) (HookRun, error)
	// Forget deletes the hook pods the App no longer needs: those of its
	// old revisions, or all of them when app is nil (the App is gone).
	Forget(ctx context.Context, project, name string, app *api.App) error
}

func hookSpec(app *api.App, kind string) *api.Hook {
	h := app.Spec.Strategy.Hooks
	if h == nil {
		return nil
	}
	switch kind {
	case HookPre:
		return h.Pre
	case HookMid:
		if app.Spec.Strategy.Type == api.StrategyRecreate {
			return h.Mid
		}
	case HookPost:
		return h.Post
	}
	return nil
}

func findHook(ro *api.RolloutStatus, kind string) *api.HookState {
	for i := range ro.Hooks {
		if ro.Hooks[i].Hook == kind {
			return &ro.Hooks[i]
		}
	}
	return nil
}

// hookPoll is how often a running hook is looked at when no pod event
// comes first.
const hookPoll = 2 * time.Second

// hook gates the rollout on its hook of the given kind, and reports
// whether the rollout may go past it: pre before the new revision gets
// pods, mid (Recreate) between the old pods' end and the new ones' start,
// post once traffic moved and before the rollout completes. Without a
// hook runner (Observed.Hooks nil) hooks are not run.
func (d *decision) hook(kind string) bool {
	h := hookSpec(d.app, kind)
	if h == nil || d.obs.Hooks == nil {
		return true
	}
	st := findHook(d.ro, kind)
	if st == nil {
		d.ro.Hooks = append(d.ro.Hooks, api.HookState{Hook: kind, Attempt: 1, Phase: api.PodPending})
		d.event(api.EventNormal, "HookPending", fmt.Sprintf("the %s hook of revision %d runs before the rollout goes on", kind, d.ro.Revision))
		d.wake(hookPoll)
		return false
	}
	if st.Done {
		return true
	}
	run, ok := d.obs.Hooks[kind]
	if !ok || run.Attempt != st.Attempt {
		d.wake(hookPoll)
		return false
	}
	st.Phase, st.Pod, st.Message = run.Phase, run.Pod, run.Message
	switch run.Action {
	case HookProceed:
		st.Done = true
		reason := "HookSucceeded"
		if run.Phase != api.PodSucceeded {
			reason = "HookFailureIgnored"
		}
		d.event(api.EventNormal, reason, fmt.Sprintf("the %s hook of revision %d (attempt %d) %s", kind, d.ro.Revision, st.Attempt, lowerPhase(run.Phase)))
		return true
	case HookRetry:
		if d.now.Before(run.RetryAt) {
			d.wake(run.RetryAt.Sub(d.now))
			return false
		}
		st.Attempt++
		st.Phase, st.Pod, st.Message = api.PodPending, "", ""
		d.event(api.EventWarning, "HookRetried", fmt.Sprintf("the %s hook of revision %d failed (%s): attempt %d", kind, d.ro.Revision, run.Message, st.Attempt))
	case HookAbort:
		d.abort("HookFailed", fmt.Sprintf("the %s hook of revision %d failed (attempt %d, pod %s): %s", kind, d.ro.Revision, st.Attempt, run.Pod, run.Message))
		return false
	}
	d.wake(hookPoll)
	return false
}

func lowerPhase(p string) string {
	if p == api.PodSucceeded {
		return "succeeded"
	}
	return "failed (failurePolicy Ignore)"
}

// HooksToRun are the hook runs of a decided status the controller must
// make sure of: those not done, with their attempt.
func HooksToRun(st api.AppStatus) []api.HookState {
	ro := st.Rollout
	if ro == nil || (ro.State != api.RolloutProgressing && ro.State != api.RolloutPaused) {
		return nil
	}
	var out []api.HookState
	for _, h := range ro.Hooks {
		if !h.Done {
			out = append(out, h)
		}
	}
	return out
}

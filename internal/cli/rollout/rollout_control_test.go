package rollout

import (
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
)

// acknowledge plays the deploy controller's part of the request protocol:
// it acknowledges each new request value, refusing it with refuse(verb)
// when that is not "". It returns the values it saw.
func acknowledge(t *testing.T, a *clitest.API, refuse func(verb string) string) <-chan string {
	seen := make(chan string, 8)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		for ctx.Err() == nil {
			obj, err := a.Reg.Get(ctx, cmdutil.AppKind, api.DefaultProject, "hello")
			if err == nil {
				app := obj.(*api.App)
				if v := app.Metadata.Annotations[api.RolloutRequestAnnotation]; v != "" && v != app.Status.ObservedRequest {
					verb, _, _ := strings.Cut(v, " ")
					app.Status.ObservedRequest, app.Status.RequestRefused = v, refuse(verb)
					if _, err := a.Reg.UpdateStatus(ctx, app); err == nil {
						seen <- v
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	return seen
}

func TestRolloutRequestsWaitForAcknowledgement(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 1))
	seen := acknowledge(t, a, func(verb string) string {
		if verb == api.RequestAbort {
			return "no rollout in progress"
		}
		return ""
	})
	cases := []struct {
		args     []string
		verb     string
		code     int
		out, err string
	}{
		{[]string{"rollout", "promote", "app/hello"}, "promote", 0, "app/hello: rollout promote done; ", ""},
		{[]string{"rollout", "promote", "app/hello", "--full"}, "promote-full", 0, "app/hello: rollout promote done; ", ""},
		{[]string{"rollout", "rollback", "app/hello"}, "rollback", 0, "app/hello: rollout rollback done; ", ""},
		{[]string{"rollout", "retry", "app/hello"}, "retry", 0, "app/hello: rollout retry done; ", ""},
		{[]string{"rollout", "abort", "app/hello"}, "abort", 1, "", "error: app/hello: rollout abort refused: no rollout in progress\n"},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, tc.args...)
		if code != tc.code || !strings.HasPrefix(out, tc.out) || errOut != tc.err {
			t.Errorf("%q: code %d stdout %q stderr %q; want %d, %q..., %q", tc.args, code, out, errOut, tc.code, tc.out, tc.err)
		}
		select {
		case v := <-seen:
			if verb, nonce, _ := strings.Cut(v, " "); verb != tc.verb || nonce == "" {
				t.Errorf("%q wrote request %q, want verb %q and a nonce", tc.args, v, tc.verb)
			}
		case <-time.After(10 * time.Second): // the acknowledger reports after its write
			t.Errorf("%q: no request acknowledged", tc.args)
		}
	}
	if g := a.App(t, "hello").Metadata.Generation; g != 1 {
		t.Errorf("requests changed the spec: generation %d", g)
	}
	if _, errOut, code := a.RunOut(t, "rollout", "promote", "svc/hello"); code != 1 || !strings.Contains(errOut, "only apps can") {
		t.Errorf("promote of a service: %d %q", code, errOut)
	}
}

func TestRolloutView(t *testing.T) {
	three := int32(3)
	a := &api.App{Metadata: api.ObjectMeta{Name: "hello", Generation: 2}, Spec: api.AppSpec{Replicas: &three}}
	a.Spec.Strategy = api.Strategy{Type: api.StrategyCanary, Canary: &api.CanaryStrategy{Steps: []api.CanaryStep{
		{SetWeight: new(int32(20))}, {Pause: &api.PauseStep{}}}}}
	a.Status = api.AppStatus{ObservedGeneration: 2, Phase: api.AppPaused, LatestRevision: 2, StableRevision: 1, CurrentStep: new(int32(1)),
		Revisions: []api.RevisionState{
			{Revision: 1, Desired: 3, Replicas: 3, Ready: 3, Available: 3, Weight: 80},
			{Revision: 2, Desired: 1, Replicas: 1, Ready: 1, Available: 1, Weight: 20}},
		PreviewRevision: 2,
		Rollout: &api.RolloutStatus{Revision: 2, From: 1, State: api.RolloutPaused, Message: "step 1: paused until rollout promote",
			Analysis: []api.AnalysisRun{{Name: "background", Phase: api.AnalysisRunning, Measurements: 2, Message: "all metrics passed"}}},
	}
	want := []string{
		"  Canary rollout of revision 2 from revision 1: Paused, step 1 of 2 (pause until promoted): step 1: paused until rollout promote",
		"  REVISION    DESIRED  PODS  READY  AVAILABLE  WEIGHT",
		"  1 (stable)  3        3     3      3          80%",
		"  2 (new)     1        1     1      1          20%",
		"  preview: revision 2 (header X-Slipway-Revision: preview)",
		"  analysis background: Running, 2 measurements, 0 failed, 0 inconclusive: all metrics passed",
	}
	if got := view.Rollout(a); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("view:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	a.Status.Rollout = &api.RolloutStatus{Revision: 2, From: 1, State: api.RolloutCompleted, Strategy: api.StrategyCanary, Report: &api.Report{Measured: true, DurationMillis: 12500,
		Revisions: []api.RevisionReport{{Revision: 1, Requests: 900}, {Revision: 2, Requests: 100, ServerErrors: 3}}, Failed: 3, LongestNoReadyMillis: 0}}
	a.Status.Revisions, a.Status.PreviewRevision = nil, 0
	want = []string{
		"  Canary rollout of revision 2 from revision 1: Completed",
		"  report: took 12.5s; 1000 requests (revision 1: 900, revision 2: 100); 3 failed (0 of them 503 for want of a ready pod); 0 upstream errors; longest time without a ready pod 0s",
	}
	if got := view.Rollout(a); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("view:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	a.Status.Phase = api.AppHealthy
	a.Status.Rollout.State = api.RolloutRolledBack
	if line, done, failed := view.RolloutLine(a); !done || !failed || !strings.Contains(line, "rolled back to revision 1") {
		t.Errorf("rolled back: %q done=%v failed=%v", line, done, failed)
	}
}

func TestRolloutLinePausedForPromotion(t *testing.T) {
	a := &api.App{Metadata: api.ObjectMeta{Name: "hello", Generation: 1}}
	a.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppPaused, Message: "revision 2 is ready on the preview: waiting for rollout promote",
		Rollout: &api.RolloutStatus{Revision: 2, From: 1, State: api.RolloutPaused}}
	want := "app/hello is paused: revision 2 is ready on the preview: waiting for rollout promote (slipway rollout promote app/hello)"
	if line, done, _ := view.RolloutLine(a); done || line != want {
		t.Errorf("%q done=%v, want %q", line, done, want)
	}
}

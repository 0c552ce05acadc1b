package rollout

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
)

// TestRolloutStatusExitStatuses holds rollout status's documented exit
// statuses: 0 healthy, 1 degraded, 2 waiting for a person, 3 timed out,
// 130 interrupted.
func TestRolloutStatusExitStatuses(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("healthy", 2))
	a.Create(t, clitest.NewApp("degraded", 2))
	a.Create(t, clitest.NewApp("canary", 2))
	a.Create(t, clitest.NewApp("held", 2))
	a.Create(t, clitest.NewApp("slow", 2))
	a.SetAppStatus(t, "healthy", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppHealthy, LatestRevision: 2, StableRevision: 2, ReadyReplicas: 3,
			Revisions: []api.RevisionState{{Revision: 1, Replicas: 1, Ready: 1}, {Revision: 2, Desired: 2, Replicas: 2, Ready: 2, Available: 2, Weight: 100}}}
	})
	a.SetAppStatus(t, "degraded", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppDegraded, Message: "revision 2 crash-looping", LatestRevision: 2}
	})
	a.SetAppStatus(t, "canary", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppPaused, Message: "step 1: paused until rollout promote", LatestRevision: 2, StableRevision: 1,
			Rollout: &api.RolloutStatus{Revision: 2, From: 1, State: api.RolloutPaused, Reason: "CanaryPauseStep", Strategy: api.StrategyCanary}}
	})
	held := a.App(t, "held")
	held.Spec.Paused = true
	if _, err := a.Reg.Update(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	a.SetAppStatus(t, "held", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 2, Phase: api.AppPaused, Message: "rollout of revision 2 paused where it stood", LatestRevision: 2,
			Rollout: &api.RolloutStatus{Revision: 2, From: 1, State: api.RolloutPaused, Reason: "PausedBySpec", Strategy: api.StrategyRolling}}
	})
	a.SetAppStatus(t, "slow", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppProgressing, LatestRevision: 2}
	})

	cases := []struct {
		name     string
		args     []string
		code     int
		out, err string // prefixes of the first line
	}{
		{"healthy", []string{"app/healthy"}, 0, "app/healthy successfully rolled out (revision 2, 2/2 pods ready)", ""},
		{"degraded", []string{"app/degraded"}, 1, "app/degraded is Degraded: revision 2 crash-looping", "error: the rollout of app/degraded did not complete"},
		{"canary pause", []string{"app/canary"}, 2, "app/canary is paused: step 1: paused until rollout promote (slipway rollout promote app/canary)",
			"the rollout of app/canary waits for a person: slipway rollout promote app/canary continues it"},
		{"rollout pause", []string{"app/held"}, 2, "app/held is paused: rollout of revision 2 paused where it stood (slipway rollout resume app/held)",
			"the rollout of app/held waits for a person: slipway rollout resume app/held continues it"},
		{"paused, once", []string{"app/canary", "--watch=false"}, 2, "app/canary is paused", "the rollout of app/canary waits for a person"},
		{"wait-paused times out", []string{"app/canary", "--wait-paused", "--timeout", "300ms"}, 3, "app/canary is paused", "error: timed out after 300ms waiting for the rollout of app/canary"},
		{"timed out", []string{"app/slow", "--timeout", "300ms"}, 3, "Waiting for the rollout of app/slow to finish", "error: timed out after 300ms"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := a.RunOut(t, append([]string{"rollout", "status"}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(out, tc.out) || !strings.HasPrefix(errOut, tc.err) || (tc.err == "" && errOut != "") {
				t.Errorf("code %d, stdout %q, stderr %q; want %d, %q..., %q...", code, out, errOut, tc.code, tc.out, tc.err)
			}
		})
	}

	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		out := clitest.NewSignalWriter("Waiting for the rollout")
		var errOut bytes.Buffer
		done := make(chan int)
		go func() { done <- a.Run(t, ctx, out, &errOut, "rollout", "status", "app/slow") }()
		// Interrupt once the first state is shown, as a person would.
		select {
		case <-out.Seen:
		case <-time.After(10 * time.Second):
			t.Fatal("rollout status printed nothing")
		}
		cancel()
		if code := <-done; code != 130 || errOut.String() != "" {
			t.Errorf("interrupted: code %d, stderr %q; want 130 and nothing", code, errOut.String())
		}
	})
}

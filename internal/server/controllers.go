package server

import (
	"context"
	"log/slog"
	"sync"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/autoscale"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/deploy"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/hooks"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/replication"
	"slipway.dev/slipway/internal/router"
)

// runControllers runs every controller until ctx ends.
func runControllers(ctx context.Context, reg *registry.Registry, rt *router.Router, log *slog.Logger) error {
	clk := clock.Real{}
	newQueue := func() *controller.Queue[controller.Key] {
		return controller.NewQueue[controller.Key](clk, controller.DefaultBackoff)
	}
	recorder := func(source string) *events.Recorder {
		return &events.Recorder{Reg: reg, Source: source, Clock: clk, Log: log}
	}
	hookRunner := &hooks.Runner{Reg: reg, Log: log.With("component", "hooks"), Clock: clk, Events: recorder("deploy")}
	apps := &deploy.Controller{Reg: reg, Events: recorder("deploy"), Log: log.With("controller", "deploy"),
		Metrics: routerMetrics{rt: rt}, Hooks: rolloutHooks{hookRunner}}
	revs := &replication.Controller{Reg: reg, Events: recorder("replication"), Log: log.With("controller", "replication")}
	// The runtimes report no resource usage yet: cpu and memory metrics
	// are missing (status says so), the router's are there.
	scaler := &autoscale.Controller{Reg: reg, Events: recorder("autoscaler"), Log: log.With("controller", "autoscaler"),
		Clock: clk, Metrics: routerMetrics{rt: rt}}
	var wg sync.WaitGroup
	wg.Go(func() { scaler.Run(ctx, newQueue()) })
	wg.Go(func() { apps.Run(ctx, newQueue()) })
	wg.Go(func() { revs.Run(ctx, newQueue()) })
	wg.Wait()
	return nil
}

// rolloutHooks runs the deploy controller's rollout hooks over
// internal/hooks: one-off pods whose failure policy hooks.Decide applies.
type rolloutHooks struct{ r *hooks.Runner }

// Run implements deploy.Hooks.
func (h rolloutHooks) Run(ctx context.Context, app *api.App, rev *api.Revision, kind string, attempt int32) (deploy.HookRun, error) {
	st, err := h.r.Ensure(ctx, app, rev, kind, int(attempt))
	if err != nil {
		return deploy.HookRun{}, err
	}
	return deploy.HookRun{Attempt: attempt, Phase: st.Phase, Action: string(hooks.Decide(hooks.Of(app, kind), st, int(attempt))),
		Pod: st.Pod, Message: st.Message, RetryAt: hooks.RetryAt(st, int(attempt))}, nil
}

// Forget implements deploy.Hooks.
func (h rolloutHooks) Forget(ctx context.Context, project, name string, app *api.App) error {
	var err error
	if app == nil {
		_, err = h.r.DeleteAll(ctx, project, name)
	} else {
		_, err = h.r.Cleanup(ctx, app, hooks.DefaultKeepRevisions)
	}
	return err
}

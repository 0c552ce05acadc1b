package server

import (
	"context"
	"log/slog"
	"sync"

	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/deploy"
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
	recorder := func(source string) *controller.Recorder {
		return &controller.Recorder{Reg: reg, Source: source, Clock: clk, Log: log}
	}
	apps := &deploy.Controller{Reg: reg, Events: recorder("deploy"), Log: log.With("controller", "deploy"),
		Metrics: routerMetrics{reg: reg, rt: rt}}
	revs := &replication.Controller{Reg: reg, Events: recorder("replication"), Log: log.With("controller", "replication")}
	var wg sync.WaitGroup
	wg.Go(func() { apps.Run(ctx, newQueue()) })
	wg.Go(func() { revs.Run(ctx, newQueue()) })
	wg.Wait()
	return nil
}

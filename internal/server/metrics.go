package server

import (
	"slices"

	"slipway.dev/slipway/internal/autoscale"
	"slipway.dev/slipway/internal/deploy"
	"slipway.dev/slipway/internal/router"
)

// routerMetrics gives the deploy controller's analyses and reports an
// App's counters as the router keeps them: the data plane tags each route
// backend with the App its Service selects when it builds the table, and
// the router sums by that tag. Only the types are translated here.
type routerMetrics struct {
	rt *router.Router
}

var _ deploy.Metrics = routerMetrics{}

// Revision implements deploy.Metrics.
func (m routerMetrics) Revision(project, app string, rev int64) (deploy.Sample, bool) {
	s, ok := m.rt.AppRevision(project+"/"+app, rev)
	return sample(s), ok
}

// Routes implements deploy.Metrics.
func (m routerMetrics) Routes(project, app string) (deploy.Sample, bool) {
	s, ok := m.rt.AppRoutes(project + "/" + app)
	return sample(s), ok
}

func sample(s router.Snapshot) deploy.Sample {
	return deploy.Sample{Requests: s.Requests, UpstreamErrors: s.UpstreamErrors, InFlight: s.InFlight,
		Bounds: slices.Clone(router.LatencyBounds), Latency: s.Latency}
}

var _ autoscale.Metrics = routerMetrics{}

// App implements autoscale.Metrics: the App's routes' totals.
func (m routerMetrics) App(project, app string) (autoscale.RouterSample, bool) {
	s, ok := m.rt.AppRoutes(project + "/" + app)
	return autoscale.RouterSample{InFlight: s.InFlight, Requests: s.Total()}, ok
}

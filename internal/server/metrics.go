package server

import (
	"context"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/deploy"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
)

var (
	serviceKind, _ = api.LookupKind("Service")
	routeKind, _   = api.LookupKind("Route")
)

// routerMetrics reads an App's per-revision counters from the router for
// the deploy controller's analyses and reports: the counters of every
// route and backend whose Service selects the App (selector app=<name>,
// no revision), summed.
type routerMetrics struct {
	reg *registry.Registry
	rt  *router.Router
}

var _ deploy.Metrics = routerMetrics{}

// services are the keys (project/name) of the Services selecting app.
func (m routerMetrics) services(project, app string) map[string]bool {
	objs, _, err := m.reg.List(context.Background(), serviceKind, project, registry.ListOptions{})
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, o := range objs {
		sel := o.(*api.Service).Spec.Selector
		if sel[api.LabelApp] == app && sel[api.LabelRevision] == "" {
			out[project+"/"+o.GetMeta().Name] = true
		}
	}
	return out
}

func newSample() deploy.Sample {
	return deploy.Sample{Bounds: slices.Clone(router.LatencyBounds), Latency: make([]int64, len(router.LatencyBounds)+1)}
}

func add(out *deploy.Sample, s router.Snapshot) {
	for i := range out.Requests {
		out.Requests[i] += s.Requests[i]
	}
	out.UpstreamErrors += s.UpstreamErrors
	out.InFlight += s.InFlight
	for i := range min(len(out.Latency), len(s.Latency)) {
		out.Latency[i] += s.Latency[i]
	}
}

// Revision implements deploy.Metrics.
func (m routerMetrics) Revision(project, app string, rev int64) (deploy.Sample, bool) {
	services := m.services(project, app)
	if len(services) == 0 {
		return deploy.Sample{}, false
	}
	out, found := newSample(), false
	for _, rs := range m.rt.AllStats() {
		for _, v := range rs.Revisions {
			if v.Revision == rev && services[v.Service] {
				found = true
				add(&out, v.Snapshot)
			}
		}
	}
	return out, found
}

// Routes implements deploy.Metrics: the totals of the Routes (and their
// BlueGreen preview routes) with a backend selecting the App, which also
// count what no revision answered (the router's 503 when no pod is ready).
func (m routerMetrics) Routes(project, app string) (deploy.Sample, bool) {
	services := m.services(project, app)
	objs, _, err := m.reg.List(context.Background(), routeKind, project, registry.ListOptions{})
	if err != nil || len(services) == 0 {
		return deploy.Sample{}, false
	}
	var keys []string
	for _, o := range objs {
		rt := o.(*api.Route)
		for _, b := range append([]api.RouteBackend{rt.Spec.To}, rt.Spec.AlternateBackends...) {
			if services[project+"/"+b.Service] {
				keys = append(keys, project+"/"+rt.Metadata.Name)
				break
			}
		}
	}
	out, found := newSample(), false
	for _, rs := range m.rt.AllStats() {
		for _, k := range keys {
			if rs.Route == k || strings.HasPrefix(rs.Route, k+"/preview/") {
				found = true
				add(&out, rs.Total)
			}
		}
	}
	return out, found
}

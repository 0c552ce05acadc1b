package server

import (
	"context"
	"slices"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/deploy"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
)

var serviceKind, _ = api.LookupKind("Service")

// routerMetrics reads an App's per-revision counters from the router for
// the deploy controller's analyses and reports: the counters of every
// route and backend whose Service selects the App (selector app=<name>,
// no revision), summed.
type routerMetrics struct {
	reg *registry.Registry
	rt  *router.Router
}

var _ deploy.Metrics = routerMetrics{}

// Revision implements deploy.Metrics.
func (m routerMetrics) Revision(project, app string, rev int64) (deploy.Sample, bool) {
	objs, _, err := m.reg.List(context.Background(), serviceKind, project, registry.ListOptions{})
	if err != nil {
		return deploy.Sample{}, false
	}
	services := map[string]bool{}
	for _, o := range objs {
		sel := o.(*api.Service).Spec.Selector
		if sel[api.LabelApp] == app && sel[api.LabelRevision] == "" {
			services[project+"/"+o.GetMeta().Name] = true
		}
	}
	if len(services) == 0 {
		return deploy.Sample{}, false
	}
	out := deploy.Sample{Bounds: slices.Clone(router.LatencyBounds), Latency: make([]int64, len(router.LatencyBounds)+1)}
	found := false
	for _, rs := range m.rt.AllStats() {
		for _, v := range rs.Revisions {
			if v.Revision != rev || !services[v.Service] {
				continue
			}
			found = true
			for i := range out.Requests {
				out.Requests[i] += v.Requests[i]
			}
			out.UpstreamErrors += v.UpstreamErrors
			for i := range min(len(out.Latency), len(v.Latency)) {
				out.Latency[i] += v.Latency[i]
			}
		}
	}
	return out, found
}

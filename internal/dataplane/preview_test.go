package dataplane

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/router"
)

// TestPreviewRules: an App with a preview revision gets the preview header
// rule and its canary match rules on every route to it, and a BlueGreen
// previewHost gets a route serving only the preview revision.
func TestPreviewRules(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := func(name string) api.ObjectMeta {
		return api.ObjectMeta{Project: "default", Name: name, CreationTimestamp: t0}
	}
	routes := []*api.Route{{Metadata: meta("web"), Spec: api.RouteSpec{Host: "web.test", To: api.RouteBackend{Service: "web"}}}}
	services := []*api.Service{{Metadata: meta("web"), Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80}}}}}
	endpoints := []*api.Endpoints{{Metadata: meta("web"), Addresses: []api.EndpointAddress{
		{IP: "127.20.0.1", Revision: 1, Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080}}},
		{IP: "127.20.0.2", Revision: 2, Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080}}},
	}}}
	ap := netip.MustParseAddrPort
	rev1 := router.RevisionConfig{Revision: 1, Weight: 100, Endpoints: []netip.AddrPort{ap("127.20.0.1:8080")}}
	rev2 := router.RevisionConfig{Revision: 2, Endpoints: []netip.AddrPort{ap("127.20.0.2:8080")}}
	status := api.AppStatus{PreviewRevision: 2, Traffic: []api.TrafficTarget{{Revision: 1, Weight: 100}}}

	t.Run("blueGreen", func(t *testing.T) {
		app := &api.App{Metadata: meta("web"), Status: status}
		app.Spec.Strategy = api.Strategy{Type: api.StrategyBlueGreen, BlueGreen: &api.BlueGreenStrategy{PreviewHost: "preview.web.test"}}
		in, _ := RouterInput(routes, services, endpoints, []*api.App{app}, "apps.test")
		rev2Only := rev2
		rev2Only.Weight = 100
		want := []router.RouteConfig{{
			Key: "default/web", Project: "default", Created: t0, Host: "web.test",
			Backends: []router.BackendConfig{{Service: "default/web", App: "default/web", Weight: 100, RevisionWeights: true, Revisions: []router.RevisionConfig{rev1, rev2}}},
			Match:    []router.MatchRule{{Kind: router.MatchHeader, Name: PreviewHeader, Value: "preview", Revision: 2}},
		}, {
			Key: "default/web/preview/web", Project: "default", Created: t0, Host: "preview.web.test",
			Backends: []router.BackendConfig{{Service: "default/web", App: "default/web", Weight: 1, RevisionWeights: true, Revisions: []router.RevisionConfig{rev2Only}}},
		}}
		if diff := cmp.Diff(want, in.Routes, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
			t.Errorf("routes (-want +got):\n%s", diff)
		}
	})
	t.Run("canary match", func(t *testing.T) {
		app := &api.App{Metadata: meta("web"), Status: status}
		app.Spec.Strategy = api.Strategy{Type: api.StrategyCanary, Canary: &api.CanaryStrategy{Match: []api.RouteMatch{
			{Cookie: &api.KeyMatch{Name: "beta", Value: "yes"}}}}}
		in, _ := RouterInput(routes, services, endpoints, []*api.App{app}, "apps.test")
		want := []router.MatchRule{
			{Kind: router.MatchHeader, Name: PreviewHeader, Value: "preview", Revision: 2},
			{Kind: router.MatchCookie, Name: "beta", Value: "yes", Revision: 2},
		}
		if len(in.Routes) != 1 {
			t.Fatalf("routes %+v", in.Routes)
		}
		if diff := cmp.Diff(want, in.Routes[0].Match); diff != "" {
			t.Errorf("match (-want +got):\n%s", diff)
		}
	})
	t.Run("no preview", func(t *testing.T) {
		app := &api.App{Metadata: meta("web"), Status: api.AppStatus{Traffic: status.Traffic}}
		app.Spec.Strategy = api.Strategy{Type: api.StrategyBlueGreen, BlueGreen: &api.BlueGreenStrategy{PreviewHost: "preview.web.test"}}
		in, _ := RouterInput(routes, services, endpoints, []*api.App{app}, "apps.test")
		if len(in.Routes) != 1 || len(in.Routes[0].Match) != 0 {
			t.Errorf("routes %+v, want one route without rules", in.Routes)
		}
	})
}

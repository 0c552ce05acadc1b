package dataplane

import (
	"cmp"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/router"
)

// PreviewHeader sends a request to an App's preview revision (a BlueGreen
// rollout's new revision before promotion, or a canary) when its value is
// "preview".
const PreviewHeader = "X-Slipway-Revision"

// previewRules returns what a rollout adds to route c, whose backends are
// the Services of rt: match rules sending the preview header (and a
// canary's match rules) to the App's preview revision, and for a BlueGreen
// previewHost a route that serves only that revision. Nothing when no
// backend's App has a preview revision.
func previewRules(c router.RouteConfig, svcs map[string]*api.Service, apps map[string]*api.App) ([]router.MatchRule, []router.RouteConfig) {
	var rules []router.MatchRule
	var extra []router.RouteConfig
	for i, b := range c.Backends {
		app := backendApp(b.Service, svcs, apps)
		if app == nil || app.Status.PreviewRevision == 0 {
			continue
		}
		rev := app.Status.PreviewRevision
		rules = append(rules, router.MatchRule{Kind: router.MatchHeader, Name: PreviewHeader, Value: "preview", Backend: i, Revision: rev})
		s := app.Spec.Strategy
		if s.Canary != nil {
			for _, m := range s.Canary.Match {
				r := router.MatchRule{Backend: i, Revision: rev}
				if matchOf(m, &r) {
					rules = append(rules, r)
				}
			}
		}
		if s.BlueGreen != nil && s.BlueGreen.PreviewHost != "" {
			// Only the preview revision: without a ready endpoint the
			// preview host answers 503 rather than the stable revision.
			pb := router.BackendConfig{Service: b.Service, App: b.App, Weight: 1, RevisionWeights: true}
			for _, rv := range b.Revisions {
				if rv.Revision == rev {
					rv.Weight = 100
					pb.Revisions = append(pb.Revisions, rv)
				}
			}
			extra = append(extra, router.RouteConfig{Key: c.Key + "/preview/" + strings.TrimPrefix(b.Service, c.Project+"/"), Project: c.Project, Created: c.Created,
				Host: s.BlueGreen.PreviewHost, Path: c.Path, Backends: []router.BackendConfig{pb}, Timeouts: c.Timeouts, MaxBodyBytes: c.MaxBodyBytes})
		}
	}
	return rules, extra
}

// backendApp is the App a backend Service selects (app=<name>, no
// revision), or nil.
func backendApp(key string, svcs map[string]*api.Service, apps map[string]*api.App) *api.App {
	svc := svcs[key]
	if svc == nil {
		return nil
	}
	sel := svc.Spec.Selector
	name, ok := sel[api.LabelApp]
	if !ok || sel[api.LabelRevision] != "" {
		return nil
	}
	return apps[cmp.Or(svc.Metadata.Project, api.DefaultProject)+"/"+name]
}

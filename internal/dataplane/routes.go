package dataplane

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
)

var (
	routeKind = mustKind("Route")
	appKind   = mustKind("App")
)

// DefaultRouterDomain makes a route's default host
// <route>-<project>.localhost, which browsers resolve to this machine.
const DefaultRouterDomain = "localhost"

// ConditionAdmitted is the Route condition the router writes.
const ConditionAdmitted = "Admitted"

// Routes keeps Router's table equal to the admitted Routes, their
// Services' ready endpoints and the Apps' traffic splits, and writes each
// Route's admission to its status. Set the fields, then Run.
type Routes struct {
	Reg    *registry.Registry
	Router *router.Router
	Log    *slog.Logger
	Domain string           // router domain; DefaultRouterDomain when empty
	Now    func() time.Time // for condition transition times; time.Now when nil

	mu     sync.Mutex
	objs   map[string]map[string]api.Object // kind → project/name → object
	synced map[string]bool
	kick   chan struct{}
}

// Run mirrors the store into the router until ctx ends. A burst of changes
// is coalesced: while one table is being applied, any number of changes
// make one more.
func (s *Routes) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	kinds := []api.KindInfo{routeKind, serviceKind, endpointsKind, appKind}
	s.objs = map[string]map[string]api.Object{}
	for _, k := range kinds {
		s.objs[k.Kind] = map[string]api.Object{}
	}
	s.synced = map[string]bool{}
	s.kick = make(chan struct{}, 1)

	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs first: the watches end before wg.Wait
	for _, k := range kinds {
		wg.Go(func() { s.listWatch(ctx, k) })
	}
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		}
		s.mu.Lock()
		ready := len(s.synced) == len(kinds)
		snap := map[string][]api.Object{}
		for kind, m := range s.objs {
			for _, o := range m {
				snap[kind] = append(snap[kind], o)
			}
		}
		s.mu.Unlock()
		if !ready {
			// Serving routes before their endpoints are known would turn
			// clients away after a restart; wait for every list.
			continue
		}
		in, verdicts := RouterInput(typed[*api.Route](snap[routeKind.Kind]), typed[*api.Service](snap[serviceKind.Kind]),
			typed[*api.Endpoints](snap[endpointsKind.Kind]), typed[*api.App](snap[appKind.Kind]), cmp.Or(s.Domain, DefaultRouterDomain))
		t, errs := router.Build(in)
		for _, err := range errs {
			// RouterInput refuses what Build would: this is a bug, but
			// the rest is served.
			if re, ok := errors.AsType[*router.RouteError](err); ok {
				verdicts[re.Key] = verdict{status: verdicts[re.Key].status, refusal: &router.Refusal{Reason: router.ReasonInvalid, Message: re.Err.Error()}}
			}
		}
		s.Router.Apply(t)
		if msg := errString(errors.Join(errs...)); msg != lastErr {
			if msg != "" {
				s.Log.Warn("router table applied with errors", "err", msg)
			}
			lastErr = msg
		}
		s.writeStatuses(ctx, typed[*api.Route](snap[routeKind.Kind]), verdicts)
	}
}

func typed[T api.Object](objs []api.Object) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(T))
	}
	return out
}

// writeStatuses writes each route's admission where it differs from its
// stored status. A failed write is retried on the next change (a conflict
// means the route changed, which is a change).
func (s *Routes) writeStatuses(ctx context.Context, routes []*api.Route, verdicts map[string]verdict) {
	for _, rt := range routes {
		v, ok := verdicts[objKey(rt)]
		if !ok {
			continue
		}
		want := admittedCondition(v)
		old := findCondition(rt.Status.Conditions, ConditionAdmitted)
		if rt.Status.Host == v.status.Host && old != nil && old.Status == want.Status && old.Reason == want.Reason && old.Message == want.Message {
			continue
		}
		want.LastTransitionTime = s.Now().UTC()
		if old != nil && old.Status == want.Status {
			want.LastTransitionTime = old.LastTransitionTime
		}
		next := *rt
		next.Status.Host = v.status.Host
		next.Status.Conditions = slices.DeleteFunc(slices.Clone(rt.Status.Conditions), func(c api.Condition) bool { return c.Type == ConditionAdmitted })
		next.Status.Conditions = append(next.Status.Conditions, want)
		if _, err := s.Reg.UpdateStatus(ctx, &next); err != nil && ctx.Err() == nil {
			s.Log.Info("cannot write route status; will retry on the next change", "route", objKey(rt), "err", err)
		}
	}
}

func admittedCondition(v verdict) api.Condition {
	if v.refusal != nil {
		return api.Condition{Type: ConditionAdmitted, Status: api.ConditionFalse, Reason: v.refusal.Reason, Message: v.refusal.Message}
	}
	return api.Condition{Type: ConditionAdmitted, Status: api.ConditionTrue, Reason: "Admitted", Message: "the router serves this route"}
}

func findCondition(cs []api.Condition, typ string) *api.Condition {
	for i := range cs {
		if cs[i].Type == typ {
			return &cs[i]
		}
	}
	return nil
}

func (s *Routes) changed() {
	select {
	case s.kick <- struct{}{}:
	default: // a rebuild is pending already and will see this change
	}
}

// listWatch keeps the cache of one kind, as Services.listWatch does.
func (s *Routes) listWatch(ctx context.Context, kind api.KindInfo) {
	for ctx.Err() == nil {
		objs, rv, err := s.Reg.List(ctx, kind, "", registry.ListOptions{})
		if err == nil {
			m := map[string]api.Object{}
			for _, o := range objs {
				m[objKey(o)] = o
			}
			s.mu.Lock()
			s.objs[kind.Kind] = m
			s.synced[kind.Kind] = true
			s.mu.Unlock()
			s.changed()
			var events <-chan registry.WatchEvent
			if events, err = s.Reg.Watch(ctx, kind, "", rv, ""); err == nil {
				for ev := range events {
					if ev.Type == registry.Error {
						s.Log.Info("watch ended; listing again", "kind", kind.Kind, "reason", ev.Err.Reason)
						break
					}
					s.mu.Lock()
					if ev.Type == registry.Deleted {
						delete(s.objs[kind.Kind], objKey(ev.Object))
					} else {
						s.objs[kind.Kind][objKey(ev.Object)] = ev.Object
					}
					s.mu.Unlock()
					s.changed()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			s.Log.Warn("list or watch failed; retrying", "kind", kind.Kind, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(relistDelay):
		}
	}
}

// verdict is the admission of one route: the status host, and why it is
// refused (nil when admitted).
type verdict struct {
	status  api.RouteStatus
	refusal *router.Refusal
}

// RouterInput is the router's input for the given objects, and each
// route's admission. A route's host defaults to <route>-<project>.<domain>;
// a backend is a Service, whose endpoints are the ready addresses on its
// first TCP port grouped by revision; when the Service selects one App
// (selector app=<name>, no revision) whose status has a traffic split,
// that split weighs the revisions.
func RouterInput(routes []*api.Route, services []*api.Service, endpoints []*api.Endpoints, apps []*api.App, domain string) (router.Input, map[string]verdict) {
	byKey := func(o api.Object) string { return objKey(o) }
	svcs := index(services, byKey)
	eps := index(endpoints, byKey)
	appm := index(apps, byKey)

	slices.SortFunc(routes, func(a, b *api.Route) int { return cmp.Compare(objKey(a), objKey(b)) })
	var cfgs []router.RouteConfig
	for _, rt := range routes {
		cfgs = append(cfgs, routeConfig(rt, svcs, eps, appm, domain))
	}
	admitted, refused := router.Admit(cfgs)
	verdicts := map[string]verdict{}
	for _, c := range cfgs {
		v := verdict{status: api.RouteStatus{Host: c.Host}}
		if r, ok := refused[c.Key]; ok {
			v.refusal = &r
		}
		verdicts[c.Key] = v
	}
	return router.Input{Routes: admitted}, verdicts
}

func index[T api.Object](objs []T, key func(api.Object) string) map[string]T {
	m := make(map[string]T, len(objs))
	for _, o := range objs {
		m[key(o)] = o
	}
	return m
}

func routeConfig(rt *api.Route, svcs map[string]*api.Service, eps map[string]*api.Endpoints, apps map[string]*api.App, domain string) router.RouteConfig {
	m := rt.Metadata
	project := cmp.Or(m.Project, api.DefaultProject)
	c := router.RouteConfig{
		Key: project + "/" + m.Name, Project: project, Created: m.CreationTimestamp,
		Host:         cmp.Or(rt.Spec.Host, m.Name+"-"+project+"."+domain),
		Path:         rt.Spec.Path,
		MaxBodyBytes: rt.Spec.MaxBodyBytes,
	}
	backends := append([]api.RouteBackend{rt.Spec.To}, rt.Spec.AlternateBackends...)
	for _, b := range backends {
		w := api.DefaultRouteWeight
		if b.Weight != nil {
			w = *b.Weight
		}
		key := project + "/" + b.Service
		c.Backends = append(c.Backends, backendConfig(key, w, svcs[key], eps[key], apps))
	}
	for _, mt := range rt.Spec.Match {
		r := router.MatchRule{Backend: 0}
		for i, b := range backends {
			if b.Service == mt.Service {
				r.Backend = i
				break
			}
		}
		switch {
		case mt.Header != nil:
			r.Kind, r.Name, r.Value, r.Regex = router.MatchHeader, mt.Header.Name, mt.Header.Value, mt.Header.Regex
		case mt.Cookie != nil:
			r.Kind, r.Name, r.Value, r.Regex = router.MatchCookie, mt.Cookie.Name, mt.Cookie.Value, mt.Cookie.Regex
		case mt.Query != nil:
			r.Kind, r.Name, r.Value, r.Regex = router.MatchQuery, mt.Query.Name, mt.Query.Value, mt.Query.Regex
		default:
			continue
		}
		c.Match = append(c.Match, r)
	}
	if a := rt.Spec.SessionAffinity; a != nil && a.Type == api.AffinityCookie {
		c.Affinity.CookieName = cmp.Or(a.CookieName, "slipway-"+m.Name)
		c.Affinity.TTL, _ = a.TTL.Parse()
	}
	if to := rt.Spec.Timeouts; to != nil {
		c.Timeouts.Connect, _ = to.Connect.Parse()
		c.Timeouts.Response, _ = to.Response.Parse()
		c.Timeouts.Idle, _ = to.Idle.Parse()
	}
	return c
}

// backendConfig resolves one Service into its revisions' ready endpoints.
// A route names no port: the Service's first TCP port is the one served.
func backendConfig(key string, weight int32, svc *api.Service, e *api.Endpoints, apps map[string]*api.App) router.BackendConfig {
	b := router.BackendConfig{Service: key, Weight: weight}
	if svc == nil || e == nil {
		return b
	}
	var port int32
	for _, p := range svc.Spec.Ports {
		if cmp.Or(p.Protocol, api.ProtocolTCP) == api.ProtocolTCP {
			port = p.Port
			break
		}
	}
	if port == 0 {
		return b
	}
	byRev := map[int64][]netip.AddrPort{}
	for _, a := range e.Addresses {
		if !a.Ready {
			continue
		}
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			continue
		}
		for _, p := range a.Ports {
			if p.Port == port && cmp.Or(p.Protocol, api.ProtocolTCP) == api.ProtocolTCP && p.TargetPort >= 1 && p.TargetPort <= 65535 {
				byRev[a.Revision] = append(byRev[a.Revision], netip.AddrPortFrom(ip, uint16(p.TargetPort)))
			}
		}
	}
	weights := map[int64]int32{}
	sel := svc.Spec.Selector
	if name, ok := sel[api.LabelApp]; ok && sel[api.LabelRevision] == "" {
		weights, b.RevisionWeights = trafficOf(apps[cmp.Or(svc.Metadata.Project, api.DefaultProject)+"/"+name])
	}
	// Only revisions with endpoints: the others carry no traffic whatever
	// their weight.
	for _, rev := range slices.Sorted(maps.Keys(byRev)) {
		b.Revisions = append(b.Revisions, router.RevisionConfig{Revision: rev, Weight: weights[rev], Endpoints: byRev[rev]})
	}
	return b
}

func trafficOf(app *api.App) (map[int64]int32, bool) {
	w := map[int64]int32{}
	if app == nil || len(app.Status.Traffic) == 0 {
		return w, false
	}
	for _, t := range app.Status.Traffic {
		w[t.Revision] += t.Weight
	}
	return w, true
}

package dataplane

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
)

var (
	routeKind  = mustKind("Route")
	appKind    = mustKind("App")
	secretKind = mustKind("Secret")
)

// DefaultRouterDomain makes a route's default host
// <route>-<project>.localhost, which browsers resolve to this machine.
const DefaultRouterDomain = "localhost"

// ConditionAdmitted is the Route condition the router writes.
const ConditionAdmitted = "Admitted"

// ConditionTLSReady is the condition of a Route with spec.tls: whether its
// certificate is served. Reasons are the TLS* constants.
const ConditionTLSReady = "TLSReady"

// TLSReady reasons.
const (
	TLSLoaded         = "CertificateLoaded"
	TLSSecretNotFound = "SecretNotFound"
	TLSSecretKey      = "SecretKeyMissing"
	TLSInvalid        = "InvalidCertificate"
	TLSHostMismatch   = "CertificateHostMismatch"
	TLSNotAdmitted    = "RouteNotAdmitted"
	secretCertKey     = "tls.crt"
	secretPrivateKey  = "tls.key"
)

// Routes keeps Router's table equal to the admitted Routes, their
// Services' ready endpoints and the Apps' traffic splits, and writes each
// Route's admission to its status. Set the fields, then Run.
type Routes struct {
	Reg    *registry.Registry
	Router *router.Router
	Log    *slog.Logger
	Domain string           // router domain; DefaultRouterDomain when empty
	Now    func() time.Time // for condition transition times; time.Now when nil
	// Certs, when set, receives the certificates of the admitted routes
	// with spec.tls (from their Secrets, which are then watched too) and
	// their insecure policies.
	Certs *router.Certs
	// Applied, when set, is called after each table is applied; the
	// first call comes with the table built once every kind was listed
	// (a new generation serves only from then on: no 404 for a route
	// that exists).
	Applied func()

	certCache map[string]cachedCert // project/secret → parsed; used by Run only
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
	if s.Certs != nil {
		kinds = append(kinds, secretKind)
	}
	s.certCache = map[string]cachedCert{}
	var lastErr string
	return newCache(s.Reg, s.Log, kinds...).serve(ctx, func(ctx context.Context, snap map[string][]api.Object) error {
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
		routes := typed[*api.Route](snap[routeKind.Kind])
		var tlsConds map[string]api.Condition
		if s.Certs != nil {
			var tin router.TLSInput
			tin, tlsConds = s.tlsInput(in, routes, typed[*api.Secret](snap[secretKind.Kind]))
			// Before the table: a new route's policy None or Redirect is
			// in force by the time the route is served.
			errs = append(errs, s.Certs.Apply(tin)...)
		}
		s.Router.Apply(t)
		if s.Applied != nil {
			s.Applied()
		}
		if msg := errString(errors.Join(errs...)); msg != lastErr {
			if msg != "" {
				s.Log.Warn("router table applied with errors", "err", msg)
			}
			lastErr = msg
		}
		s.writeStatuses(ctx, routes, verdicts, tlsConds)
		return nil
	})
}

func typed[T api.Object](objs []api.Object) []T {
	out := make([]T, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(T))
	}
	return out
}

// writeStatuses writes each route's admission (and, with Certs, its
// TLSReady condition, absent without spec.tls) where it differs from its
// stored status. A failed write is retried on the next change (a conflict
// means the route changed, which is a change).
func (s *Routes) writeStatuses(ctx context.Context, routes []*api.Route, verdicts map[string]verdict, tlsConds map[string]api.Condition) {
	for _, rt := range routes {
		v, ok := verdicts[objKey(rt)]
		if !ok {
			continue
		}
		want := map[string]*api.Condition{ConditionAdmitted: new(admittedCondition(v))}
		if s.Certs != nil {
			want[ConditionTLSReady] = nil // removed unless the route has TLS
			if c, ok := tlsConds[objKey(rt)]; ok {
				want[ConditionTLSReady] = &c
			}
		}
		same := rt.Status.Host == v.status.Host
		for typ, w := range want {
			old := api.FindCondition(rt.Status.Conditions, typ)
			if (old == nil) != (w == nil) || old != nil && (old.Status != w.Status || old.Reason != w.Reason || old.Message != w.Message) {
				same = false
			}
		}
		if same {
			continue
		}
		next := *rt
		next.Status.Host = v.status.Host
		next.Status.Conditions = slices.DeleteFunc(slices.Clone(rt.Status.Conditions), func(c api.Condition) bool { _, ok := want[c.Type]; return ok })
		for _, typ := range []string{ConditionAdmitted, ConditionTLSReady} {
			w := want[typ]
			if w == nil {
				continue
			}
			w.LastTransitionTime = s.Now().UTC()
			if old := api.FindCondition(rt.Status.Conditions, typ); old != nil && old.Status == w.Status {
				w.LastTransitionTime = old.LastTransitionTime
			}
			next.Status.Conditions = append(next.Status.Conditions, *w)
		}
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
		c := routeConfig(rt, svcs, eps, appm, domain)
		// Rollouts: the preview header, canary match rules, preview hosts.
		rules, extra := previewRules(c, svcs, appm)
		c.Match = append(rules, c.Match...)
		cfgs = append(append(cfgs, c), extra...)
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
		if matchOf(mt, &r) {
			c.Match = append(c.Match, r)
		}
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
	if re := rt.Spec.Retries; re != nil {
		c.Retries.Attempts = int(re.Attempts)
		for _, st := range re.OnStatus {
			c.Retries.OnStatus = append(c.Retries.OnStatus, int(st))
		}
	}
	if mr := rt.Spec.Mirror; mr != nil {
		key := project + "/" + mr.Service
		m := &router.MirrorConfig{Service: key, Percent: mr.Percent}
		// Every ready endpoint of the mirror service, whatever its revision.
		for _, rv := range backendConfig(key, 0, svcs[key], eps[key], nil).Revisions {
			m.Endpoints = append(m.Endpoints, rv.Endpoints...)
		}
		c.Mirror = m
	}
	return c
}

// backendConfig resolves one Service into its revisions' ready endpoints.
// A route names no port: the Service's first TCP port is the one served.
func backendConfig(key string, weight int32, svc *api.Service, e *api.Endpoints, apps map[string]*api.App) router.BackendConfig {
	b := router.BackendConfig{Service: key, Weight: weight}
	if svc == nil {
		return b
	}
	sel := svc.Spec.Selector
	name, selects := sel[api.LabelApp]
	selects = selects && sel[api.LabelRevision] == ""
	if selects {
		// Tagged even without endpoints: the router's 503s for want of a
		// ready pod count against the App.
		b.App = cmp.Or(svc.Metadata.Project, api.DefaultProject) + "/" + name
	}
	if e == nil {
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
	eachReady(e, port, api.ProtocolTCP, func(rev int64, a netip.AddrPort) { byRev[rev] = append(byRev[rev], a) })
	weights := map[int64]int32{}
	if selects {
		weights, b.RevisionWeights = trafficOf(apps[b.App])
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

// cachedCert is a Secret's parsed key pair, kept while the Secret's
// version is unchanged: parsing keys on every table rebuild (each endpoint
// change makes one) would cost far more than the rebuild.
type cachedCert struct {
	uid     string
	version int64
	cert    *tls.Certificate
	reason  string // a TLS* reason when cert is nil
	msg     string
}

// tlsInput is the TLS of the admitted routes in in, and the TLSReady
// condition of every route with spec.tls (admitted or not). A route whose
// Secret is missing or holds no valid key pair for its host gets no
// certificate, and a condition naming the Secret and the key at fault;
// key material is never part of a message.
func (s *Routes) tlsInput(in router.Input, routes []*api.Route, secrets []*api.Secret) (router.TLSInput, map[string]api.Condition) {
	byKey := index(secrets, func(o api.Object) string { return objKey(o) })
	admitted := map[string]router.RouteConfig{}
	for _, rc := range in.Routes {
		admitted[rc.Key] = rc
	}
	var tin router.TLSInput
	conds := map[string]api.Condition{}
	seen := map[string]bool{}
	for _, rt := range routes {
		spec := rt.Spec.TLS
		if spec == nil {
			continue
		}
		key := objKey(rt)
		project := cmp.Or(rt.Metadata.Project, api.DefaultProject)
		skey := project + "/" + spec.SecretName
		seen[skey] = true
		cert, reason, msg := s.loadCert(skey, spec.SecretName, project, byKey[skey])
		rc, ok := admitted[key]
		if cert != nil && ok {
			host, err := router.NormalizeHost(rc.Host)
			if err == nil {
				err = cert.Leaf.VerifyHostname(host)
			}
			if err != nil {
				msg = fmt.Sprintf("the certificate in secret %q (key %s, names %s) does not cover host %q", spec.SecretName, secretCertKey, strings.Join(certNames(cert), ", "), host)
				cert, reason = nil, TLSHostMismatch
			} else {
				msg = fmt.Sprintf("serving the certificate in secret %q for host %q, valid until %s", spec.SecretName, host, cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		switch {
		case cert == nil:
			conds[key] = api.Condition{Type: ConditionTLSReady, Status: api.ConditionFalse, Reason: reason, Message: msg}
		case !ok:
			conds[key] = api.Condition{Type: ConditionTLSReady, Status: api.ConditionFalse, Reason: TLSNotAdmitted,
				Message: fmt.Sprintf("the certificate in secret %q is not served while the route is not admitted", spec.SecretName)}
		default:
			conds[key] = api.Condition{Type: ConditionTLSReady, Status: api.ConditionTrue, Reason: TLSLoaded, Message: msg}
		}
		if ok {
			tin.Routes = append(tin.Routes, router.TLSRoute{Key: key, Host: rc.Host, Cert: cert, Insecure: spec.InsecureEdgeTerminationPolicy})
		}
	}
	for k := range s.certCache {
		if !seen[k] {
			delete(s.certCache, k)
		}
	}
	return tin, conds
}

func certNames(c *tls.Certificate) []string {
	if len(c.Leaf.DNSNames) == 0 {
		return []string{"none"}
	}
	return c.Leaf.DNSNames
}

// loadCert parses the key pair of secret (project/name skey), through the
// cache. It returns the certificate, or why there is none.
func (s *Routes) loadCert(skey, name, project string, secret *api.Secret) (*tls.Certificate, string, string) {
	if secret == nil {
		delete(s.certCache, skey)
		return nil, TLSSecretNotFound, fmt.Sprintf("secret %q not found in project %q", name, project)
	}
	m := secret.Metadata
	if c, ok := s.certCache[skey]; ok && c.uid == m.UID && c.version == m.ResourceVersion {
		return c.cert, c.reason, c.msg
	}
	c := cachedCert{uid: m.UID, version: m.ResourceVersion}
	crt, hasCrt := secret.Data[secretCertKey]
	key, hasKey := secret.Data[secretPrivateKey]
	var missing []string
	if !hasCrt {
		missing = append(missing, secretCertKey)
	}
	if !hasKey {
		missing = append(missing, secretPrivateKey)
	}
	if len(missing) > 0 {
		c.reason, c.msg = TLSSecretKey, fmt.Sprintf("secret %q has no key %s (a PEM certificate chain in %s and its PEM private key in %s are required)", name, strings.Join(missing, " nor "), secretCertKey, secretPrivateKey)
	} else if pair, err := parseKeyPair(crt, key); err != nil {
		// X509KeyPair's errors describe the PEM blocks, never their bytes.
		c.reason, c.msg = TLSInvalid, fmt.Sprintf("secret %q keys %s and %s: %v", name, secretCertKey, secretPrivateKey, err)
	} else {
		c.cert = pair
	}
	s.certCache[skey] = c
	return c.cert, c.reason, c.msg
}

func parseKeyPair(crt, key string) (*tls.Certificate, error) {
	pair, err := tls.X509KeyPair([]byte(crt), []byte(key))
	if err != nil {
		return nil, err
	}
	if pair.Leaf == nil { // only with GODEBUG x509keypairleaf=0
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &pair, nil
}

// matchOf fills r's condition from m: its header, cookie or query
// parameter; false when m names none.
func matchOf(m api.RouteMatch, r *router.MatchRule) bool {
	switch {
	case m.Header != nil:
		r.Kind, r.Name, r.Value, r.Regex = router.MatchHeader, m.Header.Name, m.Header.Value, m.Header.Regex
	case m.Cookie != nil:
		r.Kind, r.Name, r.Value, r.Regex = router.MatchCookie, m.Cookie.Name, m.Cookie.Value, m.Cookie.Regex
	case m.Query != nil:
		r.Kind, r.Name, r.Value, r.Regex = router.MatchQuery, m.Query.Name, m.Query.Value, m.Query.Regex
	default:
		return false
	}
	return true
}

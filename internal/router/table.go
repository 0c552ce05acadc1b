// Package router is the core of Slipway's public HTTP front door: it maps
// a request's host and path to a route and picks a backend (a Service), a
// revision of it and an endpoint; two engines proxy the request there, the
// standard one (internal/router/std: net/http and httputil.ReverseProxy)
// and the fast one (internal/router/fast). Both pick through Acquire and
// count through Begin and End, so selection, counters, passive health and
// drain are the same whichever serves a request.
//
// The router is driven by tables, like the service proxy: Build turns plain
// inputs into an immutable, pre-compiled Table, and (*Router).Apply swaps
// it in atomically, touching no listener. A request sees one table from
// its pick to its end, never half of a change.
//
// Drain contract (the node agent's half of ordered termination): when
// Apply returns, no request will be sent to an endpoint absent from the new
// table (a retry picks from the current table too); WaitDrained then waits
// until the requests in flight to it have ended. Its upstream connections
// are closed as soon as none is in use, never reused.
//
// Selection (select.go) is pure given a random source: match rules, then
// the affinity cookie, then weights between backends and between a
// backend's revisions, then power of two choices on in-flight requests.
// Counters per route, revision and endpoint (stats.go) are read in process
// through Stats, EndpointStats and View.
//
// This package imports nothing of the store: the dataplane package builds
// its Input from Routes, Services, Endpoints and Apps.
package router

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/drain"
)

// MaxWeight is the largest backend weight, as in OpenShift.
const MaxWeight = 256

// Input is everything the router serves.
type Input struct {
	Routes []RouteConfig
}

// RouteConfig is one route. Key names it (project/name) in errors, cookies
// and status; Project and Created decide host ownership (see Admit).
type RouteConfig struct {
	Key     string
	Project string
	Created time.Time
	// Host is an exact host name or a wildcard "*.example.com", which
	// matches every name below example.com (at any depth).
	Host string
	// Path is a prefix matched on whole segments: "/api" matches "/api"
	// and "/api/v1", not "/apis". Empty means "/".
	Path         string
	Backends     []BackendConfig
	Match        []MatchRule
	Affinity     Affinity
	Timeouts     Timeouts
	MaxBodyBytes int64 // 0: the router default
	Retries      Retries
	// Mirror, when set, gets shadow copies of a share of the requests.
	Mirror *MirrorConfig
}

// BackendConfig is one Service behind a route.
type BackendConfig struct {
	Service string // project/name
	Weight  int32  // 0-256; 0 receives no traffic by weight
	// RevisionWeights: the revisions' Weight fields hold the App's traffic
	// split. When false (or when no weighted revision has a ready
	// endpoint) revisions share traffic in proportion to ready endpoints.
	RevisionWeights bool
	Revisions       []RevisionConfig
	// App tags the backend with the App (project/name) whose Service it
	// is: the router counts by it (AppRevision, AppRoutes), so that
	// whoever reads an App's traffic need not map Apps to routes again.
	// Empty when the Service selects no one App.
	App string
	// Activation, when set (and App is), makes the route hold requests
	// while the App has no ready endpoint (see Hold).
	Activation *Activation
}

// RevisionConfig is the ready endpoints of one revision of a backend.
type RevisionConfig struct {
	Revision  int64
	Weight    int32
	Endpoints []netip.AddrPort
}

// Match kinds.
const (
	MatchHeader = "Header"
	MatchCookie = "Cookie"
	MatchQuery  = "Query"
)

// MatchRule sends requests whose header, cookie or query parameter Name
// has Value (or matches it as a regular expression when Regex) to
// Backends[Backend], and to its Revision when that is not 0, ahead of the
// weights. A matched backend (or revision) without a ready endpoint falls
// through to the weights.
type MatchRule struct {
	Kind     string
	Name     string
	Value    string
	Regex    bool
	Backend  int
	Revision int64
}

// Affinity keeps a client on its backend, revision and endpoint through a
// cookie while they stay ready. An empty CookieName disables it.
type Affinity struct {
	CookieName string
	TTL        time.Duration // 0: a session cookie
}

// Timeouts bound phases of a proxied request; 0 means the router default.
type Timeouts struct {
	Connect  time.Duration
	Response time.Duration // until the response headers arrive
	Idle     time.Duration
}

// Table is an immutable compiled Input. Apply it to one Router only.
type Table struct {
	exact    map[string][]*Route // host → routes, longest path first
	wildcard map[string][]*Route // suffix ("example.com") → routes
	members  map[netip.AddrPort]*Endpoint
	routes   map[string]*Route

	in      Input       // to build a fresh copy when applied again
	applied atomic.Bool // bound to a Router's counters and endpoints

	// The gate is held for reading by every request while it picks an
	// endpoint and counts itself in flight; Apply takes it for writing
	// after the swap, so that it returns once no pick on the old table is
	// in progress.
	drain.Gate
}

// Holds reports whether t lists an endpoint match accepts.
func (t *Table) Holds(match func(netip.AddrPort) bool) bool { return drain.Holds(t.members, match) }

// Route is a compiled route. Its exported fields are for the engines to
// read; a table never changes once built.
type Route struct {
	Key          string
	host         string
	path         string
	backends     []*backend
	match        []matcher
	Affinity     Affinity
	Timeouts     Timeouts
	maxBodyBytes int64
	Retries      Retries
	Mirror       *mirror
	byCookie     map[string]*Revision // backend hash + revision → revision
	stats        *counters            // bound by Apply
}

type backend struct {
	Service   string
	app       string // BackendConfig.App
	weight    int32
	weighted  bool // split by revision weights (see BackendConfig)
	revisions []*Revision
	// activation: BackendConfig.Activation (read only by Hold).
	activation *Activation
}

// Revision is one revision of a backend of a route and its endpoints.
type Revision struct {
	Backend   *backend
	Number    int64
	weight    int32
	endpoints []*Endpoint
	cookie    string    // "<backend hash>.<revision>"
	stats     *counters // bound by Apply
}

type matcher struct {
	kind, name, value string
	re                *regexp.Regexp
	backend           int
	revision          int64
}

// Endpoint is shared by every table of a Router that lists its address
// (Apply interns it), so that its in-flight count survives swaps.
type Endpoint struct {
	Addr     netip.AddrPort
	cookie   string // hash of addr
	inflight atomic.Int64
	leaving  atomic.Bool
	health   health
	long     longLivedSet // WebSockets and streamed responses
	// gen is the Apply that last listed it, and canon the Router's own
	// copy of a table's endpoint (itself once interned); both are
	// Apply's, under its lock.
	gen   uint64
	canon *Endpoint
	tr    atomic.Pointer[http.Transport] // see transport
	stats *counters                      // requests by status, latency (in flight is inflight)

	connMu sync.Mutex
	conns  map[*trackedConn]struct{}
}

// RouteError is an error of one route in Build's input.
type RouteError struct {
	Key string
	Err error
}

func (e *RouteError) Error() string { return "route " + e.Key + ": " + e.Err.Error() }
func (e *RouteError) Unwrap() error { return e.Err }

// Build compiles in. Invalid routes and entries are left out and reported;
// everything else is built. Duplicate host+path routes: the first wins.
func Build(in Input) (*Table, []error) {
	t := &Table{
		in:       in,
		exact:    map[string][]*Route{},
		wildcard: map[string][]*Route{},
		members:  map[netip.AddrPort]*Endpoint{},
		routes:   map[string]*Route{},
	}
	var errs []error
	seen := map[string]string{} // host + path → route key
	for _, rc := range in.Routes {
		r, err := t.buildRoute(rc)
		if err != nil {
			errs = append(errs, &RouteError{Key: rc.Key, Err: err})
			continue
		}
		k := r.host + " " + r.path
		if other, dup := seen[k]; dup {
			errs = append(errs, &RouteError{Key: rc.Key, Err: fmt.Errorf("host %q path %q is already served by route %s", r.host, r.path, other)})
			continue
		}
		seen[k] = rc.Key
		t.routes[rc.Key] = r
		if suffix, ok := strings.CutPrefix(r.host, "*."); ok {
			t.wildcard[suffix] = append(t.wildcard[suffix], r)
		} else {
			t.exact[r.host] = append(t.exact[r.host], r)
		}
	}
	for _, m := range []map[string][]*Route{t.exact, t.wildcard} {
		for _, rs := range m {
			slices.SortFunc(rs, func(a, b *Route) int { return cmp.Compare(len(b.path), len(a.path)) })
		}
	}
	return t, errs
}

// NormalizeHost lowercases h and checks it is a host name or a wildcard
// "*.name"; it returns an error naming the rule otherwise.
func NormalizeHost(h string) (string, error) {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	name := strings.TrimPrefix(h, "*.")
	if name == "" {
		return "", fmt.Errorf("host %q: must be a host name (e.g. app.example.com) or a wildcard (*.example.com)", h)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return "", fmt.Errorf("host %q: label %q must be 1-63 letters, digits or '-', not starting or ending with '-'", h, label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", fmt.Errorf("host %q: label %q must be 1-63 letters, digits or '-', not starting or ending with '-'", h, label)
			}
		}
	}
	return h, nil
}

func normalizePath(p string) (string, error) {
	if p == "" {
		return "/", nil
	}
	if p[0] != '/' {
		return "", fmt.Errorf("path %q: must start with '/'", p)
	}
	// Requests match in canonical form (CanonicalPath): so must routes.
	canon, err := CanonicalPath(p)
	if err != nil {
		return "", fmt.Errorf("path %q: %w", p, err)
	}
	p = canon
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return p, nil
}

func hashString(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return strconv.FormatUint(h.Sum64(), 36)
}

func (t *Table) buildRoute(rc RouteConfig) (*Route, error) {
	host, err := NormalizeHost(rc.Host)
	if err != nil {
		return nil, err
	}
	path, err := normalizePath(rc.Path)
	if err != nil {
		return nil, err
	}
	if len(rc.Backends) == 0 {
		return nil, fmt.Errorf("backends: at least one backend is required")
	}
	if rc.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("maxBodyBytes %d: must be 0 (the router default) or more", rc.MaxBodyBytes)
	}
	if err := rc.Retries.validate(); err != nil {
		return nil, err
	}
	r := &Route{Key: rc.Key, host: host, path: path, Affinity: rc.Affinity, Timeouts: rc.Timeouts,
		maxBodyBytes: rc.MaxBodyBytes, Retries: rc.Retries, byCookie: map[string]*Revision{}}
	if rc.Mirror != nil {
		m, err := t.buildMirror(*rc.Mirror)
		if err != nil {
			return nil, err
		}
		r.Mirror = m
	}
	for i, bc := range rc.Backends {
		if bc.Weight < 0 || bc.Weight > MaxWeight {
			return nil, fmt.Errorf("backends[%d] (%s): weight %d must be 0-%d", i, bc.Service, bc.Weight, MaxWeight)
		}
		b := &backend{Service: bc.Service, app: bc.App, weight: bc.Weight, weighted: bc.RevisionWeights, activation: bc.Activation}
		if a := bc.Activation; a != nil && (a.Timeout <= 0 || a.MaxHeld < 0) {
			return nil, fmt.Errorf("backends[%d] (%s): activation timeout %v must be positive and maxHeld %d not negative", i, bc.Service, a.Timeout, a.MaxHeld)
		}
		bh := hashString(bc.Service)
		for j, rv := range bc.Revisions {
			if rv.Weight < 0 {
				return nil, fmt.Errorf("backends[%d] (%s) revisions[%d]: weight %d must not be negative", i, bc.Service, j, rv.Weight)
			}
			v := &Revision{Backend: b, Number: rv.Revision, weight: rv.Weight, cookie: bh + "." + strconv.FormatInt(rv.Revision, 10)}
			for _, a := range rv.Endpoints {
				if !a.IsValid() || a.Port() == 0 {
					return nil, fmt.Errorf("backends[%d] (%s) revision %d: invalid endpoint %q", i, bc.Service, rv.Revision, a)
				}
				a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
				ep := t.members[a]
				if ep == nil {
					ep = &Endpoint{Addr: a, cookie: hashString(a.String())}
					t.members[a] = ep
				}
				if !slices.Contains(v.endpoints, ep) {
					v.endpoints = append(v.endpoints, ep)
				}
			}
			b.revisions = append(b.revisions, v)
			r.byCookie[v.cookie] = v
		}
		r.backends = append(r.backends, b)
	}
	for i, m := range rc.Match {
		if m.Backend < 0 || m.Backend >= len(r.backends) {
			return nil, fmt.Errorf("match[%d]: backend %d does not exist (the route has %d)", i, m.Backend, len(r.backends))
		}
		if m.Name == "" {
			return nil, fmt.Errorf("match[%d]: name is required", i)
		}
		mt := matcher{kind: m.Kind, name: m.Name, value: m.Value, backend: m.Backend, revision: m.Revision}
		switch m.Kind {
		case MatchHeader, MatchCookie, MatchQuery:
		default:
			return nil, fmt.Errorf("match[%d]: kind %q must be one of %s, %s, %s", i, m.Kind, MatchHeader, MatchCookie, MatchQuery)
		}
		if m.Regex {
			re, err := regexp.Compile(m.Value)
			if err != nil {
				return nil, fmt.Errorf("match[%d]: value %q is not a valid regular expression: %v", i, m.Value, err)
			}
			mt.re = re
		}
		r.match = append(r.match, mt)
	}
	return r, nil
}

// hostOrPath is how a request's host and path are held: the standard
// engine has strings, the fast engine bytes of its read buffer. Lookup is
// instantiated for each, so neither pays for the other (a []byte host
// indexes the maps through string(host), which does not allocate).
type hostOrPath interface{ string | []byte }

// Lookup returns the route of t for host (lowercase, without port) and
// path: an exact host beats a wildcard, a longer wildcard suffix a shorter
// one, and within a host the longest matching path prefix wins.
func Lookup[S hostOrPath](t *Table, host, path S) *Route {
	if r := matchPath(t.exact[string(host)], path); r != nil {
		return r
	}
	for s := host; ; {
		i := indexDot(s)
		if i < 0 {
			return nil
		}
		s = s[i+1:]
		if r := matchPath(t.wildcard[string(s)], path); r != nil {
			return r
		}
	}
}

func indexDot[S hostOrPath](s S) int {
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			return i
		}
	}
	return -1
}

// matchPath returns the first of rs (longest path first) whose path is a
// prefix of path on whole segments.
func matchPath[S hostOrPath](rs []*Route, path S) *Route {
	for _, r := range rs {
		if r.path == "/" || string(path) == r.path ||
			len(path) > len(r.path) && string(path[:len(r.path)]) == r.path && path[len(r.path)] == '/' {
			return r
		}
	}
	return nil
}

// Lookup returns the key of the route serving host (any case, with or
// without a port) and path, and false when none does.
func (t *Table) Lookup(host, path string) (string, bool) {
	r := Lookup(t, CanonicalHost(host), path)
	if r == nil {
		return "", false
	}
	return r.Key, true
}

// CanonicalHost is the host of a Host header as routes name it: without
// port or brackets or trailing dot, lowercase.
func CanonicalHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(h, "]"), "["), ".")
	return strings.ToLower(h)
}

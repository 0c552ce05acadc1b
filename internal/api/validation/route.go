package validation

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) routeSpec(p string, s *api.RouteSpec, m *api.ObjectMeta) {
	hp := child(p, "host")
	switch {
	case s.Host == "":
		// The router names the route <name>-<project>.<router domain>;
		// that first label must still be a DNS label.
		if n := len(m.Name) + 1 + len(m.Project); m.Name != "" && n > api.MaxNameLength {
			v.required(hp, fmt.Sprintf("the default host %s-%s.<router domain> would start with a label of %d characters (more than %d): set spec.host",
				m.Name, m.Project, n, api.MaxNameLength))
		}
	case strings.HasPrefix(s.Host, "*."):
		if !isDNS1123Subdomain(s.Host[2:]) || len(s.Host) > 253 {
			v.invalid(hp, s.Host, "a wildcard host must be '*.' followed by a "+subdomainMsg[2:])
		}
	default:
		v.subdomain(hp, s.Host)
	}
	v.urlPath(child(p, "path"), s.Path)

	backends := []string{s.To.Service}
	v.backend(child(p, "to"), s.To)
	ap := child(p, "alternateBackends")
	if len(s.AlternateBackends) > api.MaxAlternateBackends {
		v.invalid(ap, len(s.AlternateBackends), fmt.Sprintf("must have at most %d items", api.MaxAlternateBackends))
	}
	for i, b := range s.AlternateBackends {
		f := index(ap, i)
		if v.backend(f, b) {
			if slices.Contains(backends, b.Service) {
				v.add(api.FieldDuplicate, child(f, "service"), b.Service, "each service may appear once among spec.to and spec.alternateBackends")
			}
			backends = append(backends, b.Service)
		}
	}
	for i := range s.Match {
		v.routeMatch(index(child(p, "match"), i), &s.Match[i], backends)
	}
	if a := s.SessionAffinity; a != nil {
		f := child(p, "sessionAffinity")
		v.oneOf(child(f, "type"), a.Type, api.AffinityCookie)
		if a.CookieName != "" && (!httpTokenRe.MatchString(a.CookieName) || len(a.CookieName) > 256) {
			v.invalid(child(f, "cookieName"), a.CookieName, "a cookie name "+httpTokenMsg)
		}
		v.duration(child(f, "ttl"), a.TTL)
	}
	if t := s.Timeouts; t != nil {
		f := child(p, "timeouts")
		v.duration(child(f, "connect"), t.Connect)
		v.duration(child(f, "response"), t.Response)
		v.duration(child(f, "idle"), t.Idle)
	}
	if r := s.Retries; r != nil {
		f := child(p, "retries")
		v.rangeOf(child(f, "attempts"), int64(r.Attempts), 0, api.MaxRetryAttempts)
		seen := map[int32]bool{}
		for i, code := range r.OnStatus {
			cp := index(child(f, "onStatus"), i)
			switch {
			case code < 500 || code > 599:
				v.invalid(cp, code, "must be between 500 and 599, inclusive: only server errors are retried")
			case seen[code]:
				v.duplicate(cp, code)
			}
			seen[code] = true
		}
	}
	if mr := s.Mirror; mr != nil {
		f := child(p, "mirror")
		v.serviceName(child(f, "service"), mr.Service)
		v.rangeOf(child(f, "percent"), int64(mr.Percent), 0, 100)
	}
	if t := s.TLS; t != nil {
		f := child(p, "tls")
		v.oneOf(child(f, "termination"), t.Termination, api.TLSEdge)
		v.label(child(f, "secretName"), t.SecretName, api.MaxNameLength, "")
		if t.InsecureEdgeTerminationPolicy != "" {
			v.oneOf(child(f, "insecureEdgeTerminationPolicy"), t.InsecureEdgeTerminationPolicy, api.InsecureRedirect, api.InsecureAllow, api.InsecureNone)
		}
	}
	v.min(child(p, "maxBodyBytes"), s.MaxBodyBytes, 0)
}

// urlPath checks a route's path prefix.
func (v *validator) urlPath(field, path string) {
	switch {
	case path == "":
		// The default "/" applies.
	case len(path) > 2048:
		v.tooLong(field, 2048, "")
	case path[0] != '/':
		v.invalid(field, path, "must start with '/'")
	case strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '?' || r == '#' }):
		v.invalid(field, path, "must be a URL path without spaces, control characters, '?' or '#'")
	}
}

// backend checks a service and its weight; it reports whether the service
// name is valid.
func (v *validator) backend(p string, b api.RouteBackend) bool {
	ok := v.serviceName(child(p, "service"), b.Service)
	if b.Weight != nil {
		v.rangeOf(child(p, "weight"), int64(*b.Weight), 0, int64(api.MaxRouteWeight))
	}
	return ok
}

// routeMatch checks a match rule. backends lists the route's services, nil
// for a canary's match, which always sends to the new revision.
func (v *validator) routeMatch(p string, m *api.RouteMatch, backends []string) {
	set := 0
	for _, k := range []struct {
		name string
		km   *api.KeyMatch
	}{{"header", m.Header}, {"cookie", m.Cookie}, {"query", m.Query}} {
		if k.km == nil {
			continue
		}
		set++
		if set > 1 {
			v.forbidden(child(p, k.name), "a match is exactly one of header, cookie or query")
			continue
		}
		v.keyMatch(child(p, k.name), k.name, k.km)
	}
	if set == 0 {
		v.required(p, "a match is exactly one of header, cookie or query")
	}
	sp := child(p, "service")
	switch {
	case m.Service == "":
	case backends == nil:
		v.forbidden(sp, "a canary's match always sends to the new revision")
	case v.serviceName(sp, m.Service) && !slices.Contains(backends, m.Service):
		v.invalid(sp, m.Service, "must be one of the route's services (spec.to or spec.alternateBackends)")
	}
}

func (v *validator) keyMatch(p, what string, k *api.KeyMatch) {
	np := child(p, "name")
	switch {
	case k.Name == "":
		v.required(np, "")
	case len(k.Name) > 256:
		v.tooLong(np, 256, "")
	case what != "query" && !httpTokenRe.MatchString(k.Name):
		v.invalid(np, k.Name, "a "+what+" name "+httpTokenMsg)
	}
	vp := child(p, "value")
	switch {
	case len(k.Value) > api.MaxRegexLength:
		v.tooLong(vp, api.MaxRegexLength, "")
	case k.Regex:
		if _, err := regexp.Compile(k.Value); err != nil {
			v.invalid(vp, k.Value, "must be a valid regular expression (Go RE2 syntax): "+strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
	case k.Value == "":
		v.required(vp, "the exact value to match (or set regex: true with a pattern such as .+)")
	case strings.ContainsAny(k.Value, "\r\n\x00"):
		v.invalid(vp, k.Value, "must not contain CR, LF or NUL")
	}
}

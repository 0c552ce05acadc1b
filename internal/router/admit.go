package router

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Refusal says why a route is not served: Reason is a CamelCase word for
// status conditions, Message a sentence for people.
type Refusal struct {
	Reason  string
	Message string
}

// Refusal reasons.
const (
	ReasonHostClaimed = "HostAlreadyClaimed"
	ReasonPathClaimed = "PathAlreadyClaimed"
	ReasonInvalid     = "Invalid"
)

// Admit decides host ownership, as OpenShift's route admission does: the
// project of the oldest route (by Created, then Key) claiming a host owns
// it and every name below it ("*.app.example.com"); a wildcard claim
// "*.example.com" owns example.com and every name below it. A route of another project whose host overlaps an owned
// claim is refused, with the reason naming the owner; so is a route whose
// host or path is invalid, or that repeats the host and path of an older
// route. Routes of one project may share a host (with different paths).
// admitted keeps the input order; refused maps route keys to reasons.
func Admit(routes []RouteConfig) (admitted []RouteConfig, refused map[string]Refusal) {
	refused = map[string]Refusal{}
	order := make([]int, len(routes))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := routes[a].Created.Compare(routes[b].Created); c != 0 {
			return c
		}
		return cmp.Compare(routes[a].Key, routes[b].Key)
	})
	type claim struct{ host, path, project, key string }
	var claims []claim
	ok := make([]bool, len(routes))
outer:
	for _, i := range order {
		rc := routes[i]
		host, err := NormalizeHost(rc.Host)
		if err != nil {
			refused[rc.Key] = Refusal{ReasonInvalid, err.Error()}
			continue
		}
		path, err := normalizePath(rc.Path)
		if err != nil {
			refused[rc.Key] = Refusal{ReasonInvalid, err.Error()}
			continue
		}
		for _, c := range claims {
			if c.project != rc.Project && overlaps(c.host, host) {
				refused[rc.Key] = Refusal{ReasonHostClaimed, fmt.Sprintf("host %q is owned by project %q (route %s claims %q)", host, c.project, c.key, c.host)}
				continue outer
			}
			if c.host == host && c.path == path {
				refused[rc.Key] = Refusal{ReasonPathClaimed, fmt.Sprintf("host %q path %q is already served by route %s", host, path, c.key)}
				continue outer
			}
		}
		claims = append(claims, claim{host, path, rc.Project, rc.Key})
		ok[i] = true
	}
	for i, rc := range routes {
		if ok[i] {
			admitted = append(admitted, rc)
		}
	}
	return admitted, refused
}

// overlaps reports whether two normalized host claims can match a common
// name: equal hosts, or a wildcard covering the other claim.
func overlaps(a, b string) bool {
	if a == b {
		return true
	}
	return covers(a, b) || covers(b, a)
}

// covers reports whether wildcard claim w ("*.s") covers claim h: h is a
// name below s, or a wildcard of a name below s (or of s itself).
func covers(w, h string) bool {
	s, ok := strings.CutPrefix(w, "*.")
	if !ok {
		return false
	}
	h = strings.TrimPrefix(h, "*.")
	return h == s || strings.HasSuffix(h, "."+s)
}

package view

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// measuredRevision is what the router counted for one revision of one
// backend service of a route.
type measuredRevision struct {
	service  string // project/name
	revision int64
	requests int64
}

// measuredSplit reads the requests the router answered for route
// (project/name), by backend service and revision, from the text of
// /metrics (slipway_router_requests_total, every status class).
func measuredSplit(metrics, route string) []measuredRevision {
	sums := map[[2]string]int64{}
	for line := range strings.Lines(metrics) {
		rest, ok := strings.CutPrefix(line, "slipway_router_requests_total{")
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		l := parseLabels(labels)
		if l["route"] != route {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		sums[[2]string{l["service"], l["revision"]}] += int64(v)
	}
	var out []measuredRevision
	for k, n := range sums {
		rev, _ := strconv.ParseInt(k[1], 10, 64)
		out = append(out, measuredRevision{service: k[0], revision: rev, requests: n})
	}
	slices.SortFunc(out, func(a, b measuredRevision) int {
		return cmp.Or(cmp.Compare(a.service, b.service), cmp.Compare(a.revision, b.revision))
	})
	return out
}

// parseLabels reads `name="value",...` as Prometheus' text format writes
// it (values escape \\, \" and \n).
func parseLabels(s string) map[string]string {
	out := map[string]string{}
	for s != "" {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok {
			break
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				if rest[i] == 'n' {
					v.WriteByte('\n')
					continue
				}
			}
			v.WriteByte(rest[i])
		}
		out[strings.TrimPrefix(name, ",")] = v.String()
		if i >= len(rest) {
			break
		}
		s = rest[i+1:]
	}
	return out
}

// describeSplit writes the split the router measured for r next to its
// configured weights: per backend its share of the route's requests, and
// per revision its share of the backend's. metrics is the text of
// /metrics; ok is false when it could not be read.
func describeSplit(d *descWriter, r *api.Route, metrics string, ok bool) {
	if !ok {
		d.kv(0, "Measured Split", "<unavailable: cannot read the router's metrics>")
		return
	}
	project := cmp.Or(r.Metadata.Project, api.DefaultProject)
	m := measuredSplit(metrics, project+"/"+r.Metadata.Name)
	var total int64
	byService := map[string]int64{}
	for _, x := range m {
		total += x.requests
		byService[x.service] += x.requests
	}
	if total == 0 {
		d.kv(0, "Measured Split", "<no requests yet>")
		return
	}
	d.line(0, fmt.Sprintf("Measured Split:\t%d requests since the router started", total))
	pct := func(n, of int64) string { return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of)) }
	backends := append([]api.RouteBackend{r.Spec.To}, r.Spec.AlternateBackends...)
	seen := map[string]bool{}
	for _, b := range backends {
		key := project + "/" + b.Service
		seen[key] = true
		n := byService[key]
		d.kv(1, b.Service, fmt.Sprintf("weight %d | %d requests (%s)", valueOr(b.Weight, api.DefaultRouteWeight), n, pct(n, total)))
		for _, x := range m {
			if x.service == key && n > 0 {
				d.kv(2, fmt.Sprintf("revision %d", x.revision), fmt.Sprintf("%d requests (%s of %s)", x.requests, pct(x.requests, n), b.Service))
			}
		}
	}
	// Services the route no longer names keep their counts.
	for _, x := range m {
		if !seen[x.service] {
			d.kv(1, strings.TrimPrefix(x.service, project+"/")+fmt.Sprintf(" revision %d", x.revision), fmt.Sprintf("no longer a backend | %d requests (%s)", x.requests, pct(x.requests, total)))
		}
	}
}

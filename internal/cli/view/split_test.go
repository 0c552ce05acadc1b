package view

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

const sampleMetrics = `# HELP slipway_router_requests_total Requests answered by the router.
# TYPE slipway_router_requests_total counter
slipway_router_requests_total{class="2xx",revision="1",route="default/web",service="default/web"} 600
slipway_router_requests_total{class="5xx",revision="1",route="default/web",service="default/web"} 3
slipway_router_requests_total{class="2xx",revision="2",route="default/web",service="default/web"} 97
slipway_router_requests_total{class="2xx",revision="1",route="default/web",service="default/web2"} 300
slipway_router_requests_total{class="2xx",revision="1",route="default/other",service="default/web"} 5000
slipway_router_requests_total{class="2xx",revision="4",route="default/web",service="default/old"} 0
slipway_router_retries_total{revision="1",route="default/web",service="default/web"} 7
`

func TestDescribeRouteShowsMeasuredSplit(t *testing.T) {
	w90, w10 := int32(90), int32(10)
	rt := &api.Route{TypeMeta: api.TypeMeta{Kind: "Route"}, Metadata: api.ObjectMeta{Name: "web", Project: "default"}, Spec: api.RouteSpec{
		To: api.RouteBackend{Service: "web", Weight: &w90}, AlternateBackends: []api.RouteBackend{{Service: "web2", Weight: &w10}},
		Retries: &api.RouteRetries{Attempts: 2, OnStatus: []int32{503}},
		Mirror:  &api.RouteMirror{Service: "shadow", Percent: 5},
	}}
	var b strings.Builder
	Describe(&b, rt, nil, Metrics{Text: sampleMetrics, OK: true}, time.Now())
	out := alignless(b.String())
	i := strings.Index(out, "Retries:")
	if i < 0 {
		t.Fatalf("no Retries line in:\n%s", out)
	}
	want := `Retries: 2 on status [503]
Mirror: 5% of requests copied to shadow (answers dropped)
Measured Split: 1000 requests since the router started
  web: weight 90 | 700 requests (70.0%)
    revision 1: 603 requests (86.1% of web)
    revision 2: 97 requests (13.9% of web)
  web2: weight 10 | 300 requests (30.0%)
    revision 1: 300 requests (100.0% of web2)
  old revision 4: no longer a backend | 0 requests (0.0%)
Events:
  <none>
`
	if d := cmp.Diff(want, out[i:]); d != "" {
		t.Errorf("describe route (-want +got):\n%s", d)
	}

	b.Reset()
	Describe(&b, rt, nil, Metrics{}, time.Now())
	if !strings.Contains(alignless(b.String()), "Measured Split: <unavailable: cannot read the router's metrics>") {
		t.Errorf("without metrics:\n%s", b.String())
	}
}

// alignless undoes the tabwriter's alignment of values.
func alignless(s string) string {
	return regexp.MustCompile(`(?m):[ \t]+`).ReplaceAllString(s, ": ")
}

func TestParseLabels(t *testing.T) {
	got := parseLabels(`a="x",b="q\"uo\\te",c="l\nine"`)
	want := map[string]string{"a": "x", "b": `q"uo\te`, "c": "l\nine"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

package telemetry

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/router"
)

// fakeSource stands in for the router: the collector only reads counters.
type fakeSource struct {
	routes []router.RouteStats
	eps    map[netip.AddrPort]router.Snapshot
}

func (f fakeSource) AllStats() []router.RouteStats                        { return f.routes }
func (f fakeSource) AllEndpointStats() map[netip.AddrPort]router.Snapshot { return f.eps }

func TestMetricsExposition(t *testing.T) {
	lat := make([]int64, len(router.LatencyBounds)+1)
	lat[0] = 3 // three requests within the first bucket
	lat[len(lat)-1] = 1
	snap := router.Snapshot{Requests: [6]int64{0, 0, 7, 0, 1, 2}, UpstreamErrors: 4, Retries: 1, InFlight: 2, Latency: lat}
	total := snap
	total.Mirrored, total.MirrorsDropped = 5, 2
	src := fakeSource{
		routes: []router.RouteStats{{Route: "default/hello", Total: total, Revisions: []router.RevisionStats{{Service: "default/hello", Revision: 3, Snapshot: snap}}}},
		eps:    map[netip.AddrPort]router.Snapshot{netip.MustParseAddrPort("127.20.0.5:8080"): snap},
	}
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	out := string(b)
	first := router.LatencyBounds[0].Seconds()
	for _, want := range []string{
		`slipway_router_requests_total{class="2xx",revision="3",route="default/hello",service="default/hello"} 7`,
		`slipway_router_requests_total{class="5xx",revision="3",route="default/hello",service="default/hello"} 2`,
		`slipway_router_upstream_errors_total{revision="3",route="default/hello",service="default/hello"} 4`,
		`slipway_router_retries_total{revision="3",route="default/hello",service="default/hello"} 1`,
		`slipway_router_requests_in_flight{revision="3",route="default/hello",service="default/hello"} 2`,
		`slipway_router_request_duration_seconds_bucket{revision="3",route="default/hello",service="default/hello",le="` + strconv.FormatFloat(first, 'g', -1, 64) + `"} 3`,
		`slipway_router_request_duration_seconds_count{revision="3",route="default/hello",service="default/hello"} 4`,
		`slipway_router_endpoint_requests_total{class="4xx",endpoint="127.20.0.5:8080"} 1`,
		`slipway_router_endpoint_requests_in_flight{endpoint="127.20.0.5:8080"} 2`,
		`slipway_router_mirror_requests_total{outcome="sent",route="default/hello"} 5`,
		`slipway_router_mirror_requests_total{outcome="dropped",route="default/hello"} 2`,
		`go_goroutines`,
	} {
		if !strings.Contains(out, want+"\n") && !strings.Contains(out, want+" ") {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(out, `class="3xx"`) {
		t.Error("a status class with no requests was exported")
	}
}

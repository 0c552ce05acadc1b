// Package telemetry serves the router's counters in Prometheus' format:
// a collector that reads them at scrape time, so the request path pays
// nothing for metrics.
package telemetry

import (
	"net/http"
	"net/netip"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"slipway.dev/slipway/internal/router"
)

// Source is what the collector reads: the router's counters.
type Source interface {
	AllStats() []router.RouteStats
	AllEndpointStats() map[netip.AddrPort]router.Snapshot
}

var (
	revLabels = []string{"route", "service", "revision"}

	descRequests = prometheus.NewDesc("slipway_router_requests_total",
		"Requests answered by the router, by route, backend service, revision and status class (class \"none\": the client left first).",
		append(append([]string{}, revLabels...), "class"), nil)
	descUpstreamErrors = prometheus.NewDesc("slipway_router_upstream_errors_total",
		"Failed attempts to get a response from an endpoint (refused, reset, timed out), retried or not.", revLabels, nil)
	descRetries = prometheus.NewDesc("slipway_router_retries_total",
		"Requests retried on another endpoint.", revLabels, nil)
	descInFlight = prometheus.NewDesc("slipway_router_requests_in_flight",
		"Requests being served now.", revLabels, nil)
	descDuration = prometheus.NewDesc("slipway_router_request_duration_seconds",
		"Time from a request's arrival to the end of its response.", revLabels, nil)
	descMirrors = prometheus.NewDesc("slipway_router_mirror_requests_total",
		"Shadow copies of a route's requests (spec.mirror), by outcome: sent, or dropped because every mirror slot was taken.",
		[]string{"route", "outcome"}, nil)
	descEndpointRequests = prometheus.NewDesc("slipway_router_endpoint_requests_total",
		"Requests sent to an endpoint (pod address and port) by status class.", []string{"endpoint", "class"}, nil)
	descEndpointInFlight = prometheus.NewDesc("slipway_router_endpoint_requests_in_flight",
		"Requests in flight to an endpoint now.", []string{"endpoint"}, nil)
)

var classes = [6]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// Collector is a prometheus.Collector over a Source.
type Collector struct{ src Source }

// NewCollector returns a collector reading src at every scrape.
func NewCollector(src Source) *Collector { return &Collector{src: src} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRequests, descUpstreamErrors, descRetries, descInFlight, descDuration, descMirrors, descEndpointRequests, descEndpointInFlight} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, rs := range c.src.AllStats() {
		if t := rs.Total; t.Mirrored > 0 || t.MirrorsDropped > 0 {
			ch <- prometheus.MustNewConstMetric(descMirrors, prometheus.CounterValue, float64(t.Mirrored), rs.Route, "sent")
			ch <- prometheus.MustNewConstMetric(descMirrors, prometheus.CounterValue, float64(t.MirrorsDropped), rs.Route, "dropped")
		}
		for _, rev := range rs.Revisions {
			labels := []string{rs.Route, rev.Service, strconv.FormatInt(rev.Revision, 10)}
			for i, n := range rev.Requests {
				if n > 0 {
					ch <- prometheus.MustNewConstMetric(descRequests, prometheus.CounterValue, float64(n), append(labels, classes[i])...)
				}
			}
			ch <- prometheus.MustNewConstMetric(descUpstreamErrors, prometheus.CounterValue, float64(rev.UpstreamErrors), labels...)
			ch <- prometheus.MustNewConstMetric(descRetries, prometheus.CounterValue, float64(rev.Retries), labels...)
			ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(rev.InFlight), labels...)
			ch <- histogram(rev.Snapshot, labels)
		}
	}
	for ep, s := range c.src.AllEndpointStats() {
		e := ep.String()
		for i, n := range s.Requests {
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(descEndpointRequests, prometheus.CounterValue, float64(n), e, classes[i])
			}
		}
		ch <- prometheus.MustNewConstMetric(descEndpointInFlight, prometheus.GaugeValue, float64(s.InFlight), e)
	}
}

// histogram turns the router's latency buckets into a Prometheus one
// (cumulative counts; the sum is estimated from bucket bounds, since the
// router keeps counts, not totals).
func histogram(s router.Snapshot, labels []string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(router.LatencyBounds))
	var cum uint64
	var sum float64
	for i, n := range s.Latency {
		cum += uint64(n)
		if i < len(router.LatencyBounds) {
			b := router.LatencyBounds[i].Seconds()
			buckets[b] = cum
			sum += float64(n) * b
		} else {
			sum += float64(n) * router.LatencyBounds[len(router.LatencyBounds)-1].Seconds()
		}
	}
	return prometheus.MustNewConstHistogram(descDuration, cum, sum, buckets, labels...)
}

// Handler serves the router's metrics, extra's (the hand-over's: Generations)
// and the process's own (Go runtime, process) in Prometheus' text format.
func Handler(src Source, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

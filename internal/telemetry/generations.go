package telemetry

import "github.com/prometheus/client_golang/prometheus"

// GenerationStats is what a generation of `slipway up` knows of the
// hand-over that started it.
type GenerationStats struct {
	// Generation is this process's number on its data dir (1 for a first
	// start; each hand-over adds one).
	Generation int
	// Listeners is the number of listening sockets the previous
	// generation handed over.
	Listeners int
	// Handovers counts the hand-overs to this generation by outcome:
	// "clean" (the previous generation drained in time), "deadline" (it
	// cut what was left at its drain deadline) or "lost" (no report).
	Handovers map[string]int
	// Drained counts the previous generation's connections by how they
	// ended: "finished" (by themselves) or "cut" (at the deadline).
	Drained map[string]int
}

var (
	descGeneration = prometheus.NewDesc("slipway_generation",
		"This process's generation on its data dir: 1 on a first start, one more at each hand-over.", nil, nil)
	descHandoverListeners = prometheus.NewDesc("slipway_handover_listeners_total",
		"Listening sockets the previous generation handed over to this one.", nil, nil)
	descHandovers = prometheus.NewDesc("slipway_handovers_total",
		"Hand-overs to this generation by outcome: clean (the previous one drained in time), deadline (it cut what was left), lost (no report).",
		[]string{"outcome"}, nil)
	descDrained = prometheus.NewDesc("slipway_handover_drained_connections_total",
		"The previous generation's connections at its drain, by outcome: finished (ended by themselves) or cut (at the drain deadline).",
		[]string{"outcome"}, nil)
)

// Generations is a collector of the hand-over's counters, read from stats
// at every scrape.
type Generations struct{ stats func() GenerationStats }

// NewGenerations returns a collector over stats.
func NewGenerations(stats func() GenerationStats) *Generations { return &Generations{stats: stats} }

// Describe implements prometheus.Collector.
func (g *Generations) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGeneration, descHandoverListeners, descHandovers, descDrained} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (g *Generations) Collect(ch chan<- prometheus.Metric) {
	s := g.stats()
	ch <- prometheus.MustNewConstMetric(descGeneration, prometheus.GaugeValue, float64(s.Generation))
	ch <- prometheus.MustNewConstMetric(descHandoverListeners, prometheus.CounterValue, float64(s.Listeners))
	for _, o := range []string{"clean", "deadline", "lost"} {
		ch <- prometheus.MustNewConstMetric(descHandovers, prometheus.CounterValue, float64(s.Handovers[o]), o)
	}
	for _, o := range []string{"finished", "cut"} {
		ch <- prometheus.MustNewConstMetric(descDrained, prometheus.CounterValue, float64(s.Drained[o]), o)
	}
}

package telemetry

import (
	"context"
	"math"
	"sync"
	"time"

	"slipway.dev/slipway/internal/router"
)

// Span is how far back the in-process time series reaches, at one
// sample a second.
const Span = time.Hour

const slots = int(Span / time.Second)

// SlotBytes is what one second of one series costs: requests and errors
// as uint32, p99 as a uint16 on a logarithmic scale. A series (one route,
// backend and revision) is SlotBytes × 3,600 = 36,000 bytes for the hour,
// plus its previous cumulative snapshot; 100 routes × 3 revisions are
// about 11 MB. A series nobody served for an hour is dropped.
const SlotBytes = 4 + 4 + 2

// p99 is kept as round(log(p99/p99Unit)/log(p99Step)): 0.5 % steps from
// 100 µs to past 70 s in 16 bits; 0 means no request that second.
const (
	p99Unit = 100 * time.Microsecond
	p99Step = 1.005
)

func encodeP99(d time.Duration) uint16 {
	if d <= 0 {
		return 0
	}
	v := math.Round(math.Log(float64(d)/float64(p99Unit))/math.Log(p99Step)) + 1
	return uint16(min(max(v, 1), math.MaxUint16))
}

func decodeP99(v uint16) time.Duration {
	if v == 0 {
		return 0
	}
	return time.Duration(float64(p99Unit) * math.Pow(p99Step, float64(v-1)))
}

// SeriesKey names one series: a route's backend service at a revision.
type SeriesKey struct {
	Route, Service string
	Revision       int64
}

type series struct {
	req, errs []uint32
	p99       []uint16
	last      int64 // the unix second the slots are current to
	served    int64 // the unix second it last counted a request
	prev      router.Snapshot
	seen      bool
}

// StatsSource is what the series samples: the router's counters.
type StatsSource interface {
	AllStats() []router.RouteStats
}

// Series keeps the router's per-revision counters at 1 s resolution for
// the last hour, in bounded memory (SlotBytes per series per second), for
// the console's charts and `slipway top`. Sampling reads the router's
// counters as a scrape does, once a second: the request path does no
// more work with it than without.
type Series struct {
	src StatsSource
	mu  sync.RWMutex
	m   map[SeriesKey]*series
	now int64
}

// NewSeries returns a Series over src; Run samples it.
func NewSeries(src StatsSource) *Series { return &Series{src: src, m: map[SeriesKey]*series{}} }

// Run samples every second until ctx ends.
func (s *Series) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	s.Sample(time.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			s.Sample(now)
		}
	}
}

// errorClasses are the requests an error rate counts: no answer, 5xx.
func errorsOf(s router.Snapshot) int64 { return s.Requests[0] + s.Requests[5] }

// Sample records what the counters gained since the last sample in the
// second now falls in.
func (s *Series) Sample(now time.Time) {
	stats := s.src.AllStats()
	sec := now.Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = sec
	for _, rs := range stats {
		for _, rv := range rs.Revisions {
			k := SeriesKey{Route: rs.Route, Service: rv.Service, Revision: rv.Revision}
			x := s.m[k]
			if x == nil {
				x = &series{req: make([]uint32, slots), errs: make([]uint32, slots), p99: make([]uint16, slots), last: sec, served: sec}
				s.m[k] = x
			}
			if !x.seen { // the first sample is the baseline
				x.prev, x.seen = rv.Snapshot, true
				continue
			}
			d := rv.Snapshot.Sub(x.prev)
			x.prev = rv.Snapshot
			n := d.Total()
			x.advance(sec)
			if n <= 0 {
				continue
			}
			i := int(sec % int64(slots))
			x.req[i] += uint32(n)
			x.errs[i] += uint32(errorsOf(d))
			x.p99[i] = encodeP99(d.Quantile(0.99))
			x.served = sec
		}
	}
	for k, x := range s.m {
		if sec-x.served >= int64(slots) {
			delete(s.m, k)
		}
	}
}

// advance clears the slots of the seconds since the series was last
// written, which now belong to the new hour.
func (x *series) advance(sec int64) {
	if sec <= x.last {
		return
	}
	gap := min(sec-x.last, int64(slots))
	for j := int64(1); j <= gap; j++ {
		i := int((x.last + j) % int64(slots))
		x.req[i], x.errs[i], x.p99[i] = 0, 0, 0
	}
	x.last = sec
}

// Point is one step of a series: requests per second, the share of them
// that failed (5xx or no answer), and the p99 latency (the highest of
// the step's seconds).
type Point struct {
	T         time.Time
	RPS       float64
	ErrorRate float64
	P99       time.Duration
	Requests  int64
}

// Query sums the series match selects over the last window in steps of
// step (a multiple of a second), oldest first.
func (s *Series) Query(match func(SeriesKey) bool, window, step time.Duration) []Point {
	if step < time.Second {
		step = time.Second
	}
	window = min(window, Span)
	per := int64(step / time.Second)
	n := int64(window / step)
	s.mu.RLock()
	defer s.mu.RUnlock()
	end := s.now
	start := end - n*per + 1
	out := make([]Point, n)
	errs := make([]int64, n)
	for i := range out {
		out[i].T = time.Unix(start+int64(i)*per, 0)
	}
	for k, x := range s.m {
		if !match(k) {
			continue
		}
		for sec := max(start, x.last-int64(slots)+1); sec <= min(end, x.last); sec++ {
			i := int(sec % int64(slots))
			if x.req[i] == 0 {
				continue
			}
			p := &out[(sec-start)/per]
			p.Requests += int64(x.req[i])
			errs[(sec-start)/per] += int64(x.errs[i])
			p.P99 = max(p.P99, decodeP99(x.p99[i]))
		}
	}
	for i := range out {
		if out[i].Requests > 0 {
			out[i].RPS = float64(out[i].Requests) / step.Seconds()
			out[i].ErrorRate = float64(errs[i]) / float64(out[i].Requests)
		}
	}
	return out
}

// Len is the number of series kept.
func (s *Series) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.m)
}

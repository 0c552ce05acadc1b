package autoscale

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
)

// TestDecideProperties runs random evaluations of random specs against
// random load: replicas stay in [min, max], nothing changes while the
// load is within tolerance, and no scale-down comes sooner than the
// scale-down window after a higher recommendation.
func TestDecideProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 2026))
	for run := 0; run < 300; run++ {
		minR := int32(1 + rng.IntN(3))
		maxR := minR + int32(rng.IntN(20))
		window := int32(rng.IntN(120))
		target := 1 + rng.IntN(8)
		as := &api.Autoscaling{MinReplicas: &minR, MaxReplicas: maxR,
			Metrics:  []api.AutoscalingMetric{{Type: "concurrency", Target: api.Quantity(strconv.Itoa(target))}},
			Behavior: &api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: &window}}}
		cur := minR + int32(rng.IntN(int(maxR-minR)+1))
		var hist api.AutoscalingStatus
		now := t0
		var highs []api.ScaleRecommendation // every recommendation made
		for step := 0; step < 40; step++ {
			now = now.Add(time.Duration(1+rng.IntN(30)) * time.Second)
			inFlight := int64(rng.IntN(int(cur) * target * 3))
			d := Decide(as, Observations{Replicas: cur, Pods: readyPods(int(cur)), Router: &RouterSample{InFlight: inFlight}}, hist, now)
			if d.Replicas < minR || d.Replicas > maxR {
				t.Fatalf("run %d step %d: replicas %d outside [%d, %d]", run, step, d.Replicas, minR, maxR)
			}
			ratio := float64(inFlight) / float64(cur) / float64(target)
			if ratio >= 0.9 && ratio <= 1.1 && d.Replicas != cur {
				t.Fatalf("run %d step %d: ratio %.3f within tolerance, yet %d → %d", run, step, ratio, cur, d.Replicas)
			}
			if n := len(d.History.Recommendations); n > 0 {
				highs = append(highs, d.History.Recommendations[n-1])
			}
			if d.Replicas < cur {
				for _, r := range highs {
					if now.Sub(r.Time) < time.Duration(window)*time.Second && r.Replicas > d.Replicas {
						t.Fatalf("run %d step %d: scaled down to %d %v after a recommendation of %d (window %ds)", run, step, d.Replicas, now.Sub(r.Time), r.Replicas, window)
					}
				}
			}
			cur, hist = d.Replicas, d.History
		}
	}
}

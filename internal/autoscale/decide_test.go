package autoscale

import (
	"fmt"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func i32(n int32) *int32 { return &n }

// cpuAvg is the HPA docs' example metric: an average CPU value of 100m.
func cpuAvg(minR, maxR int32) *api.Autoscaling {
	return &api.Autoscaling{MinReplicas: i32(minR), MaxReplicas: maxR,
		Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetAverageValue: "100m"}}}
}

func concurrency(minR, maxR int32, target string) *api.Autoscaling {
	return &api.Autoscaling{MinReplicas: i32(minR), MaxReplicas: maxR,
		Metrics: []api.AutoscalingMetric{{Type: "concurrency", Target: api.Quantity(target)}}}
}

// usage makes ready pods with these CPU usages (millicores; -1: no metric).
func usage(ms ...float64) []PodSample {
	var out []PodSample
	for i, m := range ms {
		p := PodSample{Name: fmt.Sprintf("p%d", i), Ready: true, Limit: map[string]float64{"cpu": 1000}}
		if m >= 0 {
			p.Usage = map[string]float64{"cpu": m}
		}
		out = append(out, p)
	}
	return out
}

func unready(ps []PodSample, n int) []PodSample {
	for i := 0; i < n; i++ {
		ps = append(ps, PodSample{Name: fmt.Sprintf("u%d", i), Limit: map[string]float64{"cpu": 1000}})
	}
	return ps
}

func readyPods(n int) []PodSample { return usage(make([]float64, n)...) }

func recs(rs ...any) []api.ScaleRecommendation { // (age, replicas) pairs
	var out []api.ScaleRecommendation
	for i := 0; i < len(rs); i += 2 {
		out = append(out, api.ScaleRecommendation{Time: t0.Add(-rs[i].(time.Duration)), Replicas: int32(rs[i+1].(int))})
	}
	return out
}

func cond(st api.AutoscalingStatus, typ string) string {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c.Status + "/" + c.Reason
		}
	}
	return ""
}

func TestDecide(t *testing.T) {
	withBehavior := func(as *api.Autoscaling, b api.ScalingBehavior) *api.Autoscaling { as.Behavior = &b; return as }
	cases := []struct {
		name    string
		spec    *api.Autoscaling
		obs     Observations
		history api.AutoscalingStatus
		want    int32
		// wantConds are "Type=Status/Reason" checks; empty: not checked.
		wantConds map[string]string
	}{
		// The HPA docs: "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled".
		{name: "200m against 100m doubles", spec: cpuAvg(1, 10), obs: Observations{Replicas: 2, Pods: usage(200, 200)}, want: 4,
			wantConds: map[string]string{"ScalingActive": "True/ValidMetricFound", "ScalingLimited": "False/DesiredWithinRange", "AbleToScale": "True/ReadyForNewScale"}},
		// "if the current value is instead 50m, you'll halve the number of replicas" (no window to wait for here).
		{name: "50m against 100m halves", spec: withBehavior(cpuAvg(1, 10), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0)}}),
			obs: Observations{Replicas: 4, Pods: usage(50, 50, 50, 50)}, want: 2},
		// "If the ratio is sufficiently close to 1.0 (within a globally-configurable tolerance, 0.1 by default), the control plane skips any scaling action."
		{name: "ratio 1.08 within tolerance", spec: cpuAvg(1, 10), obs: Observations{Replicas: 3, Pods: usage(108, 108, 108)}, want: 3},
		{name: "ratio 0.92 within tolerance", spec: cpuAvg(1, 10), obs: Observations{Replicas: 3, Pods: usage(92, 92, 92)}, want: 3},
		{name: "ratio 1.11 beyond tolerance", spec: cpuAvg(1, 10), obs: Observations{Replicas: 10 - 1, Pods: usage(111, 111, 111, 111, 111, 111, 111, 111, 111)}, want: 10},
		{name: "ceil of the ratio", spec: cpuAvg(1, 10), obs: Observations{Replicas: 3, Pods: usage(150, 150, 150)}, want: 5},
		// Missing metrics: "assuming those pods were consuming 100% of the desired value in case of a scale down".
		{name: "missing counted at 100% on scale-down", spec: withBehavior(cpuAvg(1, 10), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0)}}),
			obs: Observations{Replicas: 4, Pods: usage(20, 20, -1, -1)}, want: 3}, // (20+20+100+100)/4 = 60: ceil(0.6×4) = 3, not ceil(0.2×2) = 1
		// "... and 0% in case of a scale up".
		{name: "missing counted at 0% on scale-up", spec: cpuAvg(1, 10), obs: Observations{Replicas: 4, Pods: usage(300, 300, -1, -1)}, want: 6}, // 600/4 = 150 %: ceil(1.5×4)
		{name: "missing at 0% damps scale-up", spec: cpuAvg(1, 10), obs: Observations{Replicas: 4, Pods: usage(200, -1, -1, -1)}, want: 4},       // 200/4 = 50: reverses direction, no scale
		// "any not-yet-ready pods ... the controller assumes they are consuming 0% of the desired metric" on a scale-up.
		{name: "unready at 0% on scale-up", spec: cpuAvg(1, 10), obs: Observations{Replicas: 4, Pods: unready(usage(300, 300), 2)}, want: 6},
		{name: "unready left out on scale-down", spec: withBehavior(cpuAvg(1, 10), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0)}}),
			obs: Observations{Replicas: 4, Pods: unready(usage(50, 50), 2)}, want: 1}, // the 2 ready pods: ceil(0.5×2), as the HPA (the unready ones carry nothing)
		// "If the new ratio reverses the scale direction, or is within the tolerance, the controller doesn't take any scaling action."
		{name: "recount within tolerance", spec: cpuAvg(1, 10), obs: Observations{Replicas: 3, Pods: usage(160, 160, -1)}, want: 3}, // 320/3 = 106.7
		// Utilization as a percentage of the limit.
		{name: "cpu utilization of the limit", spec: &api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 10, Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetUtilization: i32(50)}}},
			obs: Observations{Replicas: 2, Pods: usage(900, 900)}, want: 4}, // 90% of 1000m against 50%: ceil(1.8×2)
		// "If multiple metrics are specified ... the largest of the desired replica counts is chosen."
		{name: "the largest over metrics", spec: &api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 20,
			Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetAverageValue: "100m"}, {Type: "concurrency", Target: "4"}}},
			obs: Observations{Replicas: 2, Pods: usage(150, 150), Router: &RouterSample{InFlight: 24}}, want: 6},
		// A metric missing altogether: scale up on the others, never down.
		{name: "failed metric: no scale-down", spec: withBehavior(&api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 20,
			Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetUtilization: i32(50)}, {Type: "concurrency", Target: "4"}}}, api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0)}}),
			obs: Observations{Replicas: 4, Pods: usage(-1, -1, -1, -1), Router: &RouterSample{InFlight: 1}}, want: 4,
			wantConds: map[string]string{"ScalingActive": "False/FailedGetResourceMetric"}},
		{name: "failed metric: scale-up still", spec: &api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 20,
			Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetUtilization: i32(50)}, {Type: "concurrency", Target: "4"}}},
			obs: Observations{Replicas: 2, Pods: usage(-1, -1), Router: &RouterSample{InFlight: 16}}, want: 4},
		{name: "node reports no usage", spec: cpuAvg(1, 10), obs: Observations{Replicas: 2, Pods: usage(-1, -1)}, want: 2,
			wantConds: map[string]string{"ScalingActive": "False/FailedGetResourceMetric"}},
		// Concurrency, measured by the router, per ready pod.
		{name: "concurrency 8 per pod against 4", spec: concurrency(1, 10, "4"), obs: Observations{Replicas: 2, Pods: readyPods(2), Router: &RouterSample{InFlight: 16}}, want: 4},
		{name: "concurrency averages over ready pods", spec: concurrency(1, 10, "4"), obs: Observations{Replicas: 3, Pods: unready(readyPods(2), 1), Router: &RouterSample{InFlight: 16}}, want: 4},
		{name: "concurrency without routes", spec: concurrency(1, 10, "4"), obs: Observations{Replicas: 2, Pods: readyPods(2)}, want: 2,
			wantConds: map[string]string{"ScalingActive": "False/FailedGetRouterMetric"}},
		// Requests per second from the router's counter and the last sample.
		{name: "rps from the counter", spec: &api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 10, Metrics: []api.AutoscalingMetric{{Type: "requestsPerSecond", Target: "10"}}},
			obs:     Observations{Replicas: 2, Pods: readyPods(2), Router: &RouterSample{Requests: 1600}},
			history: api.AutoscalingStatus{Requests: &api.CounterSample{Time: t0.Add(-15 * time.Second), Count: 1000}}, want: 4}, // 40 rps over 2 pods: 20 each
		{name: "rps needs a previous sample", spec: &api.Autoscaling{MinReplicas: i32(1), MaxReplicas: 10, Metrics: []api.AutoscalingMetric{{Type: "requestsPerSecond", Target: "10"}}},
			obs: Observations{Replicas: 2, Pods: readyPods(2), Router: &RouterSample{Requests: 1600}}, want: 2,
			wantConds: map[string]string{"ScalingActive": "False/FailedGetRouterMetric"}},
		// Bounds.
		{name: "clamped to max", spec: concurrency(1, 5, "1"), obs: Observations{Replicas: 3, Pods: readyPods(3), Router: &RouterSample{InFlight: 30}}, want: 5,
			wantConds: map[string]string{"ScalingLimited": "True/TooManyReplicas"}},
		{name: "clamped to min", spec: withBehavior(concurrency(2, 5, "4"), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0)}}),
			obs: Observations{Replicas: 3, Pods: readyPods(3), Router: &RouterSample{InFlight: 0}}, want: 2,
			wantConds: map[string]string{"ScalingLimited": "True/TooFewReplicas"}},
		{name: "above a lowered max: back at once", spec: concurrency(1, 3, "4"), obs: Observations{Replicas: 6, Pods: readyPods(6), Router: &RouterSample{InFlight: 100}}, want: 3},
		{name: "below a raised min: up at once", spec: concurrency(4, 8, "4"), obs: Observations{Replicas: 2, Pods: readyPods(2)}, want: 4},
		{name: "zero replicas: scaling disabled", spec: concurrency(1, 8, "4"), obs: Observations{Replicas: 0, Router: &RouterSample{InFlight: 10}}, want: 0,
			wantConds: map[string]string{"ScalingActive": "False/ScalingDisabled"}},
		// Stabilization: "the highest recommendation within the window" on scale-down.
		{name: "scale-down held by the window", spec: concurrency(1, 10, "4"),
			obs: Observations{Replicas: 6, Pods: readyPods(6), Router: &RouterSample{}}, history: api.AutoscalingStatus{Recommendations: recs(299*time.Second, 6, 100*time.Second, 4)}, want: 6,
			wantConds: map[string]string{"AbleToScale": "True/ScaleDownStabilized"}},
		{name: "scale-down to the window's highest", spec: concurrency(1, 10, "4"),
			obs: Observations{Replicas: 6, Pods: readyPods(6), Router: &RouterSample{}}, history: api.AutoscalingStatus{Recommendations: recs(301*time.Second, 6, 100*time.Second, 4)}, want: 4},
		{name: "scale-up window keeps the lowest", spec: withBehavior(concurrency(1, 10, "4"), api.ScalingBehavior{ScaleUp: &api.ScalingRules{StabilizationWindowSeconds: i32(60)}}),
			obs: Observations{Replicas: 2, Pods: readyPods(2), Router: &RouterSample{InFlight: 32}}, history: api.AutoscalingStatus{Recommendations: recs(30*time.Second, 3)}, want: 3,
			wantConds: map[string]string{"AbleToScale": "True/ScaleUpStabilized"}},
		// Rate policies: the default scale-up is 4 pods or 100 % per 15 s, whichever is more.
		{name: "default scale-up: 4 pods from 1", spec: concurrency(1, 100, "1"), obs: Observations{Replicas: 1, Pods: readyPods(1), Router: &RouterSample{InFlight: 50}}, want: 5,
			wantConds: map[string]string{"ScalingLimited": "True/ScaleUpLimit"}},
		{name: "default scale-up: 100% from 10", spec: concurrency(1, 100, "1"), obs: Observations{Replicas: 10, Pods: readyPods(10), Router: &RouterSample{InFlight: 50}}, want: 20},
		{name: "scale-up within a period counts what was added", spec: concurrency(1, 100, "1"), obs: Observations{Replicas: 5, Pods: readyPods(5), Router: &RouterSample{InFlight: 50}},
			history: api.AutoscalingStatus{ScaleEvents: []api.ScaleEvent{{Time: t0.Add(-10 * time.Second), Delta: 4}}}, want: 5}, // started the period at 1: 1+4 = 5 = max(5, 2)
		// The docs' scale-down example: Pods 4 and Percent 10 per 60 s; at 80 replicas the 10 % (8 pods) wins.
		{name: "docs: 10% of 80 beats 4 pods", spec: withBehavior(concurrency(1, 100, "4"), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0),
			Policies: []api.ScalingPolicy{{Type: "Pods", Value: 4, PeriodSeconds: 60}, {Type: "Percent", Value: 10, PeriodSeconds: 60}}}}),
			obs: Observations{Replicas: 80, Pods: readyPods(80), Router: &RouterSample{}}, want: 72},
		{name: "docs: selectPolicy Min takes 4 pods", spec: withBehavior(concurrency(1, 100, "4"), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0), SelectPolicy: "Min",
			Policies: []api.ScalingPolicy{{Type: "Pods", Value: 4, PeriodSeconds: 60}, {Type: "Percent", Value: 10, PeriodSeconds: 60}}}}),
			obs: Observations{Replicas: 80, Pods: readyPods(80), Router: &RouterSample{}}, want: 76},
		{name: "scale-down disabled", spec: withBehavior(concurrency(1, 100, "4"), api.ScalingBehavior{ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(0), SelectPolicy: "Disabled"}}),
			obs: Observations{Replicas: 8, Pods: readyPods(8), Router: &RouterSample{}}, want: 8},
		{name: "tolerance per direction", spec: withBehavior(concurrency(1, 100, "10"), api.ScalingBehavior{ScaleUp: &api.ScalingRules{Tolerance: "0.5"}}),
			obs: Observations{Replicas: 2, Pods: readyPods(2), Router: &RouterSample{InFlight: 28}}, want: 2}, // ratio 1.4 within 0.5
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.spec, tc.obs, tc.history, t0)
			if d.Replicas != tc.want {
				t.Errorf("replicas %d, want %d (metrics %+v, conditions %+v)", d.Replicas, tc.want, d.History.CurrentMetrics, d.History.Conditions)
			}
			if (d.Replicas != tc.obs.Replicas) != (d.Reason != "") {
				t.Errorf("reason %q with replicas %d → %d", d.Reason, tc.obs.Replicas, d.Replicas)
			}
			for typ, want := range tc.wantConds {
				if got := cond(d.History, typ); got != want {
					t.Errorf("%s %s, want %s", typ, got, want)
				}
			}
		})
	}
}

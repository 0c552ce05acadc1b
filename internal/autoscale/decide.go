// Package autoscale makes an App's spec.replicas follow its load, with the
// semantics of Kubernetes' Horizontal Pod Autoscaler: a pure Decide over
// the App's autoscaling spec, what was observed and the history kept in
// status, and a controller that observes, decides and writes.
package autoscale

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"slipway.dev/slipway/internal/api"
)

// PodSample is one load-carrying pod as the autoscaler sees it: surge pods
// of a rollout, terminating pods and hook pods are not given to Decide.
type PodSample struct {
	Name  string
	Ready bool
	// Usage and Limit per resource (api.ResourceCPU in millicores,
	// api.ResourceMemory in bytes); a resource without usage is a missing
	// metric for this pod.
	Usage map[string]float64
	Limit map[string]float64
}

// RouterSample is the router's counters for the App, summed over its routes.
type RouterSample struct {
	InFlight int64
	Requests int64 // monotonic: requests answered since the router started
}

// Observations are what one evaluation saw.
type Observations struct {
	// Replicas is spec.replicas now (the HPA's currentReplicas).
	Replicas int32
	Pods     []PodSample
	// Router is nil when the router holds no counters for the App.
	Router *RouterSample
}

// Decision is what Decide chose. History is the status to write: the
// conditions, the metrics, and the recommendations and scale events the
// next evaluation's stabilization and rate limits need.
type Decision struct {
	Replicas int32
	History  api.AutoscalingStatus
	// Reason says why Replicas differs from the observed count ("" when it does not).
	Reason string
}

// Condition reasons, the HPA's words where it has them.
const (
	ReasonReadyForNewScale       = "ReadyForNewScale"
	ReasonScaleUpStabilized      = "ScaleUpStabilized"
	ReasonScaleDownStabilized    = "ScaleDownStabilized"
	ReasonValidMetricFound       = "ValidMetricFound"
	ReasonScalingDisabled        = "ScalingDisabled"
	ReasonFailedGetResource      = "FailedGetResourceMetric"
	ReasonFailedGetRouter        = "FailedGetRouterMetric"
	ReasonDesiredWithinRange     = "DesiredWithinRange"
	ReasonTooManyReplicas        = "TooManyReplicas"
	ReasonTooFewReplicas         = "TooFewReplicas"
	ReasonScaleUpLimit           = "ScaleUpLimit"
	ReasonScaleDownLimit         = "ScaleDownLimit"
	ReasonInvalidAutoscalingSpec = "InvalidSpec"
)

type rules struct {
	window    time.Duration
	policies  []api.ScalingPolicy
	selectPol string
	tolerance float64
}

// spec is an Autoscaling with its defaults resolved (records written
// before a default existed are read as if defaulted).
type spec struct {
	min, max  int32
	metrics   []api.AutoscalingMetric
	up, down  rules
	keepRecs  time.Duration
	keepScale time.Duration
}

func resolve(as *api.Autoscaling) spec {
	c := *as
	c.Behavior = nil
	if as.Behavior != nil {
		b := *as.Behavior
		c.Behavior = &b
		if b.ScaleUp != nil {
			r := *b.ScaleUp
			c.Behavior.ScaleUp = &r
		}
		if b.ScaleDown != nil {
			r := *b.ScaleDown
			c.Behavior.ScaleDown = &r
		}
	}
	app := &api.App{Spec: api.AppSpec{Autoscaling: &c}}
	api.SetDefaults(app)
	s := spec{min: *c.MinReplicas, max: c.MaxReplicas, metrics: c.Metrics,
		up: toRules(c.Behavior.ScaleUp), down: toRules(c.Behavior.ScaleDown)}
	s.keepRecs = max(s.up.window, s.down.window)
	for _, p := range append(slices.Clone(s.up.policies), s.down.policies...) {
		s.keepScale = max(s.keepScale, time.Duration(p.PeriodSeconds)*time.Second)
	}
	return s
}

func toRules(r *api.ScalingRules) rules {
	tol, err := r.Tolerance.Float64()
	if err != nil {
		tol, _ = api.DefaultTolerance.Float64()
	}
	return rules{window: time.Duration(*r.StabilizationWindowSeconds) * time.Second,
		policies: r.Policies, selectPol: r.SelectPolicy, tolerance: tol}
}

// Decide is one evaluation of the HPA's algorithm: per metric
// desired = ceil(current × value / target) (nothing within tolerance;
// missing metrics counted at 100 % of the target on a scale-down and 0 % on
// a scale-up, not-ready pods left out of the average and counted at 0 % on
// a scale-up), the maximum over metrics, stabilized over the windows
// (scale-down: the window's highest recommendation; scale-up: its lowest),
// limited by the rate policies, clamped to [minReplicas, maxReplicas].
func Decide(as *api.Autoscaling, obs Observations, history api.AutoscalingStatus, now time.Time) Decision {
	s := resolve(as)
	cur := obs.Replicas
	st := api.AutoscalingStatus{CurrentReplicas: cur, DesiredReplicas: cur, LastScaleTime: history.LastScaleTime,
		LastEvaluation: now, Requests: history.Requests}
	prevConds := history.Conditions
	set := func(typ, status, reason, msg string) {
		st.Conditions = setCondition(st.Conditions, prevConds, api.Condition{Type: typ, Status: status, Reason: reason, Message: msg}, now)
	}
	// History outside the windows is of no use to anyone.
	for _, r := range history.Recommendations {
		if now.Sub(r.Time) < s.keepRecs {
			st.Recommendations = append(st.Recommendations, r)
		}
	}
	for _, e := range history.ScaleEvents {
		if now.Sub(e.Time) < s.keepScale {
			st.ScaleEvents = append(st.ScaleEvents, e)
		}
	}
	d := Decision{Replicas: cur}
	finish := func(want int32, reason string) Decision {
		st.DesiredReplicas = want
		if want != cur {
			st.LastScaleTime = now
			st.ScaleEvents = append(st.ScaleEvents, api.ScaleEvent{Time: now, Delta: want - cur})
			d.Reason = reason
		}
		d.Replicas = want
		d.History = st
		return d
	}

	if cur == 0 {
		set(api.ConditionAbleToScale, api.ConditionTrue, ReasonReadyForNewScale, "")
		set(api.ConditionScalingActive, api.ConditionFalse, ReasonScalingDisabled, "scaling is disabled since the replica count of the app is zero")
		return finish(cur, "")
	}
	set(api.ConditionAbleToScale, api.ConditionTrue, ReasonReadyForNewScale, "recommended size matches current size")
	// Outside the bounds (they changed): back inside at once, whatever the metrics.
	if cur > s.max {
		st.CurrentMetrics, _, _, _ = evaluate(s, obs, &st, now)
		set(api.ConditionScalingActive, api.ConditionTrue, ReasonValidMetricFound, "")
		set(api.ConditionScalingLimited, api.ConditionTrue, ReasonTooManyReplicas, "the current replica count is above maxReplicas")
		return finish(s.max, "current number of replicas above maxReplicas")
	}
	if cur < s.min {
		st.CurrentMetrics, _, _, _ = evaluate(s, obs, &st, now)
		set(api.ConditionScalingActive, api.ConditionTrue, ReasonValidMetricFound, "")
		set(api.ConditionScalingLimited, api.ConditionTrue, ReasonTooFewReplicas, "the current replica count is below minReplicas")
		return finish(s.min, "current number of replicas below minReplicas")
	}

	metrics, desired, reason, failed := evaluate(s, obs, &st, now)
	st.CurrentMetrics = metrics
	if desired < 0 { // no metric could be computed
		set(api.ConditionScalingActive, api.ConditionFalse, failed.reason, failed.msg)
		set(api.ConditionScalingLimited, api.ConditionFalse, ReasonDesiredWithinRange, "the desired count is within the acceptable range")
		return finish(cur, "")
	}
	if failed.reason != "" {
		// As the HPA: with a metric missing, scale up on the others but never down.
		set(api.ConditionScalingActive, api.ConditionFalse, failed.reason, failed.msg)
		if desired < cur {
			desired = cur
		}
	} else {
		set(api.ConditionScalingActive, api.ConditionTrue, ReasonValidMetricFound, "the autoscaler was able to compute a replica count from "+reason)
	}

	// Stabilization over the recommendations of the windows, this one included.
	st.Recommendations = append(st.Recommendations, api.ScaleRecommendation{Time: now, Replicas: desired})
	upRec, downRec := desired, desired
	for _, r := range st.Recommendations {
		age := now.Sub(r.Time)
		if age < s.up.window {
			upRec = min(upRec, r.Replicas)
		}
		if age < s.down.window {
			downRec = max(downRec, r.Replicas)
		}
	}
	stabilized := max(cur, upRec)
	stabilized = min(stabilized, downRec)
	switch {
	case stabilized < desired:
		set(api.ConditionAbleToScale, api.ConditionTrue, ReasonScaleUpStabilized, "recent recommendations were lower than current one, applying the lowest recent recommendation")
	case stabilized > desired:
		set(api.ConditionAbleToScale, api.ConditionTrue, ReasonScaleDownStabilized, "recent recommendations were higher than current one, applying the highest recent recommendation")
	}

	want, limitReason, limitMsg := rateLimit(s, cur, stabilized, st.ScaleEvents, now)
	if limitReason != "" {
		set(api.ConditionScalingLimited, api.ConditionTrue, limitReason, limitMsg)
	} else {
		set(api.ConditionScalingLimited, api.ConditionFalse, ReasonDesiredWithinRange, "the desired count is within the acceptable range")
	}
	dir := "above"
	if want < cur {
		dir = "below"
	}
	return finish(want, reason+" "+dir+" target")
}

// rateLimit applies the policies of the direction and clamps to [min, max].
func rateLimit(s spec, cur, want int32, events []api.ScaleEvent, now time.Time) (int32, string, string) {
	switch {
	case want > cur:
		limit := upLimit(s.up, cur, events, now)
		if limit < s.max && want > limit {
			return limit, ReasonScaleUpLimit, "the desired replica count is increasing faster than the maximum scale rate"
		}
		if want > s.max {
			return s.max, ReasonTooManyReplicas, "the desired replica count is more than the maximum replica count"
		}
	case want < cur:
		limit := downLimit(s.down, cur, events, now)
		if limit > s.min && want < limit {
			return limit, ReasonScaleDownLimit, "the desired replica count is decreasing faster than the maximum scale rate"
		}
		if want < s.min {
			return s.min, ReasonTooFewReplicas, "the desired replica count is less than the minimum replica count"
		}
	}
	return want, "", ""
}

// changed sums the events' deltas of one sign within a period.
func changed(events []api.ScaleEvent, period time.Duration, now time.Time, up bool) int32 {
	var n int32
	for _, e := range events {
		if now.Sub(e.Time) < period && (e.Delta > 0) == up {
			n += e.Delta
		}
	}
	return n
}

func upLimit(r rules, cur int32, events []api.ScaleEvent, now time.Time) int32 {
	return cur + allowed(r, cur, events, now, true)
}

func downLimit(r rules, cur int32, events []api.ScaleEvent, now time.Time) int32 {
	return cur - allowed(r, cur, events, now, false)
}

// allowed is how many pods the policies let one direction add (up) or
// remove now: each policy counts from the replicas at the start of its
// period; Max takes the largest change, Min the smallest.
func allowed(r rules, cur int32, events []api.ScaleEvent, now time.Time, up bool) int32 {
	if r.selectPol == api.SelectPolicyDisabled || len(r.policies) == 0 {
		return 0
	}
	var best int32
	for i, p := range r.policies {
		start := cur - changed(events, time.Duration(p.PeriodSeconds)*time.Second, now, up)
		var l int32
		switch {
		case p.Type == api.ScalingPolicyPods && up:
			l = start + p.Value
		case p.Type == api.ScalingPolicyPods:
			l = start - p.Value
		case up:
			l = int32(math.Ceil(float64(start) * (1 + float64(p.Value)/100)))
		default:
			l = int32(math.Floor(float64(start) * (1 - float64(p.Value)/100)))
		}
		change := l - cur
		if !up {
			change = cur - l
		}
		if i == 0 || r.selectPol == api.SelectPolicyMin && change < best || r.selectPol != api.SelectPolicyMin && change > best {
			best = change
		}
	}
	return max(best, 0)
}

type failure struct{ reason, msg string }

// evaluate computes each metric's recommendation; desired is their maximum
// (-1 when none could be computed), reason names the metric that gave it.
func evaluate(s spec, obs Observations, st *api.AutoscalingStatus, now time.Time) ([]api.MetricStatus, int32, string, failure) {
	var out []api.MetricStatus
	desired, reason := int32(-1), ""
	var failed failure
	prevRequests := st.Requests
	for _, m := range s.metrics {
		var ms api.MetricStatus
		var n int32
		var err *failure
		switch m.Type {
		case api.AutoscaleCPU, api.AutoscaleMemory:
			ms, n, err = resourceMetric(s, m, obs)
		case api.AutoscaleConcurrency, api.AutoscaleRequestsPerSecond:
			ms, n, err = routerMetric(s, m, obs, prevRequests, now)
		}
		if err != nil {
			if failed.reason == "" {
				failed = *err
			}
			continue
		}
		ms.Desired = n
		out = append(out, ms)
		if n > desired {
			desired, reason = n, m.Type
		}
	}
	if obs.Router != nil {
		st.Requests = &api.CounterSample{Time: now, Count: obs.Router.Requests}
	}
	return out, desired, reason, failed
}

func ready(pods []PodSample) int32 {
	var n int32
	for _, p := range pods {
		if p.Ready {
			n++
		}
	}
	return n
}

// withinTolerance reports whether ratio needs no change.
func withinTolerance(s spec, ratio float64) bool {
	return ratio >= 1-s.down.tolerance && ratio <= 1+s.up.tolerance
}

// routerMetric: the router's count per ready pod against the target (the
// HPA's Pods metric with an average value; the router measures every pod
// it sends to, so there are no missing pods, and not-ready pods carry no
// traffic, so they are outside the average).
func routerMetric(s spec, m api.AutoscalingMetric, obs Observations, prev *api.CounterSample, now time.Time) (api.MetricStatus, int32, *failure) {
	ms := api.MetricStatus{Type: m.Type}
	target, err := m.Target.Float64()
	if err != nil || target <= 0 {
		return ms, 0, &failure{ReasonInvalidAutoscalingSpec, fmt.Sprintf("invalid target %q", m.Target)}
	}
	if obs.Router == nil {
		return ms, 0, &failure{ReasonFailedGetRouter, "the router has no counters for the app (no route reaches it)"}
	}
	nReady := ready(obs.Pods)
	if nReady == 0 {
		return ms, 0, &failure{ReasonFailedGetRouter, "no ready pod to average " + m.Type + " over"}
	}
	var total float64
	if m.Type == api.AutoscaleConcurrency {
		total = float64(obs.Router.InFlight)
	} else {
		if prev == nil || obs.Router.Requests < prev.Count || !now.After(prev.Time) {
			return ms, 0, &failure{ReasonFailedGetRouter, "no previous request count to measure requests per second from (first evaluation, or the router restarted)"}
		}
		total = float64(obs.Router.Requests-prev.Count) / now.Sub(prev.Time).Seconds()
	}
	avg := total / float64(nReady)
	ms.Value = strconv.FormatFloat(avg, 'f', 2, 64)
	ratio := avg / target
	if withinTolerance(s, ratio) {
		return ms, obs.Replicas, nil
	}
	return ms, ceil(ratio * float64(nReady)), nil
}

// resourceMetric is the HPA's resource metric over Pod usage.
func resourceMetric(s spec, m api.AutoscalingMetric, obs Observations) (api.MetricStatus, int32, *failure) {
	ms := api.MetricStatus{Type: m.Type}
	res := m.Type
	fail := func(msg string) (api.MetricStatus, int32, *failure) {
		return ms, 0, &failure{ReasonFailedGetResource, msg}
	}
	util := m.TargetUtilization != nil
	var target float64
	if util {
		target = float64(*m.TargetUtilization)
	} else {
		v, err := m.TargetAverageValue.Float64()
		if err != nil {
			return ms, 0, &failure{ReasonInvalidAutoscalingSpec, err.Error()}
		}
		if res == api.ResourceCPU {
			v *= 1000 // usage is in millicores
		}
		target = v
	}
	type sample struct{ usage, limit float64 }
	var counted []sample
	var missing, unready []PodSample
	for _, p := range obs.Pods {
		u, ok := p.Usage[res]
		switch {
		case !p.Ready:
			unready = append(unready, p)
		case !ok:
			missing = append(missing, p)
		default:
			l := p.Limit[res]
			if util && l <= 0 {
				return fail("missing " + res + " limit on pod " + p.Name + ": utilization is a percentage of the limit")
			}
			counted = append(counted, sample{u, l})
		}
	}
	if len(counted) == 0 {
		return fail("unable to get metrics for resource " + res + ": the runtime reports no usage for the app's pods (neither the process nor the Docker runtime does yet)")
	}
	value := func(ss []sample) float64 { // utilization percent, or average value
		var u, l float64
		for _, x := range ss {
			u, l = u+x.usage, l+x.limit
		}
		if util {
			return u * 100 / l
		}
		return u / float64(len(ss))
	}
	v := value(counted)
	ms.Value = strconv.FormatFloat(v, 'f', 0, 64)
	if util {
		ms.Value = ""
		pct := int32(math.Round(v))
		ms.Utilization = &pct
	}
	ratio := v / target
	if len(missing) == 0 && len(unready) == 0 {
		if withinTolerance(s, ratio) {
			return ms, obs.Replicas, nil
		}
		return ms, ceil(ratio * float64(len(counted))), nil
	}
	avgLimit := 0.0
	for _, x := range counted {
		avgLimit += x.limit
	}
	avgLimit /= float64(len(counted))
	limitOf := func(p PodSample) float64 {
		if l, ok := p.Limit[res]; ok && l > 0 {
			return l
		}
		return avgLimit
	}
	atTarget := func(p PodSample) sample {
		if util {
			l := limitOf(p)
			return sample{l * target / 100, l}
		}
		return sample{target, 0}
	}
	all := slices.Clone(counted)
	if ratio < 1 {
		for _, p := range missing {
			all = append(all, atTarget(p))
		}
	} else if ratio > 1 {
		for _, p := range append(slices.Clone(missing), unready...) {
			all = append(all, sample{0, limitOf(p)})
		}
	}
	newRatio := value(all) / target
	if withinTolerance(s, newRatio) || (ratio < 1) != (newRatio < 1) {
		return ms, obs.Replicas, nil
	}
	n := ceil(newRatio * float64(len(all)))
	// The HPA never lets the recount turn a scale into its opposite.
	if ratio > 1 && n < obs.Replicas || ratio < 1 && n > obs.Replicas {
		return ms, obs.Replicas, nil
	}
	return ms, n, nil
}

func ceil(f float64) int32 {
	// A ratio computed as 2.0000000001 from 200m/100m is 2.
	c := math.Ceil(f - 1e-9)
	if c > math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(c)
}

// setCondition sets c in conds, keeping the transition time of prev's
// condition of the same type when its status is unchanged.
func setCondition(conds, prev []api.Condition, c api.Condition, now time.Time) []api.Condition {
	c.LastTransitionTime = now
	for _, p := range prev {
		if p.Type == c.Type && p.Status == c.Status {
			c.LastTransitionTime = p.LastTransitionTime
		}
	}
	for i := range conds {
		if conds[i].Type == c.Type {
			conds[i] = c
			return conds
		}
	}
	return append(conds, c)
}

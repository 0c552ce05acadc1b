package api

import (
	"math/big"
	"time"
)

// Autoscaling metric types: cpu and memory are read from Pod status (the
// node's usage); concurrency and requestsPerSecond from the router, which
// counts every App's traffic itself.
const (
	AutoscaleCPU               = "cpu"
	AutoscaleMemory            = "memory"
	AutoscaleConcurrency       = "concurrency"
	AutoscaleRequestsPerSecond = "requestsPerSecond"
)

// Scaling policy types and select policies, as the HPA's.
const (
	ScalingPolicyPods    = "Pods"
	ScalingPolicyPercent = "Percent"
	SelectPolicyMax      = "Max"
	SelectPolicyMin      = "Min"
	SelectPolicyDisabled = "Disabled"
)

// Autoscaling condition types (status.autoscaling.conditions).
const (
	ConditionAbleToScale    = "AbleToScale"
	ConditionScalingActive  = "ScalingActive"
	ConditionScalingLimited = "ScalingLimited"
)

// Autoscaling defaults: Kubernetes' HPA's.
const (
	DefaultAutoscaleMinReplicas        int32 = 1
	DefaultAutoscaleIntervalSeconds    int32 = 15
	DefaultScaleUpStabilizationSeconds int32 = 0
	DefaultScaleDownStabilization      int32 = 300
	DefaultScalingPeriodSeconds        int32 = 15
	DefaultScaleUpPods                 int32 = 4
	DefaultScalingPercent              int32 = 100
	DefaultTolerance                         = Quantity("0.1")
	// MaxStabilizationWindowSeconds and MaxScalingPeriodSeconds are the HPA's bounds.
	MaxStabilizationWindowSeconds = 3600
	MaxScalingPeriodSeconds       = 1800
)

// Autoscaling makes spec.replicas follow the load (the autoscaler then owns
// spec.replicas).
type Autoscaling struct {
	// MinReplicas is the floor (default 1). 0 needs scale to zero, which is
	// not built yet: validation refuses it.
	MinReplicas *int32 `json:"minReplicas,omitempty"`
	// MaxReplicas is the ceiling (required).
	MaxReplicas int32 `json:"maxReplicas"`
	// IntervalSeconds is how often the autoscaler evaluates the App (default 15, at least 1).
	IntervalSeconds *int32              `json:"intervalSeconds,omitempty"`
	Metrics         []AutoscalingMetric `json:"metrics"`
	Behavior        *ScalingBehavior    `json:"behavior,omitempty"`
}

// AutoscalingMetric is one signal and its target per pod.
type AutoscalingMetric struct {
	Type string `json:"type"`
	// TargetUtilization (cpu, memory) is a percentage of the container's
	// limit (Slipway's containers have limits, no requests).
	TargetUtilization *int32 `json:"targetUtilization,omitempty"`
	// TargetAverageValue (cpu, memory) is an average per pod: "500m" CPU, "256Mi".
	TargetAverageValue Quantity `json:"targetAverageValue,omitempty"`
	// Target (concurrency, requestsPerSecond) is per ready pod: in-flight
	// requests, or requests per second.
	Target Quantity `json:"target,omitempty"`
}

// ScalingBehavior is the HPA's behavior: rules for each direction.
type ScalingBehavior struct {
	ScaleUp   *ScalingRules `json:"scaleUp,omitempty"`
	ScaleDown *ScalingRules `json:"scaleDown,omitempty"`
}

// ScalingRules bound one direction of scaling.
type ScalingRules struct {
	StabilizationWindowSeconds *int32          `json:"stabilizationWindowSeconds,omitempty"`
	SelectPolicy               string          `json:"selectPolicy,omitempty"`
	Policies                   []ScalingPolicy `json:"policies,omitempty"`
	// Tolerance is the share of the target within which nothing changes (default 0.1).
	Tolerance Quantity `json:"tolerance,omitempty"`
}

// ScalingPolicy allows a change of Value pods (or percent) per PeriodSeconds.
type ScalingPolicy struct {
	Type          string `json:"type"`
	Value         int32  `json:"value"`
	PeriodSeconds int32  `json:"periodSeconds"`
}

// AutoscalingStatus is written by the autoscaler only: what it saw, what it
// decided, and the history its next decision needs (so a restarted
// Slipway keeps the stabilization windows and rate limits).
type AutoscalingStatus struct {
	CurrentReplicas int32          `json:"currentReplicas"`
	DesiredReplicas int32          `json:"desiredReplicas"`
	CurrentMetrics  []MetricStatus `json:"currentMetrics,omitempty"`
	LastScaleTime   time.Time      `json:"lastScaleTime,omitzero"`
	LastEvaluation  time.Time      `json:"lastEvaluation,omitzero"`
	Conditions      []Condition    `json:"conditions,omitempty"`
	// Recommendations are the replica counts the metrics asked for, within
	// the longest stabilization window.
	Recommendations []ScaleRecommendation `json:"recommendations,omitempty"`
	// ScaleEvents are the scales made within the longest policy period.
	ScaleEvents []ScaleEvent `json:"scaleEvents,omitempty"`
	// Requests is the router's request count at the last evaluation (the
	// base of the next requestsPerSecond).
	Requests *CounterSample `json:"requests,omitempty"`
}

// MetricStatus is one metric's current value, per pod.
type MetricStatus struct {
	Type string `json:"type"`
	// Value is the average per pod (cpu in millicores, memory in bytes,
	// concurrency in requests, requestsPerSecond per second); Utilization
	// the percentage of the limit where the target is one.
	Value       string `json:"value,omitempty"`
	Utilization *int32 `json:"utilization,omitempty"`
	// Desired is the replica count this metric alone asks for.
	Desired int32 `json:"desired"`
}

// ScaleRecommendation is one evaluation's replica count.
type ScaleRecommendation struct {
	Time     time.Time `json:"time"`
	Replicas int32     `json:"replicas"`
}

// ScaleEvent is one scale: Delta pods added (negative: removed).
type ScaleEvent struct {
	Time  time.Time `json:"time"`
	Delta int32     `json:"delta"`
}

// CounterSample is a monotonic counter's value at a time.
type CounterSample struct {
	Time  time.Time `json:"time"`
	Count int64     `json:"count"`
}

// Float64 returns the quantity as a float (a tolerance, a target of 0.5
// requests).
func (q Quantity) Float64() (float64, error) {
	r, err := q.rat()
	if err != nil {
		return 0, err
	}
	f, _ := r.Float64()
	return f, nil
}

func defaultAutoscaling(a *Autoscaling) {
	if a == nil {
		return
	}
	if a.MinReplicas == nil {
		a.MinReplicas = valuePtr(DefaultAutoscaleMinReplicas)
	}
	if a.IntervalSeconds == nil {
		a.IntervalSeconds = valuePtr(DefaultAutoscaleIntervalSeconds)
	}
	if a.Behavior == nil {
		a.Behavior = &ScalingBehavior{}
	}
	if a.Behavior.ScaleUp == nil {
		a.Behavior.ScaleUp = &ScalingRules{}
	}
	if a.Behavior.ScaleDown == nil {
		a.Behavior.ScaleDown = &ScalingRules{}
	}
	up, down := a.Behavior.ScaleUp, a.Behavior.ScaleDown
	if up.StabilizationWindowSeconds == nil {
		up.StabilizationWindowSeconds = valuePtr(DefaultScaleUpStabilizationSeconds)
	}
	if down.StabilizationWindowSeconds == nil {
		down.StabilizationWindowSeconds = valuePtr(DefaultScaleDownStabilization)
	}
	if len(up.Policies) == 0 {
		up.Policies = []ScalingPolicy{
			{Type: ScalingPolicyPods, Value: DefaultScaleUpPods, PeriodSeconds: DefaultScalingPeriodSeconds},
			{Type: ScalingPolicyPercent, Value: DefaultScalingPercent, PeriodSeconds: DefaultScalingPeriodSeconds},
		}
	}
	if len(down.Policies) == 0 {
		down.Policies = []ScalingPolicy{{Type: ScalingPolicyPercent, Value: DefaultScalingPercent, PeriodSeconds: DefaultScalingPeriodSeconds}}
	}
	for _, r := range []*ScalingRules{up, down} {
		if r.SelectPolicy == "" {
			r.SelectPolicy = SelectPolicyMax
		}
		if r.Tolerance == "" {
			r.Tolerance = DefaultTolerance
		}
	}
}

func (v *validator) autoscaling(p string, a *Autoscaling) {
	if a == nil {
		return
	}
	maxOK := true
	switch {
	case a.MaxReplicas == 0:
		v.required(child(p, "maxReplicas"), "must be greater than 0")
		maxOK = false
	case a.MaxReplicas < 0:
		v.invalid(child(p, "maxReplicas"), a.MaxReplicas, "must be greater than 0")
		maxOK = false
	case a.MaxReplicas > MaxReplicas:
		v.max(child(p, "maxReplicas"), int64(a.MaxReplicas), MaxReplicas)
		maxOK = false
	}
	if m := a.MinReplicas; m != nil {
		switch {
		case *m == 0:
			v.invalid(child(p, "minReplicas"), *m, "must be at least 1: minReplicas 0 needs scale to zero, which Slipway does not do yet")
		case *m < 0:
			v.min(child(p, "minReplicas"), int64(*m), 1)
		case maxOK && *m > a.MaxReplicas:
			v.invalid(child(p, "minReplicas"), *m, "must be less than or equal to maxReplicas")
		}
	}
	if s := a.IntervalSeconds; s != nil {
		v.rangeOf(child(p, "intervalSeconds"), int64(*s), 1, MaxScalingPeriodSeconds)
	}
	mp := child(p, "metrics")
	if len(a.Metrics) == 0 {
		v.required(mp, "must specify at least one metric")
	}
	seen := map[string]bool{}
	for i := range a.Metrics {
		v.autoscalingMetric(index(mp, i), &a.Metrics[i], seen)
	}
	if b := a.Behavior; b != nil {
		bp := child(p, "behavior")
		v.scalingRules(child(bp, "scaleUp"), b.ScaleUp)
		v.scalingRules(child(bp, "scaleDown"), b.ScaleDown)
	}
}

func (v *validator) autoscalingMetric(p string, m *AutoscalingMetric, seen map[string]bool) {
	if !v.oneOf(child(p, "type"), m.Type, AutoscaleCPU, AutoscaleMemory, AutoscaleConcurrency, AutoscaleRequestsPerSecond) {
		return
	}
	if seen[m.Type] {
		v.duplicate(child(p, "type"), m.Type)
	}
	seen[m.Type] = true
	switch m.Type {
	case AutoscaleCPU, AutoscaleMemory:
		if m.Target != "" {
			v.forbidden(child(p, "target"), "may not be set for type "+m.Type+": use targetUtilization or targetAverageValue")
		}
		switch {
		case m.TargetUtilization == nil && m.TargetAverageValue == "":
			v.required(child(p, "targetUtilization"), "must set either a target utilization or a target average value")
		case m.TargetUtilization != nil && m.TargetAverageValue != "":
			v.forbidden(child(p, "targetAverageValue"), "may not set both a target utilization and a target average value")
		case m.TargetUtilization != nil:
			v.min(child(p, "targetUtilization"), int64(*m.TargetUtilization), 1)
		default:
			v.positiveQuantity(child(p, "targetAverageValue"), m.TargetAverageValue)
		}
	default:
		if m.TargetUtilization != nil {
			v.forbidden(child(p, "targetUtilization"), "may only be set for types cpu and memory")
		}
		if m.TargetAverageValue != "" {
			v.forbidden(child(p, "targetAverageValue"), "may only be set for types cpu and memory")
		}
		if m.Target == "" {
			v.required(child(p, "target"), "must set the target per ready pod")
		} else {
			v.positiveQuantity(child(p, "target"), m.Target)
		}
	}
}

func (v *validator) positiveQuantity(p string, q Quantity) {
	r, err := q.rat()
	switch {
	case err != nil:
		v.invalid(p, string(q), err.Error())
	case r.Sign() <= 0:
		v.invalid(p, string(q), "must be positive")
	}
}

func (v *validator) scalingRules(p string, r *ScalingRules) {
	if r == nil {
		return
	}
	if s := r.StabilizationWindowSeconds; s != nil {
		v.rangeOf(child(p, "stabilizationWindowSeconds"), int64(*s), 0, MaxStabilizationWindowSeconds)
	}
	if r.SelectPolicy != "" {
		v.oneOf(child(p, "selectPolicy"), r.SelectPolicy, SelectPolicyMax, SelectPolicyMin, SelectPolicyDisabled)
	}
	if r.Tolerance != "" {
		t, err := r.Tolerance.rat()
		switch {
		case err != nil:
			v.invalid(child(p, "tolerance"), string(r.Tolerance), err.Error())
		case t.Cmp(big.NewRat(1, 1)) >= 0:
			v.invalid(child(p, "tolerance"), string(r.Tolerance), "must be less than 1")
		}
	}
	pp := child(p, "policies")
	for i, pol := range r.Policies {
		ip := index(pp, i)
		v.oneOf(child(ip, "type"), pol.Type, ScalingPolicyPods, ScalingPolicyPercent)
		if pol.Value <= 0 {
			v.invalid(child(ip, "value"), pol.Value, "must be greater than zero")
		}
		if pol.PeriodSeconds <= 0 {
			v.invalid(child(ip, "periodSeconds"), pol.PeriodSeconds, "must be greater than zero")
		} else if pol.PeriodSeconds > MaxScalingPeriodSeconds {
			v.invalid(child(ip, "periodSeconds"), pol.PeriodSeconds, "must be less than or equal to 1800")
		}
	}
}

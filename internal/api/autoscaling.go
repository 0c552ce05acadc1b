package api

import (
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
	r, err := q.Rat()
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

package validation

import (
	"math/big"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) autoscaling(p string, a *api.Autoscaling) {
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
	case a.MaxReplicas > api.MaxReplicas:
		v.max(child(p, "maxReplicas"), int64(a.MaxReplicas), api.MaxReplicas)
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
		v.rangeOf(child(p, "intervalSeconds"), int64(*s), 1, api.MaxScalingPeriodSeconds)
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

func (v *validator) autoscalingMetric(p string, m *api.AutoscalingMetric, seen map[string]bool) {
	if !v.oneOf(child(p, "type"), m.Type, api.AutoscaleCPU, api.AutoscaleMemory, api.AutoscaleConcurrency, api.AutoscaleRequestsPerSecond) {
		return
	}
	if seen[m.Type] {
		v.duplicate(child(p, "type"), m.Type)
	}
	seen[m.Type] = true
	switch m.Type {
	case api.AutoscaleCPU, api.AutoscaleMemory:
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

func (v *validator) positiveQuantity(p string, q api.Quantity) {
	r, err := q.Rat()
	switch {
	case err != nil:
		v.invalid(p, string(q), err.Error())
	case r.Sign() <= 0:
		v.invalid(p, string(q), "must be positive")
	}
}

func (v *validator) scalingRules(p string, r *api.ScalingRules) {
	if r == nil {
		return
	}
	if s := r.StabilizationWindowSeconds; s != nil {
		v.rangeOf(child(p, "stabilizationWindowSeconds"), int64(*s), 0, api.MaxStabilizationWindowSeconds)
	}
	if r.SelectPolicy != "" {
		v.oneOf(child(p, "selectPolicy"), r.SelectPolicy, api.SelectPolicyMax, api.SelectPolicyMin, api.SelectPolicyDisabled)
	}
	if r.Tolerance != "" {
		t, err := r.Tolerance.Rat()
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
		v.oneOf(child(ip, "type"), pol.Type, api.ScalingPolicyPods, api.ScalingPolicyPercent)
		if pol.Value <= 0 {
			v.invalid(child(ip, "value"), pol.Value, "must be greater than zero")
		}
		if pol.PeriodSeconds <= 0 {
			v.invalid(child(ip, "periodSeconds"), pol.PeriodSeconds, "must be greater than zero")
		} else if pol.PeriodSeconds > api.MaxScalingPeriodSeconds {
			v.invalid(child(ip, "periodSeconds"), pol.PeriodSeconds, "must be less than or equal to 1800")
		}
	}
}

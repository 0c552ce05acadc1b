package validation_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/apitest"
	"slipway.dev/slipway/internal/api/validation"
)

func TestSetDefaultsAutoscaling(t *testing.T) {
	app := apitest.ValidApp()
	app.Spec.Autoscaling = &api.Autoscaling{MaxReplicas: 5, Metrics: []api.AutoscalingMetric{{Type: "concurrency", Target: "4"}}}
	api.SetDefaults(app)
	want := &api.Autoscaling{
		MinReplicas: i32(1), MaxReplicas: 5, IntervalSeconds: i32(15),
		Metrics: []api.AutoscalingMetric{{Type: "concurrency", Target: "4"}},
		Behavior: &api.ScalingBehavior{
			ScaleUp: &api.ScalingRules{StabilizationWindowSeconds: i32(0), SelectPolicy: "Max", Tolerance: "0.1",
				Policies: []api.ScalingPolicy{{Type: "Pods", Value: 4, PeriodSeconds: 15}, {Type: "Percent", Value: 100, PeriodSeconds: 15}}},
			ScaleDown: &api.ScalingRules{StabilizationWindowSeconds: i32(300), SelectPolicy: "Max", Tolerance: "0.1",
				Policies: []api.ScalingPolicy{{Type: "Percent", Value: 100, PeriodSeconds: 15}}},
		},
	}
	if diff := cmp.Diff(want, app.Spec.Autoscaling); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	again := *app.Spec.Autoscaling
	api.SetDefaults(app)
	if diff := cmp.Diff(&again, app.Spec.Autoscaling); diff != "" {
		t.Errorf("second SetDefaults changed (-want +got):\n%s", diff)
	}
	if errs := validation.Validate(app); len(errs) != 0 {
		t.Errorf("defaulted autoscaling invalid: %v", messages(errs))
	}
}

func TestValidateAutoscaling(t *testing.T) {
	cases := []struct {
		name string
		as   api.Autoscaling
		want []string
	}{
		{"no max, no metrics", api.Autoscaling{}, []string{
			"spec.autoscaling.maxReplicas: Required value: must be greater than 0",
			"spec.autoscaling.metrics: Required value: must specify at least one metric",
		}},
		{"min 0 is scale to zero, not built", api.Autoscaling{MinReplicas: i32(0), MaxReplicas: 3, Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetUtilization: i32(80)}}}, []string{
			"spec.autoscaling.minReplicas: Invalid value: 0: must be at least 1: minReplicas 0 needs scale to zero, which Slipway does not do yet",
		}},
		{"min above max", api.Autoscaling{MinReplicas: i32(4), MaxReplicas: 3, Metrics: []api.AutoscalingMetric{{Type: "cpu", TargetUtilization: i32(80)}}}, []string{
			"spec.autoscaling.minReplicas: Invalid value: 4: must be less than or equal to maxReplicas",
		}},
		{"interval below 1 s", api.Autoscaling{MaxReplicas: 3, IntervalSeconds: i32(0), Metrics: []api.AutoscalingMetric{{Type: "concurrency", Target: "2"}}}, []string{
			"spec.autoscaling.intervalSeconds: Invalid value: 0: must be between 1 and 1800, inclusive",
		}},
		{"metric errors, all at once", api.Autoscaling{MaxReplicas: 3, Metrics: []api.AutoscalingMetric{
			{Type: "gpu"},
			{Type: "cpu"},
			{Type: "memory", TargetUtilization: i32(50), TargetAverageValue: "256Mi"},
			{Type: "concurrency", TargetUtilization: i32(5)},
			{Type: "requestsPerSecond", Target: "0"},
			{Type: "requestsPerSecond", Target: "many"},
		}}, []string{
			`spec.autoscaling.metrics[0].type: Unsupported value: "gpu": supported values: "cpu", "memory", "concurrency", "requestsPerSecond"`,
			"spec.autoscaling.metrics[1].targetUtilization: Required value: must set either a target utilization or a target average value",
			"spec.autoscaling.metrics[2].targetAverageValue: Forbidden: may not set both a target utilization and a target average value",
			"spec.autoscaling.metrics[3].targetUtilization: Forbidden: may only be set for types cpu and memory",
			"spec.autoscaling.metrics[3].target: Required value: must set the target per ready pod",
			`spec.autoscaling.metrics[4].target: Invalid value: "0": must be positive`,
			`spec.autoscaling.metrics[5].type: Duplicate value: "requestsPerSecond"`,
			`spec.autoscaling.metrics[5].target: Invalid value: "many": must be a quantity such as 500m, 0.5, 2, 256Mi or 1G`,
		}},
		{"behavior", api.Autoscaling{MaxReplicas: 3, Metrics: []api.AutoscalingMetric{{Type: "concurrency", Target: "2"}},
			Behavior: &api.ScalingBehavior{
				ScaleUp: &api.ScalingRules{StabilizationWindowSeconds: i32(3601), SelectPolicy: "Most", Tolerance: "1",
					Policies: []api.ScalingPolicy{{Type: "Pods", Value: 0, PeriodSeconds: 1801}}},
				ScaleDown: &api.ScalingRules{Policies: []api.ScalingPolicy{{Type: "Replicas", Value: 1, PeriodSeconds: 0}}},
			}}, []string{
			"spec.autoscaling.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be between 0 and 3600, inclusive",
			`spec.autoscaling.behavior.scaleUp.selectPolicy: Unsupported value: "Most": supported values: "Max", "Min", "Disabled"`,
			`spec.autoscaling.behavior.scaleUp.tolerance: Invalid value: "1": must be less than 1`,
			"spec.autoscaling.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
			"spec.autoscaling.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
			`spec.autoscaling.behavior.scaleDown.policies[0].type: Unsupported value: "Replicas": supported values: "Pods", "Percent"`,
			"spec.autoscaling.behavior.scaleDown.policies[0].periodSeconds: Invalid value: 0: must be greater than zero",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			app := apitest.ValidApp()
			api.SetDefaults(app)
			as := tc.as
			app.Spec.Autoscaling = &as
			got := messages(validation.Validate(app))
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

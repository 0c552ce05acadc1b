package manifest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

const autoscaledApp = `apiVersion: slipway.dev/v1
kind: App
metadata:
  name: hello
spec:
  template:
    containers:
    - name: web
      command: [./hello]
  autoscaling:
    maxReplicas: 10
    intervalSeconds: 5
    metrics:
    - type: concurrency
      target: 4
    - type: cpu
      targetUtilization: 70
    behavior:
      scaleDown:
        stabilizationWindowSeconds: 60
        policies:
        - type: Pods
          value: 1
          periodSeconds: 30
`

func TestDecodeAutoscaling(t *testing.T) {
	docs, err := Decode("app.yaml", []byte(autoscaledApp))
	if err != nil {
		t.Fatal(err)
	}
	as := docs[0].Object.(*api.App).Spec.Autoscaling
	if as == nil {
		t.Fatal("spec.autoscaling lost")
	}
	seventy := int32(70)
	if diff := cmp.Diff([]api.AutoscalingMetric{{Type: "concurrency", Target: "4"}, {Type: "cpu", TargetUtilization: &seventy}}, as.Metrics); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	if got := *as.Behavior.ScaleDown.StabilizationWindowSeconds; got != 60 {
		t.Errorf("scaleDown window %d, want 60", got)
	}
	if got := *as.MinReplicas; got != 1 {
		t.Errorf("minReplicas defaulted to %d, want 1", got)
	}
}

func TestDecodeAutoscalingStrict(t *testing.T) {
	in := autoscaledApp + "    minReplica: 2\n"
	_, err := Decode("app.yaml", []byte(in))
	want := []Problem{{File: "app.yaml", Line: 25, Doc: 0, Kind: "App", Name: "hello", Field: "spec.autoscaling.minReplica", Message: `Unknown field: did you mean "minReplicas"?`}}
	if diff := cmp.Diff(want, problems(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

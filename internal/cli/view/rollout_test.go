package view

import (
	"strings"
	"testing"

	"slipway.dev/slipway/internal/api"
)

func rev(n int64, env ...string) *api.Revision {
	r := &api.Revision{Spec: api.RevisionSpec{Number: n, Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: []string{"./hello"}}}}}}
	for i := 0; i+1 < len(env); i += 2 {
		r.Spec.Template.Containers[0].Env = append(r.Spec.Template.Containers[0].Env, api.EnvVar{Name: env[i], Value: env[i+1]})
	}
	return r
}

func TestTemplateChange(t *testing.T) {
	restarted := rev(3, "VERSION", "v2")
	restarted.Spec.Template.Metadata.Annotations = map[string]string{RestartedAtAnnotation: "now"}
	cases := []struct {
		prev, cur *api.Revision
		want      string
	}{
		{nil, rev(1), "<initial>"},
		{rev(1, "VERSION", "v1"), rev(2, "VERSION", "v2"), "web env VERSION=v2"},
		{rev(2, "VERSION", "v2"), restarted, "restart"},
		{rev(1), rev(2), "template"},
	}
	for _, c := range cases {
		if got := templateChange(c.prev, c.cur); got != c.want {
			t.Errorf("templateChange = %q, want %q", got, c.want)
		}
	}
}

func TestRolloutLine(t *testing.T) {
	three := int32(3)
	a := &api.App{Metadata: api.ObjectMeta{Name: "hello", Generation: 2}, Spec: api.AppSpec{Replicas: &three}}
	a.Status = api.AppStatus{ObservedGeneration: 1}
	if line, done, _ := RolloutLine(a); done || !strings.Contains(line, "to be observed") {
		t.Errorf("unobserved change: %q done=%v", line, done)
	}
	a.Status = api.AppStatus{ObservedGeneration: 2, Phase: api.AppProgressing, LatestRevision: 2, ReadyReplicas: 1,
		Traffic: []api.TrafficTarget{{Revision: 1, Weight: 67}, {Revision: 2, Weight: 33}}}
	if line, done, _ := RolloutLine(a); done || line != "Waiting for the rollout of app/hello to finish: revision 2, 1 of 3 pods ready, traffic r1=67%,r2=33%" {
		t.Errorf("progressing: %q done=%v", line, done)
	}
	a.Status.Phase, a.Status.ReadyReplicas = api.AppHealthy, 3
	if line, done, failed := RolloutLine(a); !done || failed || line != "app/hello successfully rolled out (revision 2, 3/3 pods ready)" {
		t.Errorf("healthy: %q done=%v failed=%v", line, done, failed)
	}
	a.Status.Phase, a.Status.Message = api.AppDegraded, "revision 2 crash-looping"
	if _, done, failed := RolloutLine(a); !done || !failed {
		t.Errorf("degraded: done=%v failed=%v", done, failed)
	}
}

package replication

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
)

func pod(name string, phase string, ready bool, created int) *api.Pod {
	p := &api.Pod{Metadata: api.ObjectMeta{Name: name, CreationTimestamp: time.Unix(int64(created), 0)}}
	p.Status.Phase = phase
	st := api.ConditionFalse
	if ready {
		st = api.ConditionTrue
	}
	p.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: st}}
	return p
}

func rev(replicas int32) *api.Revision {
	return &api.Revision{Metadata: api.ObjectMeta{Name: "hello-1", Generation: 2}, Spec: api.RevisionSpec{App: "hello", Number: 1, Replicas: replicas}}
}

func TestPlan(t *testing.T) {
	cases := []struct {
		name        string
		replicas    int32
		pods        []*api.Pod
		wantCreate  int
		wantDelete  []string
		wantReady   int32
		wantCurrent int32
	}{
		{"empty scales up", 3, nil, 3, nil, 0, 0},
		{"at size does nothing", 2, []*api.Pod{pod("a", api.PodRunning, true, 1), pod("b", api.PodRunning, true, 2)}, 0, nil, 2, 2},
		{"missing pod recreated", 3, []*api.Pod{pod("a", api.PodRunning, true, 1), pod("b", api.PodPending, false, 2)}, 1, nil, 1, 2},
		{"failed pod replaced", 2, []*api.Pod{pod("a", api.PodRunning, true, 1), pod("b", api.PodFailed, false, 2)}, 1, []string{"b"}, 1, 1},
		{"succeeded pod replaced", 1, []*api.Pod{pod("a", api.PodSucceeded, false, 1)}, 1, []string{"a"}, 0, 0},
		{"scale down removes not-ready first, then newest", 2, []*api.Pod{
			pod("old-ready", api.PodRunning, true, 1),
			pod("new-ready", api.PodRunning, true, 5),
			pod("mid-ready", api.PodRunning, true, 3),
			pod("unready", api.PodRunning, false, 2),
		}, 0, []string{"unready", "new-ready"}, 2, 2},
		{"scale to zero", 0, []*api.Pod{pod("a", api.PodRunning, true, 1), pod("b", api.PodPending, false, 2)}, 0, []string{"b", "a"}, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Plan(rev(c.replicas), c.pods)
			if got.Create != c.wantCreate {
				t.Errorf("Create = %d, want %d", got.Create, c.wantCreate)
			}
			if diff := cmp.Diff(c.wantDelete, got.Delete); diff != "" {
				t.Errorf("Delete (-want +got):\n%s", diff)
			}
			if got.Status.ReadyReplicas != c.wantReady || got.Status.Replicas != c.wantCurrent {
				t.Errorf("status ready=%d replicas=%d, want %d %d", got.Status.ReadyReplicas, got.Status.Replicas, c.wantReady, c.wantCurrent)
			}
			if got.Status.ObservedGeneration != 2 {
				t.Errorf("observedGeneration = %d, want 2", got.Status.ObservedGeneration)
			}
		})
	}
}

func TestNewPod(t *testing.T) {
	r := rev(1)
	r.Metadata.Project = "shop"
	r.Spec.Template.Metadata.Labels = map[string]string{"tier": "web"}
	r.Spec.Template.Containers = []api.Container{{Name: "web", Command: []string{"x"}}}
	p := NewPod(r)
	if !strings.HasPrefix(p.Metadata.Name, "hello-1-") || len(p.Metadata.Name) != len("hello-1-")+5 {
		t.Fatalf("pod name %q, want hello-1-<5 chars>", p.Metadata.Name)
	}
	want := map[string]string{"tier": "web", "app": "hello", "revision": "1"}
	if diff := cmp.Diff(want, p.Metadata.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if p.Metadata.Project != "shop" || p.Spec.App != "hello" || p.Spec.Revision != 1 || len(p.Spec.Containers) != 1 {
		t.Errorf("pod %+v", p)
	}
	if errs := validation.Validate(p); len(errs) != 0 {
		t.Errorf("generated pod is invalid: %v", errs)
	}
}

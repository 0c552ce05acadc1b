package replication

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// TestReconcileIgnoresHookPods: a rollout hook's pod that names a revision
// (and even carries its labels) is neither counted among its replicas nor
// deleted when the revision scales, finishes or goes away.
func TestReconcileIgnoresHookPods(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	c := &Controller{Reg: reg, Events: &events.Recorder{Reg: reg, Source: "replication", Clock: clock.Real{}}, Log: nil}
	r := rev(1)
	r.Spec.Template.Containers = []api.Container{{Name: "web", Command: []string{"x"}}}
	if _, err := reg.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	hook := &api.Pod{
		Metadata: api.ObjectMeta{Name: "hello-1-hook-pre", Labels: map[string]string{
			api.LabelApp: "hello", api.LabelRevision: "1", api.LabelHook: "pre"}},
		Spec: api.PodSpec{App: "hello", Revision: 1, RestartPolicy: api.RestartNever, Containers: r.Spec.Template.Containers},
	}
	o, err := reg.Create(ctx, hook)
	if err != nil {
		t.Fatal(err)
	}
	// A finished hook: Plan would replace (delete) a Succeeded replica.
	hook = o.(*api.Pod)
	hook.Status.Phase = api.PodSucceeded
	if _, err := reg.UpdateStatus(ctx, hook); err != nil {
		t.Fatal(err)
	}
	key := controller.Key{Project: api.DefaultProject, Name: "hello-1"}
	podNames := func() []string {
		objs, _, err := reg.List(ctx, podKind, api.DefaultProject, registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, o := range objs {
			if !api.IsHookPod(o.(*api.Pod)) {
				names = append(names, "replica")
			} else {
				names = append(names, o.GetMeta().Name)
			}
		}
		slices.Sort(names) // replicas have random names
		return names
	}
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"hello-1-hook-pre", "replica"}, podNames()); diff != "" {
		t.Errorf("pods after reconcile (-want +got):\n%s", diff)
	}
	if _, err := c.Reconcile(ctx, key); err != nil { // sees the replica it made
		t.Fatal(err)
	}
	got, err := reg.Get(ctx, revisionKind, api.DefaultProject, "hello-1")
	if err != nil {
		t.Fatal(err)
	}
	if s := got.(*api.Revision).Status; s.Replicas != 1 {
		t.Errorf("revision counts %d replicas, want 1 (the hook's pod is not one)", s.Replicas)
	}
	if _, err := reg.Delete(ctx, revisionKind, api.DefaultProject, "hello-1", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Reconcile(ctx, key); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"hello-1-hook-pre"}, podNames()); diff != "" {
		t.Errorf("pods after the revision went (-want +got):\n%s", diff)
	}
}

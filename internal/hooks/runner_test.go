package hooks

import (
	"context"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

// testApp is an App with a pre hook, stored with its revision n.
func testApp(t *testing.T, reg *registry.Registry, hook *api.Hook, n int64) (*api.App, *api.Revision) {
	t.Helper()
	ctx := context.Background()
	grace := int64(1)
	tmpl := api.PodTemplate{
		Metadata: api.TemplateMeta{Labels: map[string]string{"tier": "web"}},
		Containers: []api.Container{{
			Name: "web", Image: "shop:2", Command: []string{"./server"}, WorkingDir: "/srv",
			Env:            []api.EnvVar{{Name: "DB_URL", Value: "postgres://db"}, {Name: "MODE", Value: "serve"}},
			Ports:          []api.ContainerPort{{Name: "http", Port: 8080}},
			ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.FromString("http")}},
			Resources:      api.ResourceRequirements{Limits: api.ResourceList{api.ResourceMemory: "64Mi"}},
		}, {Name: "sidecar", Command: []string{"./proxy"}}},
		TerminationGracePeriodSeconds: &grace,
	}
	app := &api.App{
		Metadata: api.ObjectMeta{Name: "shop"},
		Spec:     api.AppSpec{Template: tmpl, Strategy: api.Strategy{Hooks: &api.Hooks{Pre: hook}}},
	}
	o, err := reg.Create(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	app = o.(*api.App)
	rev := &api.Revision{
		Metadata: api.ObjectMeta{Name: "shop-" + strconv.FormatInt(n, 10), Labels: map[string]string{api.LabelApp: "shop"}},
		Spec:     api.RevisionSpec{App: "shop", Number: n, Template: tmpl},
	}
	o, err = reg.Create(ctx, rev)
	if err != nil {
		t.Fatal(err)
	}
	return app, o.(*api.Revision)
}

func TestNewPod(t *testing.T) {
	reg := newRegistry(t)
	hook := &api.Hook{Command: []string{"./migrate", "up"}, Env: []api.EnvVar{{Name: "MODE", Value: "migrate"}}, TimeoutSeconds: 120, FailurePolicy: api.HookAbort}
	app, rev := testApp(t, reg, hook, 7)
	pod, err := NewPod(app, rev, Pre, 2)
	if err != nil {
		t.Fatal(err)
	}
	grace, deadline := int64(1), int64(120)
	want := &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Pod"},
		Metadata: api.ObjectMeta{Name: "shop-7-hook-pre-2", Project: "default", Labels: map[string]string{
			"slipway.dev/hook": "pre", "slipway.dev/hook-app": "shop", "slipway.dev/hook-revision": "7", "slipway.dev/hook-attempt": "2",
		}},
		Spec: api.PodSpec{
			App: "shop", Revision: 7, RestartPolicy: api.RestartNever, ActiveDeadlineSeconds: &deadline, TerminationGracePeriodSeconds: &grace,
			Containers: []api.Container{{
				Name: "hook", Image: "shop:2", Command: []string{"./migrate", "up"}, WorkingDir: "/srv",
				// The hook's MODE wins over the template's; no ports, no probes.
				Env:       []api.EnvVar{{Name: "SLIPWAY_HOOK", Value: "pre"}, {Name: "DB_URL", Value: "postgres://db"}, {Name: "MODE", Value: "migrate"}},
				Resources: api.ResourceRequirements{Limits: api.ResourceList{api.ResourceMemory: "64Mi"}},
			}},
		},
	}
	if diff := cmp.Diff(want, pod); diff != "" {
		t.Errorf("hook pod (-want +got):\n%s", diff)
	}
	if errs := validation.Validate(pod); len(errs) != 0 {
		t.Errorf("hook pod is invalid: %v", errs)
	}

	for _, tc := range []struct {
		name    string
		app     *api.App
		rev     *api.Revision
		kind    string
		attempt int
		want    string
	}{
		{"no such hook", app, rev, Post, 1, "app shop has no post hook"},
		{"attempt 0", app, rev, Pre, 0, "hook attempt 0: attempts count from 1"},
		{"name too long", func() *api.App {
			a := *app
			a.Metadata.Name = strings.Repeat("a", 40)
			return &a
		}(), func() *api.Revision {
			r := *rev
			r.Spec.Number = 1234567890123
			return &r
		}(), Pre, 1, `hook pod name "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-1234567890123-hook-pre-1" is longer than 63 characters: shorten the app's name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewPod(tc.app, tc.rev, tc.kind, tc.attempt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestEnsureIsIdempotent: calling Ensure again, from the same Runner or a
// new one (a restarted Slipway), finds the run's pod and creates no other.
func TestEnsureIsIdempotent(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	app, rev := testApp(t, reg, &api.Hook{Command: []string{"./migrate"}, FailurePolicy: api.HookAbort}, 3)
	events := &events.Recorder{Reg: reg, Source: "deploy", Clock: clock.Real{}}
	r := &Runner{Reg: reg, Events: events}
	first, err := r.Ensure(ctx, app, rev, Pre, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := Status{Hook: Pre, Attempt: 1, Pod: "shop-3-hook-pre-1", Phase: Pending, Message: "waiting for the node to start the hook's pod"}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Errorf("first Ensure (-want +got):\n%s", diff)
	}
	o, err := reg.Get(ctx, podKind, "default", "shop-3-hook-pre-1")
	if err != nil {
		t.Fatal(err)
	}
	uid := o.GetMeta().UID
	for range 3 {
		again, err := (&Runner{Reg: reg}).Ensure(ctx, app, rev, Pre, 1)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, again); diff != "" {
			t.Errorf("later Ensure (-want +got):\n%s", diff)
		}
	}
	objs, _, err := reg.List(ctx, podKind, "default", registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetMeta().UID != uid {
		t.Errorf("%d pods after 4 Ensure calls, want the first one only", len(objs))
	}
	evs, _, _ := reg.List(ctx, eventKind, "default", registry.ListOptions{})
	var msgs []string
	for _, e := range evs {
		if ev := e.(*api.Event); ev.Reason == "HookStarted" {
			msgs = append(msgs, ev.Message)
		}
	}
	if diff := cmp.Diff([]string{"started the pre hook of revision 3 (attempt 1) in pod shop-3-hook-pre-1"}, msgs); diff != "" {
		t.Errorf("HookStarted events (-want +got):\n%s", diff)
	}

	// A pod of that name that is not this hook's is an error, not adopted.
	other := &api.Pod{Metadata: api.ObjectMeta{Name: "shop-3-hook-pre-2"}, Spec: api.PodSpec{Containers: []api.Container{{Name: "x", Command: []string{"x"}}}}}
	if _, err := reg.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	_, err = r.Ensure(ctx, app, rev, Pre, 2)
	if !api.IsConflict(err) || !strings.Contains(err.Error(), "pod shop-3-hook-pre-2 exists and is not the pre hook of revision 3 of app shop") {
		t.Errorf("err = %v, want a conflict naming the pod", err)
	}
}

var eventKind, _ = api.LookupKind("Event")

func hookPod(name, rev, phase string) *api.Pod {
	return &api.Pod{
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{api.LabelHook: "pre", LabelApp: "shop", LabelRevision: rev}},
		Status:   api.PodStatus{Phase: phase},
	}
}

func TestPlanCleanup(t *testing.T) {
	pods := []*api.Pod{
		hookPod("shop-1-hook-pre-1", "1", api.PodSucceeded),
		hookPod("shop-2-hook-pre-1", "2", api.PodFailed),
		hookPod("shop-2-hook-pre-2", "2", api.PodSucceeded),
		hookPod("shop-3-hook-post-1", "3", api.PodRunning), // never a running one
		hookPod("shop-4-hook-pre-1", "4", api.PodSucceeded),
		hookPod("shop-5-hook-pre-1", "5", api.PodFailed),
		hookPod("shop-6-hook-pre-1", "6", api.PodSucceeded),
	}
	for _, tc := range []struct {
		name   string
		latest int64
		keep   int
		want   []string
	}{
		{"keep 2", 6, 2, []string{"shop-1-hook-pre-1", "shop-2-hook-pre-1", "shop-2-hook-pre-2", "shop-4-hook-pre-1"}},
		{"latest revision always kept", 2, 1, []string{"shop-1-hook-pre-1", "shop-4-hook-pre-1", "shop-5-hook-pre-1"}},
		{"keep all", 6, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, PlanCleanup(pods, tc.latest, tc.keep)); diff != "" {
				t.Errorf("doomed (-want +got):\n%s", diff)
			}
		})
	}
}

// TestObserveCleanupDeleteAll: Observe lists a hook's runs in order;
// Cleanup and DeleteAll remove hook pods only, never a replica.
func TestObserveCleanupDeleteAll(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	r := &Runner{Reg: reg}
	app, _ := testApp(t, reg, &api.Hook{Command: []string{"./migrate"}, FailurePolicy: api.HookRetry}, 1)
	var revs []*api.Revision
	for n := int64(1); n <= 4; n++ {
		rev := &api.Revision{
			Metadata: api.ObjectMeta{Name: "shop-x" + strconv.FormatInt(n, 10)},
			Spec:     api.RevisionSpec{App: "shop", Number: n, Template: app.Spec.Template},
		}
		revs = append(revs, rev)
		for attempt := 1; attempt <= 2; attempt++ {
			if _, err := r.Ensure(ctx, app, rev, Pre, attempt); err != nil {
				t.Fatal(err)
			}
			finish(t, reg, PodName("shop", n, Pre, attempt), api.PodFailed)
		}
	}
	replica := &api.Pod{Metadata: api.ObjectMeta{Name: "shop-1-abcde", Labels: map[string]string{api.LabelApp: "shop", api.LabelRevision: "1"}},
		Spec: api.PodSpec{App: "shop", Revision: 1, Containers: app.Spec.Template.Containers}}
	if _, err := reg.Create(ctx, replica); err != nil {
		t.Fatal(err)
	}

	runs, err := r.Observe(ctx, "default", "shop", 2, Pre)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range runs {
		got = append(got, s.Pod+" "+s.Phase)
	}
	if diff := cmp.Diff([]string{"shop-2-hook-pre-1 Failed", "shop-2-hook-pre-2 Failed"}, got); diff != "" {
		t.Errorf("Observe (-want +got):\n%s", diff)
	}

	app.Status.LatestRevision = 4
	deleted, err := r.Cleanup(ctx, app, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"shop-1-hook-pre-1", "shop-1-hook-pre-2", "shop-2-hook-pre-1", "shop-2-hook-pre-2"}
	if diff := cmp.Diff(want, deleted); diff != "" {
		t.Errorf("Cleanup deleted (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"shop-1-abcde", "shop-3-hook-pre-1", "shop-3-hook-pre-2", "shop-4-hook-pre-1", "shop-4-hook-pre-2"}, podNames(t, reg)); diff != "" {
		t.Errorf("pods left (-want +got):\n%s", diff)
	}
	if _, err := r.DeleteAll(ctx, "default", "shop"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"shop-1-abcde"}, podNames(t, reg)); diff != "" {
		t.Errorf("pods left after DeleteAll (-want +got):\n%s", diff)
	}
}

func finish(t *testing.T, reg *registry.Registry, name, phase string) {
	t.Helper()
	o, err := reg.Get(context.Background(), podKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	p := o.(*api.Pod)
	p.Status.Phase = phase
	if _, err := reg.UpdateStatus(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

func podNames(t *testing.T, reg *registry.Registry) []string {
	t.Helper()
	objs, _, err := reg.List(context.Background(), podKind, "default", registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetMeta().Name)
	}
	slices.Sort(names)
	return names
}

// TestEnsureShowsTheLogTheNodeKept: a Runner reads Pods only; the last log
// lines of an ended run are those the node kept in its termination.
func TestEnsureShowsTheLogTheNodeKept(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	app, rev := testApp(t, reg, &api.Hook{Command: []string{"./migrate"}, FailurePolicy: api.HookAbort}, 2)
	r := &Runner{Reg: reg}
	if _, err := r.Ensure(ctx, app, rev, Pre, 1); err != nil {
		t.Fatal(err)
	}
	o, err := reg.Get(ctx, podKind, "default", "shop-2-hook-pre-1")
	if err != nil {
		t.Fatal(err)
	}
	p := o.(*api.Pod)
	p.Status.Phase = api.PodFailed
	p.Status.ContainerStatuses = []api.ContainerStatus{{Name: ContainerName, State: api.ContainerState{Terminated: &api.ContainerStateTerminated{
		ExitCode: 4, Reason: "Error", LogTail: "connecting\nERROR: table exists"}}}}
	if _, err := reg.UpdateStatus(ctx, p); err != nil {
		t.Fatal(err)
	}
	st, err := r.Ensure(ctx, app, rev, Pre, 1)
	if err != nil {
		t.Fatal(err)
	}
	if want := "exit code 4; last log lines:\nconnecting\nERROR: table exists"; st.Phase != Failed || st.Message != want {
		t.Errorf("status %+v, want Failed with message %q", st, want)
	}
	runs, err := r.Observe(ctx, "default", "shop", 2, Pre)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Message != st.Message {
		t.Errorf("Observe %+v, want the same run and message", runs)
	}
}

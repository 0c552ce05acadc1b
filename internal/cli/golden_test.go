package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// golden compares got with testdata/golden/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("output differs from %s (-want +got):\n%s", path, diff)
	}
}

// goldenNow is the time the golden objects are printed at.
var goldenNow = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

// goldenObjects are an app in the middle of a canary, a settled one, and
// the service and route in front of them, as the server would answer.
func goldenObjects() []api.Object {
	created := goldenNow.Add(-90 * time.Minute)
	meta := func(name string, labels map[string]string) api.ObjectMeta {
		return api.ObjectMeta{Name: name, Project: api.DefaultProject, UID: "uid-" + name, ResourceVersion: 42, Generation: 3,
			CreationTimestamp: created, Labels: labels}
	}
	two, five := int32(2), int32(5)
	hello := &api.App{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "App"}, Metadata: meta("hello", map[string]string{"team": "web"}),
		Spec: api.AppSpec{Replicas: &two, Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: []string{"./hello"},
			Ports: []api.ContainerPort{{Name: "http", Port: 8080}}}}},
			Strategy: api.Strategy{Type: api.StrategyCanary, Canary: &api.CanaryStrategy{Steps: []api.CanaryStep{{SetWeight: new(int32(20))}, {Pause: &api.PauseStep{}}}}}},
		Status: api.AppStatus{ObservedGeneration: 3, Phase: api.AppPaused, Message: "step 1: paused until rollout promote", LatestRevision: 3, StableRevision: 2,
			Replicas: 3, ReadyReplicas: 3, AvailableReplicas: 3, Traffic: []api.TrafficTarget{{Revision: 2, Weight: 80}, {Revision: 3, Weight: 20}},
			Revisions: []api.RevisionState{{Revision: 2, Desired: 2, Replicas: 2, Ready: 2, Available: 2, Weight: 80}, {Revision: 3, Desired: 1, Replicas: 1, Ready: 1, Available: 1, Weight: 20}},
			Rollout:   &api.RolloutStatus{Revision: 3, From: 2, State: api.RolloutPaused, Strategy: api.StrategyCanary, Reason: "CanaryPauseStep"}}}
	worker := &api.App{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "App"}, Metadata: meta("worker", nil),
		Spec: api.AppSpec{Replicas: &five, Template: api.PodTemplate{Containers: []api.Container{{Name: "work", Command: []string{"./work"}}}}},
		Status: api.AppStatus{ObservedGeneration: 3, Phase: api.AppHealthy, LatestRevision: 1, StableRevision: 1, Replicas: 7, ReadyReplicas: 7, AvailableReplicas: 7,
			Traffic:   []api.TrafficTarget{{Revision: 1, Weight: 100}},
			Revisions: []api.RevisionState{{Revision: 1, Desired: 5, Replicas: 7, Ready: 7, Available: 7, Weight: 100}}}}
	svc := &api.Service{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Service"}, Metadata: meta("hello", map[string]string{"team": "web"}),
		Spec:   api.ServiceSpec{Selector: map[string]string{"app": "hello"}, Ports: []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http"), Protocol: api.ProtocolTCP}}},
		Status: api.ServiceStatus{ClusterIP: "127.30.0.1"}}
	rt := &api.Route{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Route"}, Metadata: meta("hello", nil),
		Spec: api.RouteSpec{To: api.RouteBackend{Service: "hello"}}}
	rt.Status.Host = "hello-default.localhost"
	rt.Status.Conditions = []api.Condition{{Type: "Admitted", Status: api.ConditionTrue}}
	return []api.Object{hello, worker, svc, rt}
}

// TestGetGolden prints one object and a list in every output format of
// get and compares each with its golden file.
func TestGetGolden(t *testing.T) {
	objs := goldenObjects()
	apps := objs[:2]
	formats := []struct{ name, output string }{
		{"table", ""},
		{"wide", "wide"},
		{"json", "json"},
		{"yaml", "yaml"},
		{"name", "name"},
		{"jsonpath", `jsonpath={.metadata.name} {.status.phase}{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}`},
		{"custom-columns", "custom-columns=NAME:.metadata.name,WEIGHTS:.status.traffic[*].weight,TEAM:.metadata.labels.team"},
	}
	for _, f := range formats {
		for _, c := range []struct {
			name string
			objs []api.Object
		}{{"single", apps[:1]}, {"list", apps}} {
			t.Run(f.name+"-"+c.name, func(t *testing.T) {
				format, tmpl, cols, err := view.ParseOutput(f.output)
				if err != nil {
					t.Fatal(err)
				}
				var b bytes.Buffer
				p := &view.Printer{W: &b, Format: format, Tmpl: tmpl, Cols: cols, Now: goldenNow}
				if err := p.Print(c.objs, c.name == "single"); err != nil {
					t.Fatal(err)
				}
				golden(t, "get-"+f.name+"-"+c.name+".golden", b.Bytes())
			})
		}
	}
	t.Run("mixed kinds with labels", func(t *testing.T) {
		var b bytes.Buffer
		p := &view.Printer{W: &b, WithProject: true, ShowLabels: true, KindPrefix: true, Now: goldenNow}
		for i, kind := range [][]api.Object{objs[2:3], objs[3:4]} {
			if i > 0 {
				b.WriteString("\n")
			}
			p.NewColumns()
			if err := p.Print(kind, false); err != nil {
				t.Fatal(err)
			}
		}
		golden(t, "get-mixed-show-labels.golden", b.Bytes())
	})
}

// TestGetYAMLRoundTrips: one object's -o yaml decodes as a manifest (what
// apply -f reads) to the same object, as the server stores it (defaulted).
func TestGetYAMLRoundTrips(t *testing.T) {
	for _, o := range goldenObjects() {
		api.SetDefaults(o)
		var b bytes.Buffer
		p := &view.Printer{W: &b, Format: "yaml"}
		if err := p.Print([]api.Object{o}, true); err != nil {
			t.Fatal(err)
		}
		docs, err := manifest.Decode("x.yaml", b.Bytes())
		if err != nil || len(docs) != 1 {
			t.Fatalf("%s/%s: the yaml of get does not decode as one manifest: %v\n%s", o.GetTypeMeta().Kind, o.GetMeta().Name, err, b.String())
		}
		if diff := cmp.Diff(o, docs[0].Object); diff != "" {
			t.Errorf("%s/%s round trip (-printed +decoded):\n%s", o.GetTypeMeta().Kind, o.GetMeta().Name, diff)
		}
	}
}

// TestDescribeAndRolloutGolden holds what describe and rollout status
// print of the golden objects.
func TestDescribeAndRolloutGolden(t *testing.T) {
	objs := goldenObjects()
	events := []*api.Event{{Metadata: api.ObjectMeta{Name: "e1"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"},
		Type: api.EventNormal, Reason: "Paused", Message: "step 1: paused until rollout promote", Count: 1, LastTimestamp: goldenNow.Add(-time.Minute)}}
	var b bytes.Buffer
	for i, o := range objs {
		if i > 0 {
			b.WriteString("\n")
		}
		var evs []*api.Event
		if i == 0 {
			evs = events
		}
		view.Describe(&b, o, evs, view.Metrics{}, goldenNow)
	}
	golden(t, "describe.golden", b.Bytes())

	b.Reset()
	for _, o := range objs[:2] {
		a := o.(*api.App)
		line, _, _ := view.RolloutLine(a)
		b.WriteString(line + "\n")
		for _, l := range view.Rollout(a) {
			b.WriteString(l + "\n")
		}
	}
	golden(t, "rollout-status.golden", b.Bytes())
}

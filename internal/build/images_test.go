package build_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build"
)

func recs(ns ...int64) []api.ImageRecord {
	var out []api.ImageRecord
	for _, n := range ns {
		out = append(out, api.ImageRecord{Image: api.ImageReference("p", "a", n), Number: n})
	}
	return out
}

func TestRecordImage(t *testing.T) {
	cases := []struct {
		name         string
		old          []api.ImageRecord
		add          int64
		limit        int
		inUse        []int64
		kept, pruned []api.ImageRecord
	}{
		{"first", nil, 1, 10, nil, recs(1), nil},
		{"under the limit", recs(2, 1), 3, 3, nil, recs(3, 2, 1), nil},
		{"oldest pruned", recs(3, 2, 1), 4, 2, nil, recs(4, 3), recs(2, 1)},
		{"images in use are kept", recs(3, 2, 1), 4, 2, []int64{1}, recs(4, 3, 1), recs(2)},
		{"the new image is never pruned", recs(2), 3, 1, []int64{2}, recs(3, 2), nil},
		{"same number replaced", recs(2, 1), 2, 10, nil, recs(2, 1), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inUse := map[string]bool{}
			for _, n := range tc.inUse {
				inUse[api.ImageReference("p", "a", n)] = true
			}
			kept, pruned := build.RecordImage(tc.old, recs(tc.add)[0], tc.limit, inUse)
			if diff := cmp.Diff(tc.kept, kept, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.pruned, pruned, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("pruned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestApplyImageChangeAndExecutable(t *testing.T) {
	app := func(triggers ...api.Trigger) *api.App {
		return &api.App{Spec: api.AppSpec{
			Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: []string{"./bin/web"}}, {Name: "side", Command: []string{"/usr/bin/side"}, Image: "x"}}},
			Triggers: triggers,
		}}
	}
	all := api.Trigger{Type: api.TriggerImageChange}
	side := api.Trigger{Type: api.TriggerImageChange, ImageChange: &api.ImageChangeTrigger{ContainerNames: []string{"side"}}}
	cases := []struct {
		name    string
		app     *api.App
		changed []string
		images  []string
		exe     string
	}{
		{"no trigger: nothing changes", app(api.Trigger{Type: api.TriggerConfigChange}), nil, []string{"", "x"}, "bin/web"},
		{"empty names: every container", app(all), []string{"web", "side"}, []string{"p/a:1", "p/a:1"}, "bin/web"},
		{"named container only", app(side), []string{"side"}, []string{"", "p/a:1"}, "side"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := build.Executable(tc.app); got != tc.exe {
				t.Errorf("Executable = %q, want %q", got, tc.exe)
			}
			changed := build.ApplyImageChange(tc.app, "p/a:1")
			if diff := cmp.Diff(tc.changed, changed); diff != "" {
				t.Errorf("changed (-want +got):\n%s", diff)
			}
			images := []string{tc.app.Spec.Template.Containers[0].Image, tc.app.Spec.Template.Containers[1].Image}
			if diff := cmp.Diff(tc.images, images); diff != "" {
				t.Errorf("images (-want +got):\n%s", diff)
			}
			if again := build.ApplyImageChange(tc.app, "p/a:1"); len(again) != 0 {
				t.Errorf("a second change of the same image changed %v", again)
			}
		})
	}
}

func TestPruneBuilds(t *testing.T) {
	b := func(n int64, phase string) *api.Build {
		return &api.Build{Metadata: api.ObjectMeta{Name: api.BuildName("a", n)}, Spec: api.BuildSpec{App: "a", Number: n}, Status: api.BuildStatus{Phase: phase}}
	}
	builds := []*api.Build{b(3, api.BuildFailed), b(1, api.BuildComplete), b(5, api.BuildRunning), b(4, api.BuildComplete), b(2, api.BuildCancelled), b(6, api.BuildNew)}
	for keep, want := range map[int][]string{
		10: nil,
		4:  nil,
		3:  {"a-1"},
		1:  {"a-3", "a-2", "a-1"},
	} {
		if diff := cmp.Diff(want, build.PruneBuilds(builds, keep)); diff != "" {
			t.Errorf("keep %d (-want +got):\n%s", keep, diff)
		}
	}
}

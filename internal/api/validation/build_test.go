package validation_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
)

func TestValidateBuild(t *testing.T) {
	valid := func() *api.Build {
		return &api.Build{Metadata: api.ObjectMeta{Name: "hello-2"}, Spec: api.BuildSpec{App: "hello", Number: 2}}
	}
	cases := []struct {
		name   string
		mutate func(b *api.Build)
		want   []string
	}{
		{"valid", func(b *api.Build) {}, nil},
		{"name must follow app and number", func(b *api.Build) { b.Metadata.Name = "hello-3" }, []string{
			`metadata.name: Invalid value: "hello-3": must be "hello-2": a build is named <spec.app>-<spec.number>`,
		}},
		{"app and number required", func(b *api.Build) { b.Spec.App, b.Spec.Number = "", 0 }, []string{
			"spec.app: Required value",
			"spec.number: Invalid value: 0: must be greater than or equal to 1",
		}},
		{"unknown source type", func(b *api.Build) { b.Spec.Source.Type = "Git" }, []string{
			`spec.source.type: Unsupported value: "Git": supported values: "Dir", "Dockerfile", "Binary"`,
		}},
		{"dockerfile text only for a Dockerfile source", func(b *api.Build) { b.Spec.Source.Dockerfile = "FROM scratch" }, []string{
			`spec.source.dockerfile: Forbidden: may only be set when spec.source.type is "Dockerfile"`,
		}},
		{"a Dockerfile source needs its text and the Docker strategy", func(b *api.Build) {
			b.Spec.Source.Type, b.Spec.Strategy.Type = api.BuildSourceDockerfile, api.BuildGo
		}, []string{
			"spec.source.dockerfile: Required value: a Dockerfile source needs its text",
			`spec.strategy.type: Invalid value: "Go": must be "Docker" (or empty) for a Dockerfile source`,
		}},
		{"inline Dockerfile bounded", func(b *api.Build) {
			b.Spec.Source.Type, b.Spec.Source.Dockerfile = api.BuildSourceDockerfile, strings.Repeat("#", api.MaxInlineDockerfileBytes+1)
		}, []string{
			"spec.source.dockerfile: Too long: may not be longer than 65536",
		}},
		{"unknown strategy", func(b *api.Build) { b.Spec.Strategy.Type = "Buildpack" }, []string{
			`spec.strategy.type: Unsupported value: "Buildpack": supported values: "Docker", "Go", "Directory"`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := valid()
			api.SetDefaults(b)
			tc.mutate(b)
			if diff := cmp.Diff(tc.want, messages(validation.Validate(b)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildSpecIsImmutable(t *testing.T) {
	old := &api.Build{Metadata: api.ObjectMeta{Name: "hello-1"}, Spec: api.BuildSpec{App: "hello", Number: 1}}
	api.SetDefaults(old)
	n := *old
	n.Spec.Strategy.Type = api.BuildGo
	got := messages(validation.ValidateUpdate(old, &n))
	want := []string{"spec: Forbidden: field is immutable: start a new build instead"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

func TestImageStreamDefaultsAndLimit(t *testing.T) {
	s := &api.ImageStream{Metadata: api.ObjectMeta{Name: "hello"}}
	api.SetDefaults(s)
	if s.Spec.HistoryLimit == nil || *s.Spec.HistoryLimit != api.DefaultImageHistoryLimit {
		t.Fatalf("historyLimit = %v, want %d", s.Spec.HistoryLimit, api.DefaultImageHistoryLimit)
	}
	zero := int32(0)
	s.Spec.HistoryLimit = &zero
	want := []string{"spec.historyLimit: Invalid value: 0: must be between 1 and 1000, inclusive"}
	if diff := cmp.Diff(want, messages(validation.Validate(s))); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
}

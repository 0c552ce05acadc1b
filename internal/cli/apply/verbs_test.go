package apply

import (
	"strings"
	"testing"

	"slipway.dev/slipway/internal/cli/clitest"
)

func TestLabelAndAnnotate(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 1))
	a.Create(t, clitest.NewApp("worker", 1))
	steps := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"label", "app", "hello", "team=web", "tier=front"}, 0, "app/hello labeled\n", ""},
		{[]string{"label", "app/hello", "team=web"}, 0, "app/hello not labeled (no change)\n", ""},
		{[]string{"label", "app/hello", "team=payments"}, 1, "", "error: app/hello already has label team=web: give --overwrite to change it\n"},
		{[]string{"label", "app/hello", "team=payments", "--overwrite", "tier-"}, 0, "app/hello labeled\n", ""},
		{[]string{"label", "apps", "-l", "team=payments", "on-call=yes"}, 0, "app/hello labeled\n", ""},
		{[]string{"annotate", "app/worker", "note=drained for maintenance"}, 0, "app/worker annotated\n", ""},
		{[]string{"label", "app/hello"}, 1, "", "error: give at least one KEY=VALUE or KEY-: slipway label KIND NAME KEY=VALUE\n"},
		{[]string{"label", "app/hello", "bad key=x"}, 1, "", "error: "},
	}
	for _, s := range steps {
		out, errOut, code := a.RunOut(t, s.args...)
		if code != s.code || out != s.out || !strings.HasPrefix(errOut, s.err) || (s.err == "" && errOut != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.out, s.err)
		}
	}
	if got := a.App(t, "hello").Metadata.Labels; len(got) != 2 || got["team"] != "payments" || got["on-call"] != "yes" {
		t.Errorf("hello's labels: %v", got)
	}
	if got := a.App(t, "worker").Metadata.Annotations["note"]; got != "drained for maintenance" {
		t.Errorf("worker's annotation: %q", got)
	}
	if g := a.App(t, "hello").Metadata.Generation; g != 1 {
		t.Errorf("labels changed the spec: generation %d", g)
	}
}

func TestPatch(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	app := clitest.NewApp("hello", 1)
	app.Metadata.Labels = map[string]string{"team": "web"}
	a.Create(t, app)
	steps := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"patch", "app", "hello", "--type", "merge", "--patch", `{"spec":{"replicas":3},"metadata":{"labels":{"team":null}}}`}, 0, "app/hello patched\n", ""},
		{[]string{"patch", "app/hello", "--patch", "spec: {replicas: 3}"}, 0, "app/hello patched (no change)\n", ""},
		{[]string{"patch", "app/hello", "--patch", `{"status":{"phase":"Healthy"}}`}, 0, "app/hello patched (no change)\n", ""},
		{[]string{"patch", "app/hello", "--patch", `{"spec":{"replics":3}}`}, 1, "", `error: the patched App is not one: json: unknown field "replics"`},
		{[]string{"patch", "app/hello", "--patch", `{"spec":{"replicas":-1}}`}, 1, "", "error: "},
		{[]string{"patch", "app/hello", "--patch", `{"metadata":{"name":"other"}}`}, 1, "", "error: a patch cannot rename an object"},
		{[]string{"patch", "app/hello", "--type", "json", "--patch", `[]`}, 1, "", "error: --type json is not supported: use --type merge"},
		{[]string{"patch", "app/hello", "--patch", `[1]`}, 1, "", "error: --patch: must be an object"},
	}
	for _, s := range steps {
		out, errOut, code := a.RunOut(t, s.args...)
		if code != s.code || out != s.out || !strings.HasPrefix(errOut, s.err) || (s.err == "" && errOut != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.out, s.err)
		}
	}
	got := a.App(t, "hello")
	if *got.Spec.Replicas != 3 || len(got.Metadata.Labels) != 0 || got.Spec.Template.Containers[0].Name != "web" {
		t.Errorf("after patch: replicas %d, labels %v, containers %+v", *got.Spec.Replicas, got.Metadata.Labels, got.Spec.Template.Containers)
	}
}

package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

func TestLabelAndAnnotate(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.create(t, testApp("hello", 1))
	a.create(t, testApp("worker", 1))
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
		out, errOut, code := a.runOut(t, s.args...)
		if code != s.code || out != s.out || !strings.HasPrefix(errOut, s.err) || (s.err == "" && errOut != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.out, s.err)
		}
	}
	if got := a.app(t, "hello").Metadata.Labels; len(got) != 2 || got["team"] != "payments" || got["on-call"] != "yes" {
		t.Errorf("hello's labels: %v", got)
	}
	if got := a.app(t, "worker").Metadata.Annotations["note"]; got != "drained for maintenance" {
		t.Errorf("worker's annotation: %q", got)
	}
	if g := a.app(t, "hello").Metadata.Generation; g != 1 {
		t.Errorf("labels changed the spec: generation %d", g)
	}
}

func TestPatch(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	app := testApp("hello", 1)
	app.Metadata.Labels = map[string]string{"team": "web"}
	a.create(t, app)
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
		out, errOut, code := a.runOut(t, s.args...)
		if code != s.code || out != s.out || !strings.HasPrefix(errOut, s.err) || (s.err == "" && errOut != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", s.args, code, out, errOut, s.code, s.out, s.err)
		}
	}
	got := a.app(t, "hello")
	if *got.Spec.Replicas != 3 || len(got.Metadata.Labels) != 0 || got.Spec.Template.Containers[0].Name != "web" {
		t.Errorf("after patch: replicas %d, labels %v, containers %+v", *got.Spec.Replicas, got.Metadata.Labels, got.Spec.Template.Containers)
	}
}

func TestWait(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.create(t, testApp("hello", 2))
	a.create(t, testApp("gone", 1))

	// The app becomes Available while wait watches it.
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- a.run(t, t.Context(), &out, &errOut, "wait", "--for=condition=Available", "app/hello", "--timeout", "20s")
	}()
	a.setAppStatus(t, "hello", func(app *api.App) {
		app.Status = api.AppStatus{ObservedGeneration: 1, Phase: api.AppHealthy, LatestRevision: 1, StableRevision: 1,
			Traffic:   []api.TrafficTarget{{Revision: 1, Weight: 100}},
			Revisions: []api.RevisionState{{Revision: 1, Desired: 2, Replicas: 2, Ready: 2, Available: 2, Weight: 100}}}
	})
	select {
	case code := <-done:
		if code != 0 || out.String() != "app/hello condition met\n" {
			t.Errorf("wait Available: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("wait did not return after the app became Available")
	}

	cases := []struct {
		args     []string
		code     int
		out, err string
	}{
		{[]string{"wait", "--for=jsonpath={.status.phase}=Healthy", "app/hello"}, 0, "app/hello met jsonpath={.status.phase}=Healthy\n", ""},
		{[]string{"wait", "--for=condition=Available=False", "app/gone", "--timeout", "5s"}, 0, "app/gone condition met\n", ""},
		{[]string{"wait", "--for=condition=Available", "app/gone", "--timeout", "200ms"}, 3, "",
			"error: timed out after 200ms waiting for app/gone to meet --for=condition=Available (now: Available=False (ChangeNotObserved))\n"},
		{[]string{"wait", "--for=ready", "app/hello"}, 1, "", "error: --for \"ready\": must be condition=NAME[=STATUS], jsonpath={PATH}=VALUE or delete\n"},
		{[]string{"wait", "--for=condition=Available", "app/missing"}, 1, "", `error: apps "missing" not found`},
	}
	for _, c := range cases {
		o, e, code := a.runOut(t, c.args...)
		if code != c.code || o != c.out || !strings.HasPrefix(e, c.err) || (c.err == "" && e != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, o, e, c.code, c.out, c.err)
		}
	}

	// --for=delete returns once the object is gone.
	out.Reset()
	errOut.Reset()
	go func() {
		done <- a.run(t, t.Context(), &out, &errOut, "wait", "--for=delete", "app/gone", "--timeout", "20s")
	}()
	if _, err := a.reg.Delete(context.Background(), appKindForTest, api.DefaultProject, "gone", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 || out.String() != "app/gone deleted\n" {
		t.Errorf("wait --for=delete: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

func TestEvents(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.create(t, testApp("hello", 1))
	now := time.Now()
	for _, ev := range []*api.Event{
		{Metadata: api.ObjectMeta{Name: "e1"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"}, Type: api.EventNormal, Reason: "RevisionCreated", Message: "created revision 1", LastTimestamp: now.Add(-time.Minute)},
		{Metadata: api.ObjectMeta{Name: "e2"}, InvolvedObject: api.ObjectReference{Kind: "Pod", Name: "hello-1-abcde"}, Type: api.EventWarning, Reason: "Failed", Message: `container web: executable "x" not found in the pod's PATH`, LastTimestamp: now},
	} {
		a.create(t, ev)
	}
	out, errOut, code := a.runOut(t, "events")
	if l := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || errOut != "" || len(l) != 3 || !strings.Contains(l[1], "RevisionCreated") || !strings.Contains(l[2], "pod/hello-1-abcde") {
		t.Errorf("events: code %d, stderr %q, stdout:\n%s", code, errOut, out)
	}
	out, _, code = a.runOut(t, "events", "--for", "app/hello", "--no-headers")
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "app/hello") {
		t.Errorf("events --for app/hello: code %d:\n%s", code, out)
	}
	_, errOut, code = a.runOut(t, "events", "--for", "app/nothing")
	if code != 0 || errOut != "No events found about app/nothing in project \"default\".\n" {
		t.Errorf("events about nothing: code %d, stderr %q", code, errOut)
	}

	// -w prints what comes, and Ctrl-C ends it with status 0.
	ctx, cancel := context.WithCancel(t.Context())
	w := &signalWriter{want: "RevisionCreated", seen: make(chan struct{})}
	var werr bytes.Buffer
	done := make(chan int)
	go func() { done <- a.run(t, ctx, w, &werr, "events", "--for", "app/hello", "-w") }()
	<-w.seen
	a.create(t, &api.Event{Metadata: api.ObjectMeta{Name: "e3"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"}, Type: api.EventNormal, Reason: "RolloutStarted", Message: "rolling out revision 2"})
	select {
	case <-w.wait("RolloutStarted"):
	case <-time.After(10 * time.Second):
		t.Fatal("events -w did not print the new event")
	}
	cancel()
	if code := <-done; code != 0 || werr.String() != "" {
		t.Errorf("events -w after Ctrl-C: code %d, stderr %q", code, werr.String())
	}
}

// TestEveryCommandHasAnExample: slipway help shows an example of every
// verb (cobra's own help and completion aside).
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Example == "" && c.HasParent() && c.Name() != "help" && c.Parent().Name() != "completion" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(&env{getenv: func(string) string { return "" }}))
}

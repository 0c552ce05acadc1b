package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
)

func testService(name string, labels map[string]string) *api.Service {
	return &api.Service{Metadata: api.ObjectMeta{Name: name, Labels: labels},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []api.ServicePort{{Port: 80}}}}
}

func TestGetKubectlHabits(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	hello := testApp("hello", 2)
	hello.Metadata.Labels = map[string]string{"team": "web"}
	a.create(t, hello)
	a.create(t, testApp("worker", 10))
	a.create(t, testService("hello", map[string]string{"team": "web"}))
	a.create(t, &api.Route{Metadata: api.ObjectMeta{Name: "hello"}, Spec: api.RouteSpec{To: api.RouteBackend{Service: "hello"}}})

	firstColumn := func(out string) []string {
		var col []string
		for l := range strings.SplitSeq(strings.TrimSuffix(out, "\n"), "\n") {
			f := strings.Fields(l)
			if len(f) > 0 {
				col = append(col, f[0])
			} else {
				col = append(col, "")
			}
		}
		return col
	}
	cases := []struct {
		name string
		args []string
		code int
		// first column of stdout, or stderr
		col []string
		err string
	}{
		{"several kinds", []string{"get", "svc,routes"}, 0, []string{"NAME", "service/hello", "", "NAME", "route/hello"}, ""},
		{"all", []string{"get", "all"}, 0, []string{"NAME", "app/hello", "app/worker", "", "NAME", "service/hello", "", "NAME", "route/hello"}, ""},
		{"selector", []string{"get", "apps", "-l", "team=web"}, 0, []string{"NAME", "hello"}, ""},
		{"set selector", []string{"get", "apps", "-l", "team notin (web)"}, 0, []string{"NAME", "worker"}, ""},
		{"sort by a number", []string{"get", "apps", "--sort-by", ".spec.replicas", "-o", "name"}, 0, []string{"app/hello", "app/worker"}, ""},
		{"sort by a number, braces", []string{"get", "apps", "--sort-by={.spec.replicas}", "-o", "custom-columns=R:.spec.replicas", "--no-headers"}, 0, []string{"2", "10"}, ""},
		{"jsonpath", []string{"get", "apps", "-o", `jsonpath={range .items[*]}{.metadata.name}{"\n"}{end}`}, 0, []string{"hello", "worker"}, ""},
		{"jsonpath of one", []string{"get", "app", "worker", "-o", "jsonpath={.spec.replicas}"}, 0, []string{"10"}, ""},
		{"did you mean", []string{"get", "pdos"}, 1, nil, `error: unknown kind "pdos": did you mean pods?`},
		{"did you mean a short name", []string{"get", "svcs"}, 1, nil, `error: unknown kind "svcs": did you mean services?`},
		{"nothing near", []string{"get", "widgets"}, 1, nil, `error: unknown kind "widgets": use one of projects,`},
		{"no such project", []string{"get", "apps", "-p", "nosuchproj"}, 1, nil, `error: project "nosuchproj" does not exist (slipway get projects lists them)`},
		{"no such project, by name", []string{"get", "app", "hello", "-p", "nosuchproj"}, 1, nil, `error: project "nosuchproj" does not exist`},
		{"empty project", []string{"get", "pods"}, 0, nil, `No pods found in project "default".`},
		{"bad jsonpath", []string{"get", "apps", "-o", "jsonpath={.a[}"}, 1, nil, `error: jsonpath "{.a[}"`},
		{"bad custom column", []string{"get", "apps", "-o", "custom-columns=NAME"}, 1, nil, `error: custom column "NAME": must be HEADER:PATH`},
		{"bad output", []string{"get", "apps", "-o", "xml"}, 1, nil, `error: unsupported output format "xml": use table (default), wide, json, yaml, name, jsonpath=TEMPLATE or custom-columns=`},
		{"describe -l", []string{"describe", "apps", "-l", "team=web"}, 0, []string{"Name:"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := a.runOut(t, tc.args...)
			if code != tc.code || !strings.HasPrefix(errOut, tc.err) || (tc.err == "" && errOut != "") {
				t.Fatalf("code %d, stderr %q; want %d and %q...\nstdout:\n%s", code, errOut, tc.code, tc.err, out)
			}
			if tc.col != nil {
				got := firstColumn(out)
				if tc.name == "describe -l" {
					got = got[:1]
				}
				if strings.Join(got, "|") != strings.Join(tc.col, "|") {
					t.Errorf("first column %q, want %q\nstdout:\n%s", got, tc.col, out)
				}
			}
		})
	}

	if out, _, code := a.runOut(t, "delete", "apps", "-l", "team=web"); code != 0 || out != "app/hello deleted\n" {
		t.Errorf("delete -l: %d %q", code, out)
	}
	if _, errOut, code := a.runOut(t, "delete", "apps", "-l", "team=web"); code != 1 || errOut != "error: no apps match the selector \"team=web\"\n" {
		t.Errorf("delete -l matching nothing: %d %q", code, errOut)
	}
}

func TestGetHelpListsEveryKindName(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	out, _, code := a.runOut(t, "get", "--help")
	if code != 0 {
		t.Fatalf("get --help: %d", code)
	}
	for _, n := range view.KindNames() {
		if !strings.Contains(out, " "+n) {
			t.Errorf("get --help does not list the kind name %q", n)
		}
	}
}

// TestWatchInterruptedQuietly: Ctrl-C is how a watch ends, so it exits 0
// without a word, and each watched row lines up under the header.
func TestWatchInterruptedQuietly(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.create(t, testApp("hello", 2))
	ctx, cancel := context.WithCancel(t.Context())
	out := &signalWriter{want: "web ", seen: make(chan struct{})}
	var errOut bytes.Buffer
	done := make(chan int)
	go func() { done <- a.run(t, ctx, out, &errOut, "get", "apps", "-w") }()
	select {
	case <-out.wait("hello "):
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not list the app")
	}
	a.create(t, testApp("web", 1)) // a row of its own, printed under the listing's header
	select {
	case <-out.seen:
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not print the new app")
	}
	cancel()
	if code := <-done; code != 0 || errOut.String() != "" {
		t.Errorf("interrupted get -w: code %d, stderr %q; want 0 and nothing", code, errOut.String())
	}
	out.mu.Lock()
	lines := strings.Split(out.buf.String(), "\n")
	out.mu.Unlock()
	col := strings.Index(lines[0], "READY")
	for _, l := range lines[1:3] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q does not line up with READY at %d under %q", l, col, lines[0])
		}
	}
}

func TestCompletion(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.create(t, testApp("hello", 1))
	a.create(t, testApp("help-desk", 1))
	a.create(t, testService("hello", nil))
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"get", "ap"}, []string{"apps"}},
		{[]string{"get", "a"}, []string{"all", "apps"}},
		{[]string{"get", "apps", "hel"}, []string{"hello", "help-desk"}},
		{[]string{"get", "apps", "hello", "hel"}, []string{"help-desk"}},
		{[]string{"get", "svc/"}, []string{"svc/hello"}},
		{[]string{"describe", "app/help"}, []string{"app/help-desk"}},
		{[]string{"rollout", "status", ""}, []string{"app/hello", "app/help-desk"}},
		{[]string{"scale", "app/hello"}, []string{"app/hello"}},
		{[]string{"logs", "app/"}, []string{"app/hello", "app/help-desk"}},
	}
	for _, tc := range cases {
		out, errOut, code := a.runOut(t, append([]string{"__complete"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%q: code %d, stderr %q", tc.args, code, errOut)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		got, directive := lines[:len(lines)-1], lines[len(lines)-1]
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || directive != ":4" {
			t.Errorf("complete %q = %q %s, want %q :4 (no file completion)", tc.args, got, directive, tc.want)
		}
	}
	out, _, code := a.runOut(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_slipway") {
		t.Errorf("completion bash: %d, %d bytes", code, len(out))
	}
}

package get

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/view"
)

func TestGetKubectlHabits(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	hello := clitest.NewApp("hello", 2)
	hello.Metadata.Labels = map[string]string{"team": "web"}
	a.Create(t, hello)
	a.Create(t, clitest.NewApp("worker", 10))
	a.Create(t, clitest.NewService("hello", map[string]string{"team": "web"}))
	a.Create(t, &api.Route{Metadata: api.ObjectMeta{Name: "hello"}, Spec: api.RouteSpec{To: api.RouteBackend{Service: "hello"}}})

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
			out, errOut, code := a.RunOut(t, tc.args...)
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

}

func TestGetHelpListsEveryKindName(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	out, _, code := a.RunOut(t, "get", "--help")
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
	a.Create(t, clitest.NewApp("hello", 2))
	ctx, cancel := context.WithCancel(t.Context())
	out := clitest.NewSignalWriter("web ")
	var errOut bytes.Buffer
	done := make(chan int)
	go func() { done <- a.Run(t, ctx, out, &errOut, "get", "apps", "-w") }()
	select {
	case <-out.Wait("hello "):
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not list the app")
	}
	a.Create(t, clitest.NewApp("web", 1)) // a row of its own, printed under the listing's header
	select {
	case <-out.Seen:
	case <-time.After(10 * time.Second):
		t.Fatal("get -w did not print the new app")
	}
	cancel()
	if code := <-done; code != 0 || errOut.String() != "" {
		t.Errorf("interrupted get -w: code %d, stderr %q; want 0 and nothing", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	col := strings.Index(lines[0], "READY")
	for _, l := range lines[1:3] {
		if len(l) <= col || l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q does not line up with READY at %d under %q", l, col, lines[0])
		}
	}
}

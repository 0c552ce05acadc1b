package set

import (
	"bytes"
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/registry"
)

// abAPI serves services hello-v1, hello-v2 and hello-v3 and route hello
// sending everything to hello-v1.
func abAPI(t *testing.T, wrap func(http.Handler) http.Handler) *clitest.API {
	t.Helper()
	a := startTestAPI(t, nil, wrap)
	for _, n := range []string{"hello-v1", "hello-v2", "hello-v3"} {
		a.Create(t, &api.Service{Metadata: api.ObjectMeta{Name: n},
			Spec: api.ServiceSpec{Selector: map[string]string{"app": n}, Ports: []api.ServicePort{{Port: 80}}}})
	}
	a.Create(t, &api.Route{Metadata: api.ObjectMeta{Name: "hello"}, Spec: api.RouteSpec{To: api.RouteBackend{Service: "hello-v1"}}})
	return a
}

// backendEvents returns the BackendsChanged events, oldest first.
func backendEvents(t *testing.T, a *clitest.API) []*api.Event {
	t.Helper()
	info, _ := api.LookupKind("Event")
	objs, _, err := a.Reg.List(context.Background(), info, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	view.SortObjects(objs)
	var out []*api.Event
	for _, o := range objs {
		if ev := o.(*api.Event); ev.Reason == ReasonBackendsChanged {
			out = append(out, ev)
		}
	}
	return out
}

func messages(evs []*api.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Message)
	}
	return out
}

func backends(pairs ...any) []api.RouteBackend {
	var out []api.RouteBackend
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, api.RouteBackend{Service: pairs[i].(string), Weight: weight(int32(pairs[i+1].(int)))})
	}
	return out
}

func TestSetRouteBackends(t *testing.T) {
	a := abAPI(t, nil)
	uid := route(t, a, "hello").Metadata.UID
	steps := []struct {
		args  []string
		out   string
		want  []api.RouteBackend
		event string
	}{
		{[]string{"hello", "hello-v1=90", "hello-v2=10"}, "route/hello backends updated\n",
			backends("hello-v1", 90, "hello-v2", 10), "backends set to hello-v1=90, hello-v2=10 (were hello-v1=100)"},
		{[]string{"route/hello", "hello-v2=50", "hello-v1=50", "hello-v3=0"}, "route/hello backends updated\n",
			backends("hello-v2", 50, "hello-v1", 50, "hello-v3", 0), "backends set to hello-v2=50, hello-v1=50, hello-v3=0 (were hello-v1=90, hello-v2=10)"},
		{[]string{"hello", "--equal"}, "route/hello backends updated\n",
			backends("hello-v2", 100, "hello-v1", 100, "hello-v3", 100), "backends set to hello-v2=100, hello-v1=100, hello-v3=100 (were hello-v2=50, hello-v1=50, hello-v3=0)"},
		{[]string{"hello", "--zero"}, "route/hello backends updated\n",
			backends("hello-v2", 0, "hello-v1", 0, "hello-v3", 0), "backends set to hello-v2=0, hello-v1=0, hello-v3=0 (were hello-v2=100, hello-v1=100, hello-v3=100)"},
		{[]string{"routes/hello", "hello-v1", "hello-v2", "--equal"}, "route/hello backends updated\n",
			backends("hello-v1", 100, "hello-v2", 100), "backends set to hello-v1=100, hello-v2=100 (were hello-v2=0, hello-v1=0, hello-v3=0)"},
		// The same weights again: nothing written, no event.
		{[]string{"hello", "hello-v1=100", "hello-v2=100"}, "route/hello backends unchanged\n",
			backends("hello-v1", 100, "hello-v2", 100), ""},
		{[]string{"hello", "hello-v1=0", "hello-v2=256"}, "route/hello backends updated\n",
			backends("hello-v1", 0, "hello-v2", 256), "backends set to hello-v1=0, hello-v2=256 (were hello-v1=100, hello-v2=100)"},
		{[]string{"hello", "hello-v2=100"}, "route/hello backends updated\n",
			backends("hello-v2", 100), "backends set to hello-v2=100 (were hello-v1=0, hello-v2=256)"},
	}
	var wantEvents []string
	for _, s := range steps {
		rv := route(t, a, "hello").Metadata.ResourceVersion
		out, errOut, code := a.RunOut(t, append([]string{"set", "route-backends"}, s.args...)...)
		if code != 0 || out != s.out || errOut != "" {
			t.Fatalf("%q: code %d, stdout %q, stderr %q; want 0 and %q", s.args, code, out, errOut, s.out)
		}
		rt := route(t, a, "hello")
		if diff := cmp.Diff(s.want, backendsOf(rt.Spec)); diff != "" {
			t.Errorf("%q: backends (-want +got):\n%s", s.args, diff)
		}
		if s.want[0].Service != rt.Spec.To.Service || len(rt.Spec.AlternateBackends) != len(s.want)-1 {
			t.Errorf("%q: to %s with %d alternates; want %s first and %d alternates", s.args, rt.Spec.To.Service, len(rt.Spec.AlternateBackends), s.want[0].Service, len(s.want)-1)
		}
		if s.event == "" {
			if rt.Metadata.ResourceVersion != rv {
				t.Errorf("%q: an unchanged set wrote the route", s.args)
			}
		} else {
			wantEvents = append(wantEvents, s.event)
		}
		if diff := cmp.Diff(wantEvents, messages(backendEvents(t, a))); diff != "" {
			t.Fatalf("%q: events (-want +got):\n%s", s.args, diff)
		}
	}
	for _, ev := range backendEvents(t, a) {
		want := api.ObjectReference{Kind: "Route", Project: "default", Name: "hello", UID: uid}
		if ev.InvolvedObject != want || ev.Type != api.EventNormal || ev.Count != 1 || !strings.HasPrefix(ev.Metadata.Name, "hello.") {
			t.Errorf("event %s: involved %+v type %s count %d; want %+v, Normal, 1", ev.Metadata.Name, ev.InvolvedObject, ev.Type, ev.Count, want)
		}
	}
}

func TestSetRouteBackendsPrintsTheSplit(t *testing.T) {
	a := abAPI(t, nil)
	out, errOut, code := a.RunOut(t, "set", "route-backends", "hello")
	want := "NAME           KIND      TO         WEIGHT\n" +
		"routes/hello   Service   hello-v1   100 (100%)\n"
	if code != 0 || out != want || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q; want\n%s", code, out, errOut, want)
	}
	a.RunOut(t, "set", "route-backends", "hello", "hello-v1=3", "hello-v2=1", "hello-v3=0")
	out, _, _ = a.RunOut(t, "set", "route-backends", "route/hello")
	want = "NAME           KIND      TO         WEIGHT\n" +
		"routes/hello   Service   hello-v1   3 (75%)\n" +
		"routes/hello   Service   hello-v2   1 (25%)\n" +
		"routes/hello   Service   hello-v3   0 (0%)\n"
	if out != want {
		t.Fatalf("stdout %q, want\n%s", out, want)
	}
	a.RunOut(t, "set", "route-backends", "hello", "--zero")
	out, _, _ = a.RunOut(t, "set", "route-backends", "hello")
	if !strings.Contains(out, "hello-v2   0 (0%)\n") {
		t.Fatalf("all weights 0: stdout %q", out)
	}
	if n := len(backendEvents(t, a)); n != 2 {
		t.Fatalf("%d events after two changes and three listings, want 2", n)
	}
}

func TestSetRouteBackendsRefusesBadInput(t *testing.T) {
	a := abAPI(t, nil)
	// A match naming hello-v1 keeps hello-v1 a backend.
	rt := route(t, a, "hello")
	rt.Spec.Match = []api.RouteMatch{{Header: &api.KeyMatch{Name: "X-Canary", Value: "always"}, Service: "hello-v1"}}
	if _, err := a.Reg.Update(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	before := route(t, a, "hello").Metadata.ResourceVersion
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"hello", "hello-v1=257"}, `error: invalid weight "257" for service hello-v1: must be an integer from 0 to 256`},
		{[]string{"hello", "hello-v1=-1"}, `error: invalid weight "-1" for service hello-v1: must be an integer from 0 to 256`},
		{[]string{"hello", "hello-v1=ten"}, `error: invalid weight "ten" for service hello-v1: must be an integer from 0 to 256`},
		{[]string{"hello", "hello-v1"}, `error: invalid backend "hello-v1": must be SVC=WEIGHT with a weight from 0 to 256, e.g. hello-v1=90`},
		{[]string{"hello", "=5"}, `error: invalid backend "=5": must be SVC=WEIGHT, e.g. hello-v1=90`},
		{[]string{"hello", "hello-v1=1", "hello-v1=2"}, "error: service hello-v1 is given twice: each service may appear once"},
		{[]string{"hello", "hello-v1=1", "hello-v2=1", "hello-v3=1", "a=1", "b=1"}, "error: 5 services given: a route has at most 4 backends (spec.to and 3 alternateBackends)"},
		{[]string{"hello", "hello-v1=50", "nope=50"}, `error: service "nope" not found in project "default": every backend must be a service of the route's project`},
		{[]string{"hello", "--zero", "--equal"}, "error: --zero and --equal cannot be used together"},
		{[]string{"hello", "--equal", "hello-v1=5"}, `error: invalid backend "hello-v1=5": --equal sets every weight, name the services without =WEIGHT`},
		{[]string{"hello", "hello-v2=100"}, "error: route hello: spec.match[0] sends to service hello-v1, which would no longer be a backend: keep it among the services or change the match first"},
		{[]string{"missing", "hello-v1=1"}, `error: routes "missing" not found in project "default"`},
		{[]string{"missing"}, `error: routes "missing" not found in project "default"`},
		{[]string{"svc/hello", "hello-v1=1"}, `error: "svc/hello": route-backends changes routes only: give ROUTE or route/ROUTE`},
		{[]string{"route/", "hello-v1=1"}, `error: "route/": missing name after the slash`},
		{nil, "error: requires at least 1 arg(s), only received 0"},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, append([]string{"set", "route-backends"}, tc.args...)...)
		if code != 1 || out != "" || errOut != tc.err+"\n" {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.err)
		}
	}
	if got := route(t, a, "hello").Metadata.ResourceVersion; got != before {
		t.Errorf("a refused set wrote the route: resourceVersion %d, was %d", got, before)
	}
	if evs := backendEvents(t, a); len(evs) != 0 {
		t.Errorf("a refused set recorded events: %q", messages(evs))
	}
}

// changeRouteBeforePut lets the first `times` PUTs of route hello through
// only after another writer changed the route; it counts the PUTs.
func changeRouteBeforePut(t *testing.T, a **clitest.API, times int32, puts *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/routes/hello") {
				if n := puts.Add(1); n <= times {
					rt := route(t, *a, "hello")
					rt.Metadata.Labels = map[string]string{"touched": strings.Repeat("x", int(n))}
					if _, err := (*a).Reg.Update(r.Context(), rt); err != nil {
						t.Errorf("concurrent update: %v", err)
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestSetRouteBackendsRetriesOnConflict(t *testing.T) {
	var a *clitest.API
	var puts atomic.Int32
	a = abAPI(t, changeRouteBeforePut(t, &a, 2, &puts))
	out, errOut, code := a.RunOut(t, "set", "route-backends", "hello", "hello-v1=1", "hello-v2=3")
	if code != 0 || out != "route/hello backends updated\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := puts.Load(); got != 3 {
		t.Fatalf("%d PUTs, want 3: two conflicts, then success", got)
	}
	rt := route(t, a, "hello")
	if diff := cmp.Diff(backends("hello-v1", 1, "hello-v2", 3), backendsOf(rt.Spec)); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	if !cmp.Equal(rt.Metadata.Labels, map[string]string{"touched": "xx"}) {
		t.Errorf("labels %v: the other writer's change was lost", rt.Metadata.Labels)
	}
	if diff := cmp.Diff([]string{"backends set to hello-v1=1, hello-v2=3 (were hello-v1=100)"}, messages(backendEvents(t, a))); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestSetRouteBackendsGivesUpAfterRepeatedConflicts(t *testing.T) {
	var a *clitest.API
	var puts atomic.Int32
	a = abAPI(t, changeRouteBeforePut(t, &a, 1000, &puts))
	out, errOut, code := a.RunOut(t, "set", "route-backends", "hello", "hello-v2=1")
	if want := "error: route hello changed 5 times while its backends were being set: try again\n"; code != 1 || out != "" || errOut != want {
		t.Fatalf("code %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	if got := puts.Load(); got != setAttempts {
		t.Fatalf("%d PUTs, want %d", got, setAttempts)
	}
	if diff := cmp.Diff(backends("hello-v1", 100), backendsOf(route(t, a, "hello").Spec)); diff != "" {
		t.Errorf("backends (-want +got):\n%s", diff)
	}
	if evs := backendEvents(t, a); len(evs) != 0 {
		t.Errorf("events after a failed set: %q", messages(evs))
	}
}

// TestSetRouteBackendsEventTime runs the command with a fake clock: the
// event carries the time of the change.
func TestSetRouteBackendsEventTime(t *testing.T) {
	a := abAPI(t, nil)
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	var out, errOut bytes.Buffer
	e := &cmdutil.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }}
	g := &cmdutil.Globals{Server: a.URL, Token: a.Token, Config: filepath.Join(t.TempDir(), "absent.yaml")}
	cmd := newSetRouteBackendsCmd(e, g, clock.NewFake(at))
	cmd.SetArgs([]string{"hello", "hello-v1=10", "hello-v2=20"})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	evs := backendEvents(t, a)
	if len(evs) != 1 || !evs[0].FirstTimestamp.Equal(at) || !evs[0].LastTimestamp.Equal(at) {
		t.Fatalf("events %+v, want one at %v", evs, at)
	}
	if ev := evs[0]; ev.Message != "backends set to hello-v1=10, hello-v2=20 (were hello-v1=100)" || ev.Source != "slipway set route-backends" {
		t.Fatalf("event message %q source %q", ev.Message, ev.Source)
	}
}

package set

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

func TestScale(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 1))
	a.Create(t, clitest.NewApp("worker", 1))

	out, errOut, code := a.RunOut(t, "scale", "app/hello", "--replicas", "3")
	if code != 0 || out != "app/hello scaled\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := a.App(t, "hello"); *got.Spec.Replicas != 3 || got.Metadata.Generation != 2 {
		t.Fatalf("after scale: replicas %d generation %d, want 3 and 2", *got.Spec.Replicas, got.Metadata.Generation)
	}

	out, _, code = a.RunOut(t, "scale", "app", "hello", "worker", "--replicas=0")
	if code != 0 || out != "app/hello scaled\napp/worker scaled\n" {
		t.Fatalf("two apps to 0: code %d, stdout %q", code, out)
	}
	for _, n := range []string{"hello", "worker"} {
		if got := *a.App(t, n).Spec.Replicas; got != 0 {
			t.Fatalf("%s: replicas %d, want 0", n, got)
		}
	}

	// Scaling to the current size writes nothing.
	before := a.App(t, "hello").Metadata.ResourceVersion
	if _, _, code := a.RunOut(t, "scale", "app/hello", "--replicas", "0"); code != 0 {
		t.Fatalf("code %d", code)
	}
	if after := a.App(t, "hello").Metadata.ResourceVersion; after != before {
		t.Fatalf("resourceVersion moved from %d to %d without a change", before, after)
	}
}

func TestScaleRefusesBadArguments(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 1))
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"scale", "app/hello"}, `error: required flag(s) "replicas" not set`},
		{[]string{"scale", "app/hello", "--replicas", "-1"}, "error: invalid --replicas -1: must be from 0 to 1000"},
		{[]string{"scale", "app/hello", "--replicas", "1001"}, "error: invalid --replicas 1001: must be from 0 to 1000"},
		{[]string{"scale", "svc/hello", "--replicas", "2"}, "error: services cannot be scaled: only apps can (slipway scale app/NAME --replicas N)"},
		{[]string{"scale", "pods", "x", "--replicas", "2"}, "error: pods cannot be scaled: only apps can (slipway scale app/NAME --replicas N)"},
		{[]string{"scale", "app", "--replicas", "2"}, "error: must name the app to scale: slipway scale app/NAME --replicas N"},
		{[]string{"scale", "app/missing", "--replicas", "2"}, `error: apps "missing" not found in project "default"`},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, tc.args...)
		if code != 1 || out != "" || errOut != tc.err+"\n" {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.err)
		}
	}
	if got := a.App(t, "hello"); *got.Spec.Replicas != 1 || got.Metadata.Generation != 1 {
		t.Fatalf("a refused scale changed the app: replicas %d generation %d", *got.Spec.Replicas, got.Metadata.Generation)
	}
}

// changeBeforePut lets the first `times` PUTs of app hello through only
// after another writer changed the app, so that they carry a stale
// resourceVersion; it counts the PUTs it sees.
func changeBeforePut(t *testing.T, a **clitest.API, times int32, puts *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/apps/hello") {
				if n := puts.Add(1); n <= times {
					app := (*a).App(t, "hello")
					if app.Metadata.Labels == nil {
						app.Metadata.Labels = map[string]string{}
					}
					app.Metadata.Labels["touched"] = strings.Repeat("x", int(n))
					if _, err := (*a).Reg.Update(r.Context(), app); err != nil {
						t.Errorf("concurrent update: %v", err)
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestScaleRetriesOnConflict(t *testing.T) {
	var a *clitest.API
	var puts atomic.Int32
	a = startTestAPI(t, nil, changeBeforePut(t, &a, 2, &puts))
	a.Create(t, clitest.NewApp("hello", 1))

	out, errOut, code := a.RunOut(t, "scale", "app/hello", "--replicas", "4")
	if code != 0 || out != "app/hello scaled\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := puts.Load(); got != 3 {
		t.Fatalf("%d PUTs, want 3: two conflicts, then success", got)
	}
	got := a.App(t, "hello")
	// The other writer's change survives: scale re-read the app rather
	// than overwriting it with what it first read.
	if *got.Spec.Replicas != 4 || !cmp.Equal(got.Metadata.Labels, map[string]string{"touched": "xx"}) {
		t.Fatalf("replicas %d labels %v, want 4 and touched=xx", *got.Spec.Replicas, got.Metadata.Labels)
	}
}

func TestScaleGivesUpAfterRepeatedConflicts(t *testing.T) {
	var a *clitest.API
	var puts atomic.Int32
	a = startTestAPI(t, nil, changeBeforePut(t, &a, 1000, &puts))
	a.Create(t, clitest.NewApp("hello", 1))

	out, errOut, code := a.RunOut(t, "scale", "app/hello", "--replicas", "4")
	if want := "error: app hello changed 5 times while it was being scaled: try again\n"; code != 1 || out != "" || errOut != want {
		t.Fatalf("code %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}
	if got := puts.Load(); got != cmdutil.UpdateAttempts {
		t.Fatalf("%d PUTs, want %d", got, cmdutil.UpdateAttempts)
	}
	if got := *a.App(t, "hello").Spec.Replicas; got != 1 {
		t.Fatalf("replicas %d, want 1 unchanged", got)
	}
}

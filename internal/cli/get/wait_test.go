package get

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/registry"
)

func TestWait(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, clitest.NewApp("hello", 2))
	a.Create(t, clitest.NewApp("gone", 1))

	// The app becomes Available while wait watches it.
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- a.Run(t, t.Context(), &out, &errOut, "wait", "--for=condition=Available", "app/hello", "--timeout", "20s")
	}()
	a.SetAppStatus(t, "hello", func(app *api.App) {
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
		o, e, code := a.RunOut(t, c.args...)
		if code != c.code || o != c.out || !strings.HasPrefix(e, c.err) || (c.err == "" && e != "") {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, o, e, c.code, c.out, c.err)
		}
	}

	// --for=delete returns once the object is gone.
	out.Reset()
	errOut.Reset()
	go func() {
		done <- a.Run(t, t.Context(), &out, &errOut, "wait", "--for=delete", "app/gone", "--timeout", "20s")
	}()
	if _, err := a.Reg.Delete(context.Background(), cmdutil.AppKind, api.DefaultProject, "gone", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 || out.String() != "app/gone deleted\n" {
		t.Errorf("wait --for=delete: code %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

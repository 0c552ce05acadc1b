package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// seen is what a test compares of an event.
type seen struct {
	Type, Name string
	RV         int64
}

func next(t *testing.T, ch <-chan registry.WatchEvent) registry.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return registry.WatchEvent{}
}

func collect(t *testing.T, ch <-chan registry.WatchEvent, n int) []seen {
	t.Helper()
	var out []seen
	for range n {
		ev := next(t, ch)
		if ev.Type == registry.Error {
			t.Fatalf("ERROR event: %v", ev.Err)
		}
		out = append(out, seen{ev.Type, ev.Object.GetMeta().Name, ev.Object.GetMeta().ResourceVersion})
	}
	return out
}

func (e *env) rev(t *testing.T) int64 {
	t.Helper()
	r, err := e.st.Revision(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestWatchDeliversChangesInOrderAndResumes(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustProject(t, "other")
	start := e.rev(t)
	ctx, cancel := context.WithCancel(e.ctx)
	ch, err := e.reg.Watch(ctx, appKind, "default", start, "")
	if err != nil {
		t.Fatal(err)
	}
	a := e.mustCreate(t, newApp("default", "a"))
	e.mustCreate(t, newApp("other", "elsewhere")) // another project: not seen
	mod := *a.(*api.App)
	mod.Spec.Replicas = ptr(int32(2))
	m, err := e.reg.Update(e.ctx, &mod)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.reg.Delete(e.ctx, appKind, "default", "a", registry.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{registry.Added, "a", a.GetMeta().ResourceVersion},
		{registry.Modified, "a", m.GetMeta().ResourceVersion},
		{registry.Deleted, "a", d.GetMeta().ResourceVersion},
	}
	if diff := cmp.Diff(want, collect(t, ch, 3)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	cancel()

	// Resuming from the ADDED event's revision gives exactly what followed.
	ch, err = e.reg.Watch(e.ctx, appKind, "default", a.GetMeta().ResourceVersion, "")
	if err != nil {
		t.Fatal(err)
	}
	b := e.mustCreate(t, newApp("default", "b"))
	want = append(want[1:], seen{registry.Added, "b", b.GetMeta().ResourceVersion})
	if diff := cmp.Diff(want, collect(t, ch, 3)); diff != "" {
		t.Fatalf("resumed events (-want +got):\n%s", diff)
	}
}

func TestWatchFromZeroStartsWithCurrentObjects(t *testing.T) {
	e := newEnv(t, registry.Options{})
	a := e.mustCreate(t, newApp("", "a"))
	b := e.mustCreate(t, newApp("", "b"))
	ch, err := e.reg.Watch(e.ctx, appKind, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	c := e.mustCreate(t, newApp("", "c"))
	want := []seen{
		{registry.Added, "a", a.GetMeta().ResourceVersion},
		{registry.Added, "b", b.GetMeta().ResourceVersion},
		{registry.Added, "c", c.GetMeta().ResourceVersion},
	}
	if diff := cmp.Diff(want, collect(t, ch, 3)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestWatchSelectorReportsEnteringAndLeaving(t *testing.T) {
	e := newEnv(t, registry.Options{})
	ch, err := e.reg.Watch(e.ctx, appKind, "", e.rev(t), "tier=web")
	if err != nil {
		t.Fatal(err)
	}
	set := func(obj api.Object, tier string) api.Object {
		t.Helper()
		a := *obj.(*api.App)
		a.Metadata.Labels = map[string]string{"tier": tier}
		out, err := e.reg.Update(e.ctx, &a)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	x := newApp("", "x")
	x.Metadata.Labels = map[string]string{"tier": "web"}
	x1 := e.mustCreate(t, x)
	x2 := set(x1, "db")  // leaves: DELETED
	x3 := set(x2, "web") // enters: ADDED
	y := newApp("", "y")
	y.Metadata.Labels = map[string]string{"tier": "db"}
	e.mustCreate(t, y) // never matches: nothing
	x4 := *x3.(*api.App)
	x4.Spec.Replicas = ptr(int32(3))
	x5, err := e.reg.Update(e.ctx, &x4) // still matches: MODIFIED
	if err != nil {
		t.Fatal(err)
	}
	xd, err := e.reg.Delete(e.ctx, appKind, "", "x", registry.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []seen{
		{registry.Added, "x", x1.GetMeta().ResourceVersion},
		{registry.Deleted, "x", x2.GetMeta().ResourceVersion},
		{registry.Added, "x", x3.GetMeta().ResourceVersion},
		{registry.Modified, "x", x5.GetMeta().ResourceVersion},
		{registry.Deleted, "x", xd.GetMeta().ResourceVersion},
	}
	if diff := cmp.Diff(want, collect(t, ch, 5)); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
}

func TestWatchFromCompactedRevisionIsGone(t *testing.T) {
	e := newEnv(t, registry.Options{})
	for _, n := range []string{"a", "b", "c"} {
		e.mustCreate(t, newApp("", n))
	}
	if err := e.st.Compact(e.ctx, e.rev(t)-1); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Watch(e.ctx, appKind, "", 1, "")
	ae := wantReason(t, err, api.ReasonGone)
	if ae.Code != 410 {
		t.Fatalf("code = %d, want 410", ae.Code)
	}
}

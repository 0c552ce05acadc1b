package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

func kind(name string) api.KindInfo {
	k, _ := api.LookupKind(name)
	return k
}

var appKind = kind("App")

// newClient serves the real API over loopback on a temporary bolt file and
// returns an admin client for it.
func newClient(t *testing.T) (*client.Client, *httptest.Server, *registry.Registry) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	ctx := context.Background()
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _, err := reg.EnsureAdminToken(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.New(reg, apiserver.Options{Version: "test"}))
	t.Cleanup(srv.Close)
	return client.New(client.Config{Server: srv.URL, Token: tok}), srv, reg
}

func newApp(name string, replicas int32) *api.App {
	return &api.App{
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: api.AppSpec{Replicas: &replicas, Template: api.PodTemplate{Containers: []api.Container{
			{Name: "web", Command: []string{"/bin/sleep", "60"}},
		}}},
	}
}

func TestClientCRUD(t *testing.T) {
	c, _, _ := newClient(t)
	ctx := t.Context()
	created, err := c.Create(ctx, newApp("hello", 1))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, appKind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(created, got); diff != "" {
		t.Fatalf("Get differs from Create (-create +get):\n%s", diff)
	}
	if tm := got.GetTypeMeta(); tm.Kind != "App" || tm.APIVersion != api.Version {
		t.Fatalf("type meta = %+v", tm)
	}

	_, err = c.Create(ctx, newApp("hello", 1))
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Reason != api.ReasonAlreadyExists || ae.Code != 409 {
		t.Fatalf("duplicate create error = %v", err)
	}

	a := *got.(*api.App)
	a.Spec.Replicas = ptr(int32(3))
	upd, err := c.Update(ctx, &a)
	if err != nil {
		t.Fatal(err)
	}
	if upd.GetMeta().Generation != 2 {
		t.Fatalf("generation = %d, want 2", upd.GetMeta().Generation)
	}
	if _, err := c.Update(ctx, &a); !api.IsConflict(err) {
		t.Fatalf("stale update error = %v, want Conflict", err)
	}

	s := *upd.(*api.App)
	s.Status.Phase = api.AppHealthy
	withStatus, err := c.UpdateStatus(ctx, &s)
	if err != nil {
		t.Fatal(err)
	}
	if withStatus.(*api.App).Status.Phase != api.AppHealthy {
		t.Fatalf("status not written")
	}

	objs, rv, err := c.List(ctx, appKind, "", "app=hello")
	if err != nil || len(objs) != 1 || rv < withStatus.GetMeta().ResourceVersion {
		t.Fatalf("List = %d objects rv %d, %v", len(objs), rv, err)
	}
	objs, _, err = c.List(ctx, appKind, "default", "app=other")
	if err != nil || len(objs) != 0 {
		t.Fatalf("List with selector = %d objects, %v", len(objs), err)
	}

	if err := c.Delete(ctx, appKind, "default", "hello"); err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(ctx, appKind, "default", "hello")
	if !api.IsNotFound(err) || err.Error() != `apps "hello" not found in project "default"` {
		t.Fatalf("Get after delete = %v", err)
	}

	if _, err := c.Create(ctx, &api.Project{Metadata: api.ObjectMeta{Name: "shop"}}); err != nil {
		t.Fatal(err)
	}
	p, err := c.Get(ctx, kind("Project"), "", "shop")
	if err != nil || p.GetMeta().Name != "shop" {
		t.Fatalf("Get project = %v, %v", p, err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestClientApply(t *testing.T) {
	c, _, _ := newClient(t)
	ctx := t.Context()
	objs := []api.Object{newApp("a", 1), &api.Project{Metadata: api.ObjectMeta{Name: "p"}}}
	in := objs[0].GetTypeMeta().Kind
	res, err := c.Apply(ctx, objs, false)
	if err != nil {
		t.Fatal(err)
	}
	if objs[0].GetTypeMeta().Kind != in {
		t.Fatal("Apply changed the caller's object")
	}
	type r struct{ Kind, Project, Name, Result string }
	var got []r
	for _, x := range res {
		got = append(got, r{x.Kind, x.Project, x.Name, x.Result})
		if x.Object == nil || x.Object.GetMeta().UID == "" {
			t.Fatalf("result %s has no stored object", x.Name)
		}
	}
	if diff := cmp.Diff([]r{{"App", "default", "a", "created"}, {"Project", "", "p", "created"}}, got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}
	res, err = c.Apply(ctx, []api.Object{newApp("a", 2)}, false)
	if err != nil || res[0].Result != "configured" || *res[0].Object.(*api.App).Spec.Replicas != 2 {
		t.Fatalf("second apply = %+v, %v", res, err)
	}

	_, err = c.Apply(ctx, []api.Object{newApp("b", 1), newApp("c", -1)}, false)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != 422 || len(ae.Causes) != 1 || ae.Causes[0].Field != "items[1].spec.replicas" {
		t.Fatalf("invalid apply error = %#v", err)
	}
	if _, err := c.Get(ctx, appKind, "", "b"); !api.IsNotFound(err) {
		t.Fatalf("invalid apply wrote b: %v", err)
	}
}

func TestClientWatch(t *testing.T) {
	c, _, _ := newClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	existing, err := c.Create(ctx, newApp("before", 1))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := c.Watch(ctx, appKind, "default", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.Create(ctx, newApp("after", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, appKind, "default", "before"); err != nil {
		t.Fatal(err)
	}
	type ev struct {
		Type, Name string
	}
	var got []ev
	var lastRV int64
	for len(got) < 3 {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("watch closed")
			}
			if e.Type == client.Error {
				t.Fatalf("ERROR: %v", e.Err)
			}
			got = append(got, ev{e.Type, e.Object.GetMeta().Name})
			lastRV = e.Object.GetMeta().ResourceVersion
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %v", got)
		}
	}
	want := []ev{{client.Added, "before"}, {client.Added, "after"}, {client.Deleted, "before"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if lastRV <= created.GetMeta().ResourceVersion || created.GetMeta().ResourceVersion <= existing.GetMeta().ResourceVersion {
		t.Fatalf("revisions not increasing: %d %d %d", existing.GetMeta().ResourceVersion, created.GetMeta().ResourceVersion, lastRV)
	}
	cancel()
	for range ch { // the channel closes once ctx ends
	}
}

func TestClientErrors(t *testing.T) {
	c, srv, _ := newClient(t)
	ctx := t.Context()
	v, err := c.Version(ctx)
	if err != nil || v.Version != "test" || v.APIVersion != api.Version {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	if err := c.Healthz(ctx); err != nil {
		t.Fatal(err)
	}

	anon := client.New(client.Config{Server: srv.URL})
	if err := anon.Healthz(ctx); err != nil {
		t.Fatalf("healthz needs no token: %v", err)
	}
	_, err = anon.Get(ctx, appKind, "default", "x")
	if api.ReasonOf(err) != api.ReasonUnauthorized || client.IsUnreachable(err) {
		t.Fatalf("no token error = %v", err)
	}

	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	dead := client.New(client.Config{Server: addr})
	_, err = dead.Get(ctx, appKind, "default", "x")
	if !client.IsUnreachable(err) {
		t.Fatalf("error = %v, want unreachable", err)
	}
	want := fmt.Sprintf(`cannot reach the Slipway API at http://%s: connection refused (is "slipway up" running?)`, addr)
	if err.Error() != want {
		t.Fatalf("message = %q, want %q", err.Error(), want)
	}
	if _, err := dead.Watch(ctx, appKind, "", 0, ""); !client.IsUnreachable(err) {
		t.Fatalf("watch error = %v, want unreachable", err)
	}

	// A server that is not Slipway's API still gives a typed error.
	other := httptest.NewServer(nil) // the default mux: 404 text pages
	defer other.Close()
	_, err = client.New(client.Config{Server: other.URL}).Get(ctx, appKind, "", "x")
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != 404 || ae.Reason != api.ReasonNotFound || !strings.Contains(ae.Message, "404 Not Found") {
		t.Fatalf("non-API error = %#v", err)
	}
}

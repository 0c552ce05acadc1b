package registry_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
)

var (
	t0       = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	appKind  = kind("App")
	projKind = kind("Project")
	podKind  = kind("Pod")
	secKind  = kind("Secret")
	evKind   = kind("Event")
)

func kind(name string) api.KindInfo {
	k, ok := api.LookupKind(name)
	if !ok {
		panic(name)
	}
	return k
}

type env struct {
	reg *registry.Registry
	st  *bolt.Store
	ctx context.Context
}

// newEnv opens a real bolt file in a temporary directory with a fixed clock
// and predictable uids (uid-1, uid-2, ...).
func newEnv(t testing.TB, opts registry.Options) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var n atomic.Int64
	opts.Now = func() time.Time { return t0 }
	opts.NewUID = func() string { return fmt.Sprintf("uid-%d", n.Add(1)) }
	return &env{reg: registry.New(st, opts), st: st, ctx: t.Context()}
}

func newApp(project, name string) *api.App {
	return &api.App{
		Metadata: api.ObjectMeta{Name: name, Project: project, Labels: map[string]string{"app": name}},
		Spec: api.AppSpec{Template: api.PodTemplate{Containers: []api.Container{
			{Name: "web", Command: []string{"/bin/sleep", "60"}},
		}}},
	}
}

func ptr[T any](v T) *T { return &v }

func (e *env) mustCreate(t *testing.T, obj api.Object) api.Object {
	t.Helper()
	out, err := e.reg.Create(e.ctx, obj)
	if err != nil {
		t.Fatalf("create %s: %v", obj.GetMeta().Name, err)
	}
	return out
}

func (e *env) mustProject(t *testing.T, name string) {
	t.Helper()
	e.mustCreate(t, &api.Project{Metadata: api.ObjectMeta{Name: name}})
}

func wantReason(t *testing.T, err error, reason string) *api.Error {
	t.Helper()
	var ae *api.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want an *api.Error %s", err, err, reason)
	}
	if ae.Reason != reason {
		t.Fatalf("reason = %s (%v), want %s", ae.Reason, err, reason)
	}
	return ae
}

func TestCreateFillsServerFieldsAndDefaultsAndDropsStatus(t *testing.T) {
	e := newEnv(t, registry.Options{})
	in := newApp("", "hello")
	in.Status.Phase = api.AppHealthy // a user cannot set status
	got := e.mustCreate(t, in)

	rv := got.GetMeta().ResourceVersion
	if rv <= 0 {
		t.Fatalf("resourceVersion = %d, want > 0", rv)
	}
	want := newApp(api.DefaultProject, "hello")
	want.TypeMeta = api.TypeMeta{APIVersion: api.Version, Kind: "App"}
	api.SetDefaults(want)
	// uid-1 went to the default project, created on demand.
	want.Metadata.UID = "uid-2"
	want.Metadata.Generation = 1
	want.Metadata.CreationTimestamp = t0
	want.Metadata.ResourceVersion = rv
	if diff := cmp.Diff(api.Object(want), got); diff != "" {
		t.Fatalf("created object (-want +got):\n%s", diff)
	}
	if *got.(*api.App).Spec.Replicas != 1 {
		t.Fatalf("replicas default not applied")
	}
	if in.Metadata.UID != "" || in.Status.Phase != api.AppHealthy {
		t.Fatalf("Create changed the caller's object: %+v", in.Metadata)
	}
	read, err := e.reg.Get(e.ctx, appKind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got, read); diff != "" {
		t.Fatalf("Get differs from Create's result (-create +get):\n%s", diff)
	}
	kv, err := e.st.Get(e.ctx, "/slipway/apps/default/hello")
	if err != nil {
		t.Fatalf("object not under its documented key: %v", err)
	}
	if kv.ModRevision != rv {
		t.Fatalf("resourceVersion %d != ModRevision %d", rv, kv.ModRevision)
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustCreate(t, newApp("", "hello"))

	_, err := e.reg.Create(e.ctx, newApp("", "hello"))
	ae := wantReason(t, err, api.ReasonAlreadyExists)
	if want := `apps "hello" already exists in project "default"`; ae.Message != want {
		t.Fatalf("message = %q, want %q", ae.Message, want)
	}

	_, err = e.reg.Create(e.ctx, newApp("nope", "hello"))
	ae = wantReason(t, err, api.ReasonNotFound)
	if want := `project "nope" not found`; ae.Message != want {
		t.Fatalf("message = %q, want %q", ae.Message, want)
	}

	bad := newApp("", "bad")
	bad.Spec.Replicas = ptr(int32(-1))
	_, err = e.reg.Create(e.ctx, bad)
	ae = wantReason(t, err, api.ReasonInvalid)
	if len(ae.Causes) != 1 || ae.Causes[0].Field != "spec.replicas" {
		t.Fatalf("causes = %+v, want one on spec.replicas", ae.Causes)
	}
	if _, err := e.reg.Get(e.ctx, appKind, "", "bad"); !api.IsNotFound(err) {
		t.Fatalf("invalid object was written: %v", err)
	}
	_, err = e.reg.Get(e.ctx, appKind, "default", "missing")
	ae = wantReason(t, err, api.ReasonNotFound)
	if want := `apps "missing" not found in project "default"`; ae.Message != want {
		t.Fatalf("message = %q, want %q", ae.Message, want)
	}
}

func TestListFiltersByProjectAndLabels(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustProject(t, "p1")
	e.mustProject(t, "p2")
	for _, p := range []string{"p1", "p2"} {
		for _, n := range []string{"a", "b"} {
			a := newApp(p, n)
			a.Metadata.Labels["tier"] = map[string]string{"a": "web", "b": "db"}[n]
			e.mustCreate(t, a)
		}
	}
	names := func(objs []api.Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.GetMeta().Project+"/"+o.GetMeta().Name)
		}
		return out
	}
	for _, tc := range []struct {
		project, selector string
		want              []string
	}{
		{"", "", []string{"p1/a", "p1/b", "p2/a", "p2/b"}},
		{"p1", "", []string{"p1/a", "p1/b"}},
		{"p2", "tier=db", []string{"p2/b"}},
		{"", "tier!=db", []string{"p1/a", "p2/a"}},
		{"", "tier in (web,db),app notin (a)", []string{"p1/b", "p2/b"}},
		{"", "!tier", nil},
		{"p3", "", nil},
	} {
		objs, rev, err := e.reg.List(e.ctx, appKind, tc.project, registry.ListOptions{LabelSelector: tc.selector})
		if err != nil {
			t.Fatalf("list %q %q: %v", tc.project, tc.selector, err)
		}
		if diff := cmp.Diff(tc.want, names(objs)); diff != "" {
			t.Errorf("list %q %q (-want +got):\n%s", tc.project, tc.selector, diff)
		}
		cur, _ := e.st.Revision(e.ctx)
		if rev != cur {
			t.Errorf("list revision = %d, want the store's %d", rev, cur)
		}
	}
	_, _, err := e.reg.List(e.ctx, appKind, "", registry.ListOptions{LabelSelector: "a in (b"})
	wantReason(t, err, api.ReasonBadRequest)
}

func TestUpdateCompareAndSwap(t *testing.T) {
	e := newEnv(t, registry.Options{})
	created := e.mustCreate(t, newApp("", "hello")).(*api.App)

	first := *created
	first.Spec.Replicas = ptr(int32(3))
	updated, err := e.reg.Update(e.ctx, &first)
	if err != nil {
		t.Fatal(err)
	}
	if updated.GetMeta().ResourceVersion <= created.Metadata.ResourceVersion {
		t.Fatalf("resourceVersion did not grow: %d -> %d", created.Metadata.ResourceVersion, updated.GetMeta().ResourceVersion)
	}

	stale := *created // still carries the first resourceVersion
	stale.Spec.Replicas = ptr(int32(5))
	_, err = e.reg.Update(e.ctx, &stale)
	ae := wantReason(t, err, api.ReasonConflict)
	want := `Operation cannot be fulfilled on apps "hello": the object has been modified; please apply your changes to the latest version and try again`
	if ae.Message != want {
		t.Fatalf("message = %q, want %q", ae.Message, want)
	}
	got, _ := e.reg.Get(e.ctx, appKind, "", "hello")
	if r := *got.(*api.App).Spec.Replicas; r != 3 {
		t.Fatalf("stale update was written: replicas = %d", r)
	}

	noRV := *got.(*api.App)
	noRV.Metadata.ResourceVersion = 0
	_, err = e.reg.Update(e.ctx, &noRV)
	ae = wantReason(t, err, api.ReasonInvalid)
	if ae.Causes[0].Field != "metadata.resourceVersion" {
		t.Fatalf("causes = %+v", ae.Causes)
	}

	missing := newApp("", "ghost")
	missing.Metadata.ResourceVersion = 5
	_, err = e.reg.Update(e.ctx, missing)
	wantReason(t, err, api.ReasonNotFound)

	// An update that changes nothing writes nothing.
	same, err := e.reg.Update(e.ctx, got)
	if err != nil {
		t.Fatal(err)
	}
	if same.GetMeta().ResourceVersion != got.GetMeta().ResourceVersion {
		t.Fatalf("no-op update wrote: %d -> %d", got.GetMeta().ResourceVersion, same.GetMeta().ResourceVersion)
	}
}

func TestSpecAndStatusAreSeparate(t *testing.T) {
	e := newEnv(t, registry.Options{})
	created := e.mustCreate(t, newApp("", "hello")).(*api.App)

	// A controller reports status.
	st := *created
	st.Status = api.AppStatus{Phase: api.AppHealthy, ReadyReplicas: 1, ObservedGeneration: 1}
	st.Spec.Replicas = ptr(int32(9)) // must be ignored by a status update
	afterStatus, err := e.reg.UpdateStatus(e.ctx, &st)
	if err != nil {
		t.Fatal(err)
	}
	a := afterStatus.(*api.App)
	if *a.Spec.Replicas != 1 || a.Status.Phase != api.AppHealthy || a.Metadata.Generation != 1 {
		t.Fatalf("after status update: replicas=%d phase=%q generation=%d, want 1 Healthy 1", *a.Spec.Replicas, a.Status.Phase, a.Metadata.Generation)
	}

	// A user updates spec from a copy whose status is stale (empty).
	user := *created
	user.Metadata.ResourceVersion = a.Metadata.ResourceVersion
	user.Spec.Replicas = ptr(int32(2))
	user.Status = api.AppStatus{}
	afterUser, err := e.reg.Update(e.ctx, &user)
	if err != nil {
		t.Fatal(err)
	}
	u := afterUser.(*api.App)
	if u.Status.Phase != api.AppHealthy || u.Status.ReadyReplicas != 1 {
		t.Fatalf("user update clobbered status: %+v", u.Status)
	}
	if u.Metadata.Generation != 2 || *u.Spec.Replicas != 2 {
		t.Fatalf("generation=%d replicas=%d, want 2 2", u.Metadata.Generation, *u.Spec.Replicas)
	}

	// A label change is not a spec change.
	lbl := *u
	lbl.Metadata.Labels = map[string]string{"app": "hello", "team": "x"}
	afterLabel, err := e.reg.Update(e.ctx, &lbl)
	if err != nil {
		t.Fatal(err)
	}
	if g := afterLabel.GetMeta().Generation; g != 2 {
		t.Fatalf("generation after label change = %d, want 2", g)
	}
	if afterLabel.GetMeta().ResourceVersion == u.Metadata.ResourceVersion {
		t.Fatal("label change was not written")
	}

	// A status update with a stale resourceVersion conflicts.
	stale := *a
	stale.Status.Phase = api.AppDegraded
	_, err = e.reg.UpdateStatus(e.ctx, &stale)
	wantReason(t, err, api.ReasonConflict)

	// Secrets have no status.
	sec := &api.Secret{Metadata: api.ObjectMeta{Name: "s", ResourceVersion: 1}}
	_, err = e.reg.UpdateStatus(e.ctx, sec)
	wantReason(t, err, api.ReasonBadRequest)
}

func TestCreateWithStatusKeepsStatus(t *testing.T) {
	e := newEnv(t, registry.Options{})
	pod := &api.Pod{
		Metadata: api.ObjectMeta{Name: "hello-1-abcde"},
		Spec:     api.PodSpec{App: "hello", Revision: 1, Containers: []api.Container{{Name: "web", Command: []string{"/bin/true"}}}},
		Status:   api.PodStatus{Phase: api.PodPending},
	}
	got, err := e.reg.CreateWithStatus(e.ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.(*api.Pod).Status.Phase; p != api.PodPending {
		t.Fatalf("phase = %q, want Pending", p)
	}
	read, _ := e.reg.Get(e.ctx, podKind, "", "hello-1-abcde")
	if p := read.(*api.Pod).Status.Phase; p != api.PodPending {
		t.Fatalf("stored phase = %q, want Pending", p)
	}
}

func TestApplyCreatedConfiguredUnchanged(t *testing.T) {
	e := newEnv(t, registry.Options{})
	res, first, err := e.reg.Apply(e.ctx, newApp("", "hello"))
	if err != nil || res != registry.Created {
		t.Fatalf("first apply = %q, %v; want created", res, err)
	}

	// Status written by a controller survives later applies.
	withStatus := *first.(*api.App)
	withStatus.Status.Phase = api.AppHealthy
	st, err := e.reg.UpdateStatus(e.ctx, &withStatus)
	if err != nil {
		t.Fatal(err)
	}

	// The same manifest again (defaults not spelled out, server fields
	// absent) is unchanged and writes nothing.
	res, again, err := e.reg.Apply(e.ctx, newApp("", "hello"))
	if err != nil || res != registry.Unchanged {
		t.Fatalf("second apply = %q, %v; want unchanged", res, err)
	}
	if again.GetMeta().ResourceVersion != st.GetMeta().ResourceVersion {
		t.Fatalf("unchanged apply wrote: rv %d -> %d", st.GetMeta().ResourceVersion, again.GetMeta().ResourceVersion)
	}

	changed := newApp("", "hello")
	changed.Spec.Replicas = ptr(int32(4))
	changed.Metadata.ResourceVersion = 1 // ignored: apply is unconditional
	res, conf, err := e.reg.Apply(e.ctx, changed)
	if err != nil || res != registry.Configured {
		t.Fatalf("third apply = %q, %v; want configured", res, err)
	}
	c := conf.(*api.App)
	if *c.Spec.Replicas != 4 || c.Metadata.Generation != 2 || c.Status.Phase != api.AppHealthy || c.Metadata.UID != first.GetMeta().UID {
		t.Fatalf("configured: replicas=%d generation=%d phase=%q uid=%s", *c.Spec.Replicas, c.Metadata.Generation, c.Status.Phase, c.Metadata.UID)
	}

	relabel := newApp("", "hello")
	relabel.Spec.Replicas = ptr(int32(4))
	relabel.Metadata.Annotations = map[string]string{"note": "x"}
	res, rl, err := e.reg.Apply(e.ctx, relabel)
	if err != nil || res != registry.Configured || rl.GetMeta().Generation != 2 {
		t.Fatalf("annotation apply = %q, gen %d, %v; want configured, generation 2", res, rl.GetMeta().Generation, err)
	}
}

func TestApplyListValidatesAllBeforeWriting(t *testing.T) {
	e := newEnv(t, registry.Options{})
	bad := newApp("", "bad")
	bad.Spec.Template.Containers[0].Name = "Not_A_Label"
	objs := []api.Object{newApp("", "one"), newApp("", "two"), bad}
	_, err := e.reg.ApplyList(e.ctx, objs, registry.ApplyOptions{})
	ae := wantReason(t, err, api.ReasonInvalid)
	if len(ae.Causes) != 1 || ae.Causes[0].Field != "items[2].spec.template.containers[0].name" {
		t.Fatalf("causes = %+v, want one on items[2].spec.template.containers[0].name", ae.Causes)
	}
	list, _, _ := e.reg.List(e.ctx, appKind, "", registry.ListOptions{})
	if len(list) != 0 {
		t.Fatalf("%d apps written by an invalid apply", len(list))
	}

	// The project comes after its app in the input; apply orders by kind.
	objs = []api.Object{newApp("shop", "cart"), &api.Project{Metadata: api.ObjectMeta{Name: "shop"}}}
	dry, err := e.reg.ApplyList(e.ctx, objs, registry.ApplyOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry[0].Result != registry.Created || dry[1].Result != registry.Created {
		t.Fatalf("dry run results = %+v", dry)
	}
	if _, err := e.reg.Get(e.ctx, projKind, "", "shop"); !api.IsNotFound(err) {
		t.Fatalf("dry run wrote the project: %v", err)
	}
	results, err := e.reg.ApplyList(e.ctx, objs, registry.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{results[0].Kind + "/" + results[0].Name + " " + results[0].Result, results[1].Kind + "/" + results[1].Name + " " + results[1].Result}
	if diff := cmp.Diff([]string{"App/cart created", "Project/shop created"}, got); diff != "" {
		t.Fatalf("results (-want +got):\n%s", diff)
	}

	// A project neither existing nor in the apply is found before writing.
	_, err = e.reg.ApplyList(e.ctx, []api.Object{newApp("", "three"), newApp("nowhere", "x")}, registry.ApplyOptions{})
	ae = wantReason(t, err, api.ReasonInvalid)
	if len(ae.Causes) != 1 || ae.Causes[0].Field != "items[1].metadata.project" {
		t.Fatalf("causes = %+v", ae.Causes)
	}
	if _, err := e.reg.Get(e.ctx, appKind, "", "three"); !api.IsNotFound(err) {
		t.Fatalf("an apply with a missing project wrote: %v", err)
	}

	// The same object twice is refused.
	_, err = e.reg.ApplyList(e.ctx, []api.Object{newApp("", "d"), newApp("", "d")}, registry.ApplyOptions{})
	ae = wantReason(t, err, api.ReasonInvalid)
	if ae.Causes[0].Field != "items[1].metadata.name" {
		t.Fatalf("causes = %+v", ae.Causes)
	}
}

func TestDeleteProjectCascades(t *testing.T) {
	e := newEnv(t, registry.Options{})
	e.mustProject(t, "doomed")
	doomed, _ := e.reg.Get(e.ctx, projKind, "", "doomed")
	staleRV := doomed.GetMeta().ResourceVersion
	e.mustCreate(t, newApp("doomed", "a"))
	e.mustCreate(t, &api.Secret{Metadata: api.ObjectMeta{Name: "s", Project: "doomed"}, Data: map[string]string{"k": "v"}})
	e.mustCreate(t, newApp("default", "a"))

	// Mark it changed since staleRV was read.
	doomed.(*api.Project).Spec.Description = "about to go"
	if _, err := e.reg.Update(e.ctx, doomed); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Delete(e.ctx, projKind, "", "doomed", registry.DeleteOptions{ResourceVersion: staleRV})
	wantReason(t, err, api.ReasonConflict)

	deleted, err := e.reg.Delete(e.ctx, projKind, "", "doomed", registry.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if deleted.GetMeta().Name != "doomed" {
		t.Fatalf("deleted %q", deleted.GetMeta().Name)
	}
	res, err := e.st.List(e.ctx, "/slipway/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range res.KVs {
		keys = append(keys, kv.Key)
	}
	want := []string{"/slipway/apps/default/a", "/slipway/projects/default"}
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Fatalf("keys after cascade (-want +got):\n%s", diff)
	}
	_, err = e.reg.Create(e.ctx, newApp("doomed", "b"))
	wantReason(t, err, api.ReasonNotFound)

	_, err = e.reg.Delete(e.ctx, projKind, "", "default", registry.DeleteOptions{})
	wantReason(t, err, api.ReasonForbidden)

	_, err = e.reg.Delete(e.ctx, appKind, "default", "a", registry.DeleteOptions{ResourceVersion: staleRV})
	wantReason(t, err, api.ReasonConflict)
	gone, err := e.reg.Delete(e.ctx, appKind, "default", "a", registry.DeleteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rev, _ := e.st.Revision(e.ctx)
	if gone.GetMeta().ResourceVersion != rev {
		t.Fatalf("deleted object's resourceVersion = %d, want the deleting revision %d", gone.GetMeta().ResourceVersion, rev)
	}
	_, err = e.reg.Delete(e.ctx, appKind, "default", "a", registry.DeleteOptions{})
	wantReason(t, err, api.ReasonNotFound)
}

func TestEventsArePrunedOldestFirst(t *testing.T) {
	e := newEnv(t, registry.Options{MaxEventsPerProject: 3})
	for i := range 5 {
		e.mustCreate(t, &api.Event{
			Metadata:       api.ObjectMeta{Name: fmt.Sprintf("ev-%d", i)},
			InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"},
			Reason:         "Test", Message: "m",
		})
	}
	objs, _, err := e.reg.List(e.ctx, evKind, "default", registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetMeta().Name)
	}
	if diff := cmp.Diff([]string{"ev-2", "ev-3", "ev-4"}, names); diff != "" {
		t.Fatalf("events kept (-want +got):\n%s", diff)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, registry.Options{})
	tok, created, err := e.reg.EnsureAdminToken(e.ctx, false)
	if err != nil || !created || len(tok) < 40 {
		t.Fatalf("EnsureAdminToken = %q, %v, %v", tok, created, err)
	}
	again, created, err := e.reg.EnsureAdminToken(e.ctx, false)
	if err != nil || created || again != "" {
		t.Fatalf("second EnsureAdminToken = %q, %v, %v; want nothing created", again, created, err)
	}
	p, err := e.reg.Authenticate(e.ctx, tok)
	if err != nil || p != (registry.Principal{Name: "admin", Role: registry.RoleAdmin}) {
		t.Fatalf("Authenticate = %+v, %v", p, err)
	}
	_, err = e.reg.Authenticate(e.ctx, tok+"x")
	wantReason(t, err, api.ReasonUnauthorized)
	_, err = e.reg.Authenticate(e.ctx, "")
	wantReason(t, err, api.ReasonUnauthorized)

	view, err := e.reg.CreateToken(e.ctx, "viewer", registry.RoleView)
	if err != nil {
		t.Fatal(err)
	}
	p, err = e.reg.Authenticate(e.ctx, view)
	if err != nil || p.CanWrite() || p.Name != "viewer" {
		t.Fatalf("view token = %+v, %v", p, err)
	}

	// Only hashes are stored, with a schema version.
	kv, err := e.st.Get(e.ctx, "/slipway/internal/tokens/admin")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kv.Value), tok) || !strings.Contains(string(kv.Value), `"schemaVersion":1`) {
		t.Fatalf("stored token record = %s", kv.Value)
	}

	// Replacing (the token file was lost) invalidates the old token.
	rotated, created, err := e.reg.EnsureAdminToken(e.ctx, true)
	if err != nil || !created || rotated == tok {
		t.Fatalf("replace = %v, %v", created, err)
	}
	if _, err := e.reg.Authenticate(e.ctx, tok); api.ReasonOf(err) != api.ReasonUnauthorized {
		t.Fatalf("old admin token still works: %v", err)
	}
	if _, err := e.reg.Authenticate(e.ctx, rotated); err != nil {
		t.Fatalf("new admin token refused: %v", err)
	}
}

func TestConcurrentApplyRetriesCompareAndSwap(t *testing.T) {
	e := newEnv(t, registry.Options{})
	const writers = 8
	results := make(chan string, writers)
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			a := newApp("", "contended")
			a.Spec.Replicas = ptr(int32(i))
			res, _, err := e.reg.Apply(e.ctx, a)
			results <- res
			errs <- err
		}()
	}
	counts := map[string]int{}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent apply failed: %v", err)
		}
		counts[<-results]++
	}
	if counts[registry.Created] != 1 || counts[registry.Created]+counts[registry.Configured]+counts[registry.Unchanged] != writers {
		t.Fatalf("results = %v, want exactly one created", counts)
	}
	got, _ := e.reg.Get(e.ctx, appKind, "", "contended")
	// Every configured apply changed the spec once: generation counts them.
	if g := got.GetMeta().Generation; g != int64(1+counts[registry.Configured]) {
		t.Fatalf("generation = %d, want %d", g, 1+counts[registry.Configured])
	}
}

func TestApplyListManyObjectsKeepsInputOrder(t *testing.T) {
	e := newEnv(t, registry.Options{})
	var objs []api.Object
	for i := range 100 {
		objs = append(objs, newApp("bulk", fmt.Sprintf("app-%03d", i)))
	}
	objs = append(objs, &api.Project{Metadata: api.ObjectMeta{Name: "bulk"}})
	results, err := e.reg.ApplyList(e.ctx, objs, registry.ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results[:100] {
		if want := fmt.Sprintf("app-%03d", i); r.Name != want || r.Result != registry.Created || r.Object.GetMeta().ResourceVersion == 0 {
			t.Fatalf("results[%d] = %s %s", i, r.Name, r.Result)
		}
	}
	// The project was written before every app in it.
	for _, r := range results[:100] {
		if p := results[100].Object.GetMeta().ResourceVersion; p >= r.Object.GetMeta().ResourceVersion {
			t.Fatalf("project written at %d, after app %s at %d", p, r.Name, r.Object.GetMeta().ResourceVersion)
		}
	}
	list, _, _ := e.reg.List(e.ctx, appKind, "bulk", registry.ListOptions{})
	if len(list) != 100 {
		t.Fatalf("%d apps stored, want 100", len(list))
	}
}

package apiserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

type testServer struct {
	URL   string
	Admin string
	View  string
	Reg   *registry.Registry
	Store *bolt.Store
}

// newServer serves a real handler over loopback on a bolt file in a
// temporary directory, with an admin and a view token.
func newServer(t testing.TB, opts apiserver.Options, storeOpts bolt.Options) *testServer {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), storeOpts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		t.Fatal(err)
	}
	admin, _, err := reg.EnsureAdminToken(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	view, err := reg.CreateToken(ctx, "viewer", registry.RoleView)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(apiserver.New(reg, opts))
	t.Cleanup(srv.Close)
	return &testServer{URL: srv.URL, Admin: admin, View: view, Reg: reg, Store: st}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (s *testServer) do(t testing.TB, method, path, token, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// apiError decodes an error response and checks its status and reason.
func apiError(t *testing.T, r response, code int, reason string) *api.Error {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %s", err, r.Body)
	}
	if r.Status != code || e.Code != code || e.Reason != reason {
		t.Fatalf("status %d, body code %d reason %q (%s); want %d %s", r.Status, e.Code, e.Reason, e.Message, code, reason)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q", ct)
	}
	return &e
}

const appJSON = `{"apiVersion":"slipway.dev/v1","kind":"App","metadata":{"name":%q},"spec":{"replicas":%d,"template":{"containers":[{"name":"web","command":["/bin/sleep","60"]}]}}}`

func appBody(name string, replicas int) string { return fmt.Sprintf(appJSON, name, replicas) }

func TestAuthentication(t *testing.T) {
	s := newServer(t, apiserver.Options{}, bolt.Options{})
	const apps = "/api/v1/projects/default/apps"

	r := s.do(t, "GET", apps, "", "")
	apiError(t, r, 401, api.ReasonUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	r = s.do(t, "GET", apps, "slw_wrong", "")
	e := apiError(t, r, 401, api.ReasonUnauthorized)
	if strings.Contains(e.Message, "slw_wrong") {
		t.Fatalf("error echoes the token: %q", e.Message)
	}
	req, _ := http.NewRequest("GET", s.URL+apps, nil)
	req.Header.Set("Authorization", "Basic "+s.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("Basic scheme: status %d, want 401", resp.StatusCode)
	}

	if r := s.do(t, "GET", apps, s.View, ""); r.Status != 200 {
		t.Fatalf("view token GET: %d %s", r.Status, r.Body)
	}
	r = s.do(t, "POST", apps, s.View, appBody("x", 1))
	apiError(t, r, 403, api.ReasonForbidden)
	if _, err := s.Reg.Get(context.Background(), kind("App"), "default", "x"); !api.IsNotFound(err) {
		t.Fatalf("a view token wrote: %v", err)
	}
	r = s.do(t, "POST", "/api/v1/apply", s.View, `{"items":[]}`)
	apiError(t, r, 403, api.ReasonForbidden)

	for _, p := range []string{"/healthz", "/readyz"} {
		if r := s.do(t, "GET", p, "", ""); r.Status != 200 || string(r.Body) != "{\"status\":\"ok\"}\n" {
			t.Fatalf("%s without token: %d %s", p, r.Status, r.Body)
		}
	}
	apiError(t, s.do(t, "GET", "/version", "", ""), 401, api.ReasonUnauthorized)
	apiError(t, s.do(t, "GET", "/api/v1", "", ""), 401, api.ReasonUnauthorized)
}

func kind(name string) api.KindInfo {
	k, _ := api.LookupKind(name)
	return k
}

func decodeApp(t *testing.T, r response, code int) *api.App {
	t.Helper()
	if r.Status != code {
		t.Fatalf("status %d, want %d: %s", r.Status, code, r.Body)
	}
	var a api.App
	if err := json.Unmarshal(r.Body, &a); err != nil {
		t.Fatal(err)
	}
	return &a
}

func TestObjectLifecycle(t *testing.T) {
	s := newServer(t, apiserver.Options{}, bolt.Options{})
	const apps = "/api/v1/projects/default/apps"
	created := decodeApp(t, s.do(t, "POST", apps, s.Admin, appBody("hello", 1)), 201)
	if created.Metadata.Project != "default" || created.Metadata.Generation != 1 || created.Metadata.UID == "" {
		t.Fatalf("created metadata = %+v", created.Metadata)
	}
	got := decodeApp(t, s.do(t, "GET", apps+"/hello", s.Admin, ""), 200)
	if diff := cmp.Diff(created, got); diff != "" {
		t.Fatalf("GET differs from POST (-post +get):\n%s", diff)
	}
	apiError(t, s.do(t, "POST", apps, s.Admin, appBody("hello", 1)), 409, api.ReasonAlreadyExists)

	update := func(rv int64, replicas int) response {
		body := fmt.Sprintf(`{"metadata":{"name":"hello","resourceVersion":%d},"spec":{"replicas":%d,"template":{"containers":[{"name":"web","command":["/bin/sleep","60"]}]}}}`, rv, replicas)
		return s.do(t, "PUT", apps+"/hello", s.Admin, body)
	}
	updated := decodeApp(t, update(created.Metadata.ResourceVersion, 2), 200)
	if updated.Metadata.Generation != 2 || *updated.Spec.Replicas != 2 {
		t.Fatalf("updated = gen %d replicas %d", updated.Metadata.Generation, *updated.Spec.Replicas)
	}
	e := apiError(t, update(created.Metadata.ResourceVersion, 3), 409, api.ReasonConflict)
	if want := `Operation cannot be fulfilled on apps "hello": the object has been modified; please apply your changes to the latest version and try again`; e.Message != want {
		t.Fatalf("conflict message = %q", e.Message)
	}

	status := fmt.Sprintf(`{"metadata":{"name":"hello","resourceVersion":%d},"spec":{"template":{"containers":[]}},"status":{"phase":"Healthy","readyReplicas":2}}`, updated.Metadata.ResourceVersion)
	st := decodeApp(t, s.do(t, "PUT", apps+"/hello/status", s.Admin, status), 200)
	if st.Status.Phase != "Healthy" || *st.Spec.Replicas != 2 || len(st.Spec.Template.Containers) != 1 {
		t.Fatalf("after status PUT: phase %q replicas %d containers %d", st.Status.Phase, *st.Spec.Replicas, len(st.Spec.Template.Containers))
	}

	var list struct {
		Kind     string `json:"kind"`
		Metadata struct {
			ResourceVersion int64 `json:"resourceVersion"`
		} `json:"metadata"`
		Items []api.App `json:"items"`
	}
	r := s.do(t, "GET", "/api/v1/apps?labelSelector="+"nothing%3Dhere", s.Admin, "")
	if err := json.Unmarshal(r.Body, &list); err != nil || r.Status != 200 || list.Kind != "AppList" || len(list.Items) != 0 {
		t.Fatalf("selector list: %d %s", r.Status, r.Body)
	}
	r = s.do(t, "GET", "/api/v1/apps", s.Admin, "")
	if err := json.Unmarshal(r.Body, &list); err != nil || len(list.Items) != 1 || list.Metadata.ResourceVersion < st.Metadata.ResourceVersion {
		t.Fatalf("list: %d %s", r.Status, r.Body)
	}

	deleted := decodeApp(t, s.do(t, "DELETE", apps+"/hello", s.Admin, ""), 200)
	if deleted.Metadata.Name != "hello" {
		t.Fatalf("deleted %+v", deleted.Metadata)
	}
	e = apiError(t, s.do(t, "GET", apps+"/hello", s.Admin, ""), 404, api.ReasonNotFound)
	if want := `apps "hello" not found in project "default"`; e.Message != want {
		t.Fatalf("not found message = %q", e.Message)
	}

	// Projects live at /api/v1/projects; deleting one deletes its objects.
	if r := s.do(t, "POST", "/api/v1/projects", s.Admin, `{"metadata":{"name":"shop"}}`); r.Status != 201 {
		t.Fatalf("create project: %d %s", r.Status, r.Body)
	}
	decodeApp(t, s.do(t, "POST", "/api/v1/projects/shop/apps", s.Admin, appBody("cart", 1)), 201)
	if r := s.do(t, "DELETE", "/api/v1/projects/shop", s.Admin, ""); r.Status != 200 {
		t.Fatalf("delete project: %d %s", r.Status, r.Body)
	}
	apiError(t, s.do(t, "GET", "/api/v1/projects/shop/apps/cart", s.Admin, ""), 404, api.ReasonNotFound)
	e = apiError(t, s.do(t, "POST", "/api/v1/projects/shop/apps", s.Admin, appBody("cart", 1)), 404, api.ReasonNotFound)
	if e.Message != `project "shop" not found` {
		t.Fatalf("message = %q", e.Message)
	}
}

func TestRequestErrors(t *testing.T) {
	s := newServer(t, apiserver.Options{MaxBodyBytes: 4096}, bolt.Options{})
	const apps = "/api/v1/projects/default/apps"
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		reason                   string
		message                  string // exact, unless contains is set
		contains                 bool
		causes                   []api.Cause
	}{
		{name: "malformed JSON", method: "POST", path: apps, body: `{"metadata": {"name": "x",}}`,
			code: 400, reason: api.ReasonBadRequest,
			message: `invalid JSON at byte 27 (line 1, column 27): invalid character '}' looking for beginning of object key string`},
		{name: "truncated JSON", method: "POST", path: apps, body: `{"metadata": {`,
			code: 400, reason: api.ReasonBadRequest, message: `invalid JSON at byte 15 (line 1, column 15): unexpected end of input`},
		{name: "trailing data", method: "POST", path: apps, body: appBody("x", 1) + "\n {}",
			code: 400, reason: api.ReasonBadRequest, message: "unexpected data after the object", contains: true},
		{name: "multi-line JSON", method: "POST", path: apps, body: "{\n  \"metadata\": {\n    \"name\": x\n  }\n}",
			code: 400, reason: api.ReasonBadRequest,
			message: `invalid JSON at byte 31 (line 3, column 13): invalid character 'x' looking for beginning of value`},
		{name: "empty body", method: "POST", path: apps, body: "",
			code: 400, reason: api.ReasonBadRequest, message: "the request body is empty: expected a JSON object"},
		{name: "unknown fields", method: "POST", path: apps,
			body: `{"metadata":{"name":"x","nmae":"y"},"spec":{"replica":2,"template":{"containers":[{"name":"web","command":["a"],"prots":[]}]}}}`,
			code: 400, reason: api.ReasonBadRequest,
			message: `unknown fields "metadata.nmae", "spec.replica", "spec.template.containers[0].prots": the schema of slipway.dev/v1 has no such field (strict decoding)`,
			causes: []api.Cause{{Field: "metadata.nmae", Message: "Unknown field"}, {Field: "spec.replica", Message: "Unknown field"},
				{Field: "spec.template.containers[0].prots", Message: "Unknown field"}}},
		{name: "wrong type", method: "POST", path: apps, body: `{"metadata":{"name":"x"},"spec":{"replicas":"two"}}`,
			code: 400, reason: api.ReasonBadRequest,
			message: `spec.replicas: invalid value at byte 49: cannot use a JSON string as an integer (int32)`,
			causes:  []api.Cause{{Field: "spec.replicas", Message: "cannot use a JSON string as an integer (int32)"}}},
		{name: "invalid", method: "POST", path: apps, body: appBody("x", -1),
			code: 422, reason: api.ReasonInvalid,
			message: `App "x" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0`,
			causes:  []api.Cause{{Field: "spec.replicas", Message: "Invalid value: -1: must be greater than or equal to 0"}}},
		{name: "oversize", method: "POST", path: apps, body: `{"metadata":{"name":"` + strings.Repeat("x", 5000) + `"}}`,
			code: 413, reason: api.ReasonTooLarge, message: "request body is larger than the limit of 4096 bytes"},
		{name: "name differs from URL", method: "PUT", path: apps + "/other", body: appBody("x", 1),
			code: 400, reason: api.ReasonBadRequest, message: `metadata.name "x" in the body does not match "other" in the URL`,
			causes: []api.Cause{{Field: "metadata.name", Message: "does not match the URL"}}},
		{name: "project differs from URL", method: "POST", path: apps, body: `{"metadata":{"name":"x","project":"p"}}`,
			code: 400, reason: api.ReasonBadRequest, message: `metadata.project "p" in the body does not match "default" in the URL`,
			causes: []api.Cause{{Field: "metadata.project", Message: "does not match the URL"}}},
		{name: "kind differs from URL", method: "POST", path: apps, body: `{"kind":"Service","metadata":{"name":"x"}}`,
			code: 400, reason: api.ReasonBadRequest, message: `kind "Service" in the body does not match apps in the URL (kind App)`,
			causes: []api.Cause{{Field: "kind", Message: "does not match the URL"}}},
		{name: "unknown kind", method: "GET", path: "/api/v1/projects/default/widgets",
			code: 404, reason: api.ReasonNotFound,
			message: `unknown kind "widgets": the server knows projects, secrets, configmaps, persistentvolumeclaims, services, apps, revisions, pods, endpoints, routes, events, imagestreams, builds, templates, templateinstances`},
		{name: "singular kind", method: "GET", path: "/api/v1/projects/default/app",
			code: 404, reason: api.ReasonNotFound,
			message: `unknown kind "app" (did you mean "apps"? paths use the plural): the server knows projects, secrets, configmaps, persistentvolumeclaims, services, apps, revisions, pods, endpoints, routes, events, imagestreams, builds, templates, templateinstances`},
		{name: "no such path", method: "GET", path: "/nope",
			code: 404, reason: api.ReasonNotFound, message: `no such path "/nope": the API is under /api/v1`},
		{name: "method", method: "PATCH", path: apps + "/x", body: "{}",
			code: 405, reason: api.ReasonMethodNotAllowd, message: `method PATCH is not allowed on /api/v1/projects/default/apps/x: use GET, PUT, DELETE`},
		{name: "update without resourceVersion", method: "PUT", path: apps + "/x", body: appBody("x", 1),
			code: 422, reason: api.ReasonInvalid, message: "metadata.resourceVersion: Required value", contains: true,
			causes: []api.Cause{{Field: "metadata.resourceVersion", Message: "Required value: an update must carry the resourceVersion it read (use apply to update without one)"}}},
		{name: "bad selector", method: "GET", path: apps + "?labelSelector=a%20in%20(b",
			code: 400, reason: api.ReasonBadRequest, message: `invalid label selector "a in (b": "a in (b": the values of in must be in parentheses`},
		{name: "bad resourceVersion", method: "GET", path: apps + "?watch=true&resourceVersion=-3",
			code: 400, reason: api.ReasonBadRequest, message: `invalid resourceVersion="-3": must be a non-negative integer`},
		{name: "delete default project", method: "DELETE", path: "/api/v1/projects/default",
			code: 403, reason: api.ReasonForbidden, message: `project "default" may not be deleted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := apiError(t, s.do(t, tc.method, tc.path, s.Admin, tc.body), tc.code, tc.reason)
			if tc.contains && !strings.Contains(e.Message, tc.message) || !tc.contains && e.Message != tc.message {
				t.Errorf("message = %q, want %q", e.Message, tc.message)
			}
			if tc.causes != nil {
				if diff := cmp.Diff(tc.causes, e.Causes); diff != "" {
					t.Errorf("causes (-want +got):\n%s", diff)
				}
			}
		})
	}
	if objs, _, _ := s.Reg.List(context.Background(), kind("App"), "", registry.ListOptions{}); len(objs) != 0 {
		t.Fatalf("failed requests wrote %d apps", len(objs))
	}
}

func TestDiscoveryAndVersion(t *testing.T) {
	s := newServer(t, apiserver.Options{Version: "1.2.3", Commit: "abc123"}, bolt.Options{})
	var v apiserver.VersionInfo
	r := s.do(t, "GET", "/version", s.View, "")
	if err := json.Unmarshal(r.Body, &v); err != nil || v.Version != "1.2.3" || v.Commit != "abc123" || v.APIVersion != api.Version || v.GoVersion != runtime.Version() {
		t.Fatalf("version: %d %s", r.Status, r.Body)
	}
	var d apiserver.Discovery
	r = s.do(t, "GET", "/api/v1", s.View, "")
	if err := json.Unmarshal(r.Body, &d); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range d.Resources {
		got = append(got, fmt.Sprintf("%s %s %v %v", res.Kind, res.Plural, res.ShortNames, res.Projects))
	}
	want := []string{"Project projects [proj] false", "Secret secrets [] true", "ConfigMap configmaps [cm] true", "PersistentVolumeClaim persistentvolumeclaims [pvc] true", "Service services [svc] true",
		"App apps [application] true", "Revision revisions [rev] true", "Pod pods [po] true", "Endpoints endpoints [ep] true", "Route routes [rt] true", "Event events [ev] true",
		"ImageStream imagestreams [is images] true", "Build builds [] true",
		"Template templates [] true", "TemplateInstance templateinstances [] true"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("discovery (-want +got):\n%s", diff)
	}
}

func TestPanicBecomesJSON500(t *testing.T) {
	s := newServer(t, apiserver.Options{Ready: func(context.Context) error { panic("boom") }}, bolt.Options{})
	e := apiError(t, s.do(t, "GET", "/readyz", "", ""), 500, api.ReasonInternal)
	if e.Message != "internal error: see the server log" {
		t.Fatalf("message = %q", e.Message)
	}
	// The server still serves.
	if r := s.do(t, "GET", "/healthz", "", ""); r.Status != 200 {
		t.Fatalf("healthz after panic: %d", r.Status)
	}
}

func TestApplyValidatesAllBeforeWriting(t *testing.T) {
	s := newServer(t, apiserver.Options{MaxApplyBodyBytes: 64 << 10}, bolt.Options{})
	items := []string{appBody("one", 1), appBody("two", 1), appBody("three", -5)}
	body := `{"items":[` + strings.Join(items, ",") + `]}`
	e := apiError(t, s.do(t, "POST", "/api/v1/apply", s.Admin, body), 422, api.ReasonInvalid)
	if diff := cmp.Diff([]api.Cause{{Field: "items[2].spec.replicas", Message: "Invalid value: -5: must be greater than or equal to 0"}}, e.Causes); diff != "" {
		t.Fatalf("causes (-want +got):\n%s", diff)
	}
	if objs, _, _ := s.Reg.List(context.Background(), kind("App"), "", registry.ListOptions{}); len(objs) != 0 {
		t.Fatalf("an invalid apply wrote %d apps", len(objs))
	}

	// Decoding problems of every item are reported at once, with paths.
	body = `{"items":[` + appBody("one", 1) + `,{"kind":"Widget"},{"kind":"App","metadata":{"name":"x"},"spec":{"replicaz":1}}]}`
	e = apiError(t, s.do(t, "POST", "/api/v1/apply", s.Admin, body), 400, api.ReasonBadRequest)
	wantCauses := []api.Cause{
		{Field: "items[1].kind", Message: `Unsupported value: "Widget": supported values: Project, Secret, ConfigMap, PersistentVolumeClaim, Service, App, Revision, Pod, Endpoints, Route, Event, ImageStream, Build, Template, TemplateInstance`},
		{Field: "items[2].spec.replicaz", Message: "Unknown field"},
	}
	if diff := cmp.Diff(wantCauses, e.Causes); diff != "" {
		t.Fatalf("causes (-want +got):\n%s", diff)
	}

	type result struct{ Kind, Project, Name, Result string }
	apply := func(body string) []result {
		t.Helper()
		r := s.do(t, "POST", "/api/v1/apply", s.Admin, body)
		if r.Status != 200 {
			t.Fatalf("apply: %d %s", r.Status, r.Body)
		}
		var raw struct {
			Results []result `json:"results"`
		}
		if err := json.Unmarshal(r.Body, &raw); err != nil {
			t.Fatal(err)
		}
		return raw.Results
	}
	proj := `{"apiVersion":"slipway.dev/v1","kind":"Project","metadata":{"name":"shop"}}`
	inShop := `{"apiVersion":"slipway.dev/v1","kind":"App","metadata":{"name":"cart","project":"shop"},"spec":{"template":{"containers":[{"name":"web","command":["x"]}]}}}`
	body = `{"items":[` + inShop + `,` + proj + `,` + appBody("one", 1) + `]}`
	dry := apply(strings.Replace(body, `{"items"`, `{"dryRun":true,"items"`, 1))
	want := []result{{"App", "shop", "cart", "created"}, {"Project", "", "shop", "created"}, {"App", "default", "one", "created"}}
	if diff := cmp.Diff(want, dry); diff != "" {
		t.Fatalf("dry run (-want +got):\n%s", diff)
	}
	if r := s.do(t, "GET", "/api/v1/projects/shop", s.Admin, ""); r.Status != 404 {
		t.Fatalf("dry run wrote: %d", r.Status)
	}
	if diff := cmp.Diff(want, apply(body)); diff != "" {
		t.Fatalf("apply (-want +got):\n%s", diff)
	}
	body = `{"items":[` + inShop + `,` + proj + `,` + appBody("one", 3) + `]}`
	want = []result{{"App", "shop", "cart", "unchanged"}, {"Project", "", "shop", "unchanged"}, {"App", "default", "one", "configured"}}
	if diff := cmp.Diff(want, apply(body)); diff != "" {
		t.Fatalf("second apply (-want +got):\n%s", diff)
	}

	big := `{"items":[` + strings.Repeat(appBody("x", 1)+",", 1000) + appBody("y", 1) + `]}`
	apiError(t, s.do(t, "POST", "/api/v1/apply", s.Admin, big), 413, api.ReasonTooLarge)
	apiError(t, s.do(t, "POST", "/api/v1/apply", s.Admin, `{"items":[]}`), 400, api.ReasonBadRequest)
	apiError(t, s.do(t, "GET", "/api/v1/apply", s.Admin, ""), 405, api.ReasonMethodNotAllowd)
}

type wireEvent struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// openWatch starts a watch over HTTP and returns its lines as events.
func openWatch(t *testing.T, s *testServer, query string) (<-chan wireEvent, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/v1/projects/default/apps?watch=true&"+query, nil)
	req.Header.Set("Authorization", "Bearer "+s.View)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		return nil, resp
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("Content-Type = %q", ct)
	}
	ch := make(chan wireEvent)
	go func() {
		defer resp.Body.Close()
		defer close(ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if len(strings.TrimSpace(sc.Text())) == 0 {
				continue // heartbeat
			}
			var ev wireEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = wireEvent{Type: "UNPARSABLE " + sc.Text()}
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, resp
}

func nextWire(t *testing.T, ch <-chan wireEvent) wireEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch stream ended early")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event within 10s")
	}
	return wireEvent{}
}

func TestWatchStreamsOverHTTP(t *testing.T) {
	s := newServer(t, apiserver.Options{WatchHeartbeat: 20 * time.Millisecond}, bolt.Options{})
	ctx := context.Background()
	rev, _ := s.Store.Revision(ctx)
	ch, _ := openWatch(t, s, fmt.Sprintf("resourceVersion=%d&allowWatchBookmarks=true", rev))

	created := decodeApp(t, s.do(t, "POST", "/api/v1/projects/default/apps", s.Admin, appBody("w", 1)), 201)
	updateBody := fmt.Sprintf(`{"metadata":{"name":"w","resourceVersion":%d},"spec":{"replicas":2,"template":{"containers":[{"name":"web","command":["/bin/sleep","60"]}]}}}`, created.Metadata.ResourceVersion)
	updated := decodeApp(t, s.do(t, "PUT", "/api/v1/projects/default/apps/w", s.Admin, updateBody), 200)
	deleted := decodeApp(t, s.do(t, "DELETE", "/api/v1/projects/default/apps/w", s.Admin, ""), 200)

	type line struct {
		Type string
		RV   int64
	}
	var got []line
	for len(got) < 3 {
		ev := nextWire(t, ch)
		var a api.App
		if err := json.Unmarshal(ev.Object, &a); err != nil {
			t.Fatalf("event %s: %v", ev.Type, err)
		}
		if ev.Type == "BOOKMARK" {
			if a.Metadata.ResourceVersion < rev {
				t.Fatalf("bookmark resourceVersion %d < start %d", a.Metadata.ResourceVersion, rev)
			}
			continue
		}
		got = append(got, line{ev.Type, a.Metadata.ResourceVersion})
	}
	want := []line{{"ADDED", created.Metadata.ResourceVersion}, {"MODIFIED", updated.Metadata.ResourceVersion}, {"DELETED", deleted.Metadata.ResourceVersion}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// With nothing happening, a bookmark carries the last revision seen.
	for {
		ev := nextWire(t, ch)
		if ev.Type != "BOOKMARK" {
			t.Fatalf("unexpected %s event", ev.Type)
		}
		var a api.App
		_ = json.Unmarshal(ev.Object, &a)
		if a.Metadata.ResourceVersion == deleted.Metadata.ResourceVersion {
			break
		}
	}

	// Closing the store ends the stream with an ERROR event.
	s.Store.Close()
	for {
		ev := nextWire(t, ch)
		if ev.Type == "BOOKMARK" {
			continue
		}
		var e api.Error
		if ev.Type != "ERROR" || json.Unmarshal(ev.Object, &e) != nil || e.Reason != api.ReasonUnavailable || e.Code != 503 {
			t.Fatalf("last event = %s %s, want ERROR ServiceUnavailable", ev.Type, ev.Object)
		}
		break
	}
}

func TestWatchFromCompactedRevisionIs410(t *testing.T) {
	s := newServer(t, apiserver.Options{}, bolt.Options{})
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		decodeApp(t, s.do(t, "POST", "/api/v1/projects/default/apps", s.Admin, appBody(n, 1)), 201)
	}
	rev, _ := s.Store.Revision(ctx)
	if err := s.Store.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	_, resp := openWatch(t, s, "resourceVersion=1")
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	apiError(t, response{resp.StatusCode, resp.Header, b}, 410, api.ReasonGone)
}

package apiserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// fuzzEndpoints are the requests that carry a body.
var fuzzEndpoints = []struct{ method, path string }{
	{"POST", "/api/v1/projects"},
	{"PUT", "/api/v1/projects/fz"},
	{"POST", "/api/v1/projects/default/apps"},
	{"PUT", "/api/v1/projects/default/apps/fz"},
	{"PUT", "/api/v1/projects/default/apps/fz/status"},
	{"POST", "/api/v1/apply"},
	{"POST", "/api/v1/projects/default/secrets"},
	{"POST", "/api/v1/projects/default/services"},
	{"POST", "/api/v1/projects/default/routes"},
	{"POST", "/api/v1/projects/default/pods"},
	{"PUT", "/api/v1/projects/default/pods/fz/status"},
	{"POST", "/api/v1/projects/default/events"},
	{"POST", "/api/v1/projects/default/revisions"},
	{"PUT", "/api/v1/projects/fz/status"},
}

// FuzzAPIRequestBody feeds arbitrary bodies to the endpoints that decode
// one: whatever arrives, the answer is never a 5xx or a panic, and it is
// always JSON, an *api.Error whose code is the status when it fails.
func FuzzAPIRequestBody(f *testing.F) {
	st, err := bolt.Open(filepath.Join(f.TempDir(), "fuzz.db"), bolt.Options{NoFsync: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	ctx := context.Background()
	if err := reg.EnsureDefaultProject(ctx); err != nil {
		f.Fatal(err)
	}
	token, _, err := reg.EnsureAdminToken(ctx, false)
	if err != nil {
		f.Fatal(err)
	}
	h := apiserver.New(reg, apiserver.Options{MaxBodyBytes: 64 << 10, MaxApplyBodyBytes: 128 << 10})

	f.Add(uint8(2), []byte(appBody("seed", 1)))
	f.Fuzz(func(t *testing.T, endpoint uint8, body []byte) {
		ep := fuzzEndpoints[int(endpoint)%len(fuzzEndpoints)]
		req := httptest.NewRequest(ep.method, ep.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		out := rec.Body.Bytes()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s answered %d: %s\nbody: %q", ep.method, ep.path, res.StatusCode, out, body)
		}
		if !json.Valid(out) {
			t.Fatalf("%s %s answered invalid JSON: %q", ep.method, ep.path, out)
		}
		if res.StatusCode >= 400 {
			var e api.Error
			if err := json.Unmarshal(out, &e); err != nil || e.Code != res.StatusCode || e.Reason == "" || e.Message == "" {
				t.Fatalf("%s %s answered %d with a malformed error: %s", ep.method, ep.path, res.StatusCode, out)
			}
			return
		}
		if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusCreated {
			t.Fatalf("unexpected status %d", res.StatusCode)
		}
	})
}

package apiserver_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/build"
	"slipway.dev/slipway/internal/store/bolt"
)

// buildSources adapts the build package's real sources and logs to the
// API server's interface, as internal/server does.
type buildSources struct {
	src  *build.Sources
	logs *build.Logs
}

func (b *buildSources) Limit() int64 { return b.src.Limit() }
func (b *buildSources) Stage(ctx context.Context, r io.Reader) (apiserver.StagedSource, error) {
	st, err := b.src.Stage(ctx, r)
	if err != nil {
		return nil, err
	}
	return st, nil
}
func (b *buildSources) Release(project, name string) { b.src.Release(project, name) }
func (b *buildSources) BuildLog(ctx context.Context, project, name string, follow bool) (io.ReadCloser, error) {
	return b.logs.BuildLog(ctx, project, name, follow)
}

func tarBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))})
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

func newBuildServer(t *testing.T, limit int64) (*testServer, string) {
	t.Helper()
	bs := &buildSources{}
	s := newServer(t, apiserver.Options{Builds: bs}, bolt.Options{})
	dir := filepath.Join(t.TempDir(), "builds")
	bs.src = &build.Sources{Dir: dir, MaxBytes: limit}
	bs.logs = &build.Logs{Reg: s.Reg, Sources: bs.src}
	if r := s.do(t, "POST", "/api/v1/projects/default/apps", s.Admin, appBody("hello", 1)); r.Status != 201 {
		t.Fatalf("creating the app: %d %s", r.Status, r.Body)
	}
	return s, dir
}

func (s *testServer) upload(t *testing.T, path, token string, body io.Reader, contentLength int64) response {
	t.Helper()
	req, err := http.NewRequest("POST", s.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = contentLength
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{resp.StatusCode, resp.Header, b}
}

func TestStartBuild(t *testing.T) {
	s, dir := newBuildServer(t, 64<<10)
	const path = "/api/v1/projects/default/apps/hello/builds"
	src := tarBytes(t, map[string]string{"main.go": "package main\nfunc main() {}\n"})
	for n := 1; n <= 2; n++ {
		r := s.upload(t, path, s.Admin, bytes.NewReader(src), int64(len(src)))
		if r.Status != 201 {
			t.Fatalf("upload %d: %d %s", n, r.Status, r.Body)
		}
		var b api.Build
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		name := api.BuildName("hello", int64(n))
		if b.Metadata.Name != name || b.Spec.Number != int64(n) || b.Spec.App != "hello" || b.Metadata.Labels["app"] != "hello" ||
			b.Spec.Source.Type != api.BuildSourceDir || b.Spec.Source.ArchiveBytes != int64(len(src)) || !strings.HasPrefix(b.Spec.Source.ArchiveDigest, "sha256:") {
			t.Fatalf("build %d: %+v", n, b)
		}
		got, err := os.ReadFile(filepath.Join(dir, "default", name, "source.tar"))
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("stored source of %s: %d bytes, %v", name, len(got), err)
		}
		fi, _ := os.Stat(filepath.Join(dir, "default", name))
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("build dir mode %v, want 0700", fi.Mode().Perm())
		}
	}
	// The log exists once the build does (empty until it runs).
	r := s.do(t, "GET", "/api/v1/projects/default/builds/hello-2/log", s.Admin, "")
	if r.Status != 200 || len(r.Body) != 0 {
		t.Fatalf("log: %d %q", r.Status, r.Body)
	}
	apiError(t, s.do(t, "GET", "/api/v1/projects/default/builds/hello-9/log", s.Admin, ""), 404, api.ReasonNotFound)
}

func TestStartBuildBadInput(t *testing.T) {
	s, dir := newBuildServer(t, 3000)
	const path = "/api/v1/projects/default/apps/hello/builds"
	small := tarBytes(t, map[string]string{"a": "b"})
	big := tarBytes(t, map[string]string{"big": strings.Repeat("x", 4096)})
	huge := tarBytes(t, map[string]string{"huge": strings.Repeat("x", 8<<20)})
	cases := []struct {
		name   string
		path   string
		token  string
		body   []byte
		length int64 // -1: chunked, no Content-Length
		code   int
		reason string
		msg    string
	}{
		{"unknown app", "/api/v1/projects/default/apps/nope/builds", s.Admin, small, int64(len(small)), 404, api.ReasonNotFound, `apps "nope" not found in project "default"`},
		{"declared too large", path, s.Admin, big, int64(len(big)), 413, api.ReasonTooLarge, "the build source is 5632 bytes, larger than the limit of 3000 bytes: leave files out with .dockerignore"},
		{"declared too large, refused before it is read", path, s.Admin, huge, int64(len(huge)), 413, api.ReasonTooLarge, "the build source is 8390144 bytes, larger than the limit of 3000 bytes"},
		{"streamed too large", path, s.Admin, big, -1, 413, api.ReasonTooLarge, "the build source is larger than the limit of 3000 bytes: leave files out with .dockerignore"},
		{"not a tar", path, s.Admin, []byte(strings.Repeat("junk", 200)), 800, 400, api.ReasonBadRequest, "build source: not a valid tar archive (after 0 entries): "},
		{"bad strategy", path + "?strategy=Magic", s.Admin, small, int64(len(small)), 422, api.ReasonInvalid, `Build "hello-1" is invalid: spec.strategy.type: Unsupported value: "Magic": supported values: "Docker", "Go", "Directory"`},
		{"unknown parameter", path + "?from=x", s.Admin, small, int64(len(small)), 400, api.ReasonBadRequest, `unknown parameter "from": the only parameter is strategy (Docker, Go or Directory)`},
		{"read-only token", path, s.View, small, int64(len(small)), 403, api.ReasonForbidden, `token "viewer" has role "view", which may only read`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = bytes.NewReader(tc.body)
			if tc.length < 0 {
				body = io.MultiReader(body) // hides the length: sent chunked
				tc.length = 0
			}
			r := s.upload(t, tc.path, tc.token, body, tc.length)
			e := apiError(t, r, tc.code, tc.reason)
			if !strings.HasPrefix(e.Message, tc.msg) {
				t.Errorf("message %q, want prefix %q", e.Message, tc.msg)
			}
		})
	}
	// Nothing half-written: no build, no stored source, no staged upload.
	r := s.do(t, "GET", "/api/v1/projects/default/builds", s.Admin, "")
	var list struct{ Items []any }
	json.Unmarshal(r.Body, &list)
	if len(list.Items) != 0 {
		t.Errorf("%d builds after bad uploads", len(list.Items))
	}
	ents, _ := os.ReadDir(filepath.Join(dir, ".uploads"))
	if len(ents) != 0 {
		t.Errorf("%d staged uploads left", len(ents))
	}
	if _, err := os.Stat(filepath.Join(dir, "default")); !os.IsNotExist(err) {
		t.Errorf("a build dir was left: %v", err)
	}
}

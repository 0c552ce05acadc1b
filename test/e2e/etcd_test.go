package e2e

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store/etcd"
	"slipway.dev/slipway/internal/store/etcd/etcdtest"
)

// etcdFlags runs `slipway up` on the given etcd, under a prefix of the
// test's own.
func etcdFlags(srv *etcdtest.Server, prefix string) []string {
	return []string{"--store", "etcd", "--etcd-endpoints", srv.Endpoint, "--etcd-prefix", prefix}
}

// sampleApp is examples/hello's app and route, its command replaced by
// the binary TestMain built (`go run` would compile it in every pod).
func sampleApp(t *testing.T) string {
	t.Helper()
	var docs []string
	for _, f := range []string{"app.yaml", "route.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	m := strings.Join(docs, "\n---\n")
	const cmd = `command: ["go", "run", "./examples/hello"]`
	if !strings.Contains(m, cmd) || !strings.Contains(m, "workingDir: .\n") {
		t.Fatalf("examples/hello/app.yaml changed shape: no %s", cmd)
	}
	m = strings.Replace(m, cmd, `command: ["`+helloBin+`"]`, 1)
	return regexp.MustCompile(`\n\s*workingDir: \.\n`).ReplaceAllString(m, "\n")
}

// TestEtcdStoreServesTheSampleApp: on --store etcd the sample app is
// applied, rolled out and served through the router, and still served by
// the same objects after a restart of Slipway.
func TestEtcdStoreServesTheSampleApp(t *testing.T) {
	srv := etcdtest.Start(t)
	home := t.TempDir()
	up := etcdFlags(srv, "/e2e-sample")
	p := startPlatform(t, home, up...)
	if out := p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", sampleApp(t))); out != "app/hello created\nservice/hello created\nroute/hello created\n" {
		t.Fatalf("apply printed:\n%s", out)
	}
	p.waitApp("hello", 2, 60*time.Second)
	// The state is in etcd, under the prefix, and no bolt file was made.
	if _, err := os.Stat(filepath.Join(p.dataDir, "slipway.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a bolt file exists with --store etcd: %v", err)
	}
	st, err := etcd.Open(t.Context(), etcd.Options{Endpoints: []string{srv.Endpoint}, Prefix: "/e2e-sample"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.Get(t.Context(), "/slipway/apps/default/hello"); err != nil {
		t.Errorf("the app is not in etcd under /e2e-sample: %v", err)
	}
	serves := func(p *platform) {
		t.Helper()
		waitUntil(t, 30*time.Second, "the router serves hello-default.localhost", func() bool {
			v, code, err := p.getVersion("hello-default.localhost")
			return err == nil && code == 200 && v == "v1"
		})
		if s := p.routerGet("hello-default.localhost", 40); s.v1 != 40 || len(s.errs) > 0 {
			t.Fatalf("40 requests through the router: %d from v1, errors %v", s.v1, s.errs)
		}
	}
	serves(p)
	uid := appUID(t, p)
	p.stop()
	p2 := startPlatform(t, home, up...)
	p2.waitApp("hello", 2, 60*time.Second)
	if got := appUID(t, p2); got != uid {
		t.Errorf("app uid %q after the restart, want %q", got, uid)
	}
	serves(p2)
}

func appUID(t *testing.T, p *platform) string {
	t.Helper()
	var app struct{ Metadata struct{ UID string } }
	if err := json.Unmarshal([]byte(p.ok("get", "app", "hello", "-o", "json")), &app); err != nil || app.Metadata.UID == "" {
		t.Fatalf("get app hello -o json: uid %q, %v", app.Metadata.UID, err)
	}
	return app.Metadata.UID
}

// TestEtcdStoreRestartKeepsEveryObject is TestRestartKeepsEveryObject on
// etcd.
func TestEtcdStoreRestartKeepsEveryObject(t *testing.T) {
	srv := etcdtest.Start(t)
	restartKeepsEveryObject(t, etcdFlags(srv, "/e2e-restart")...)
}

// TestMigrateBoltToEtcd: `admin migrate` refuses a running platform's
// store, copies a stopped one's to etcd, and `up --store etcd` on the same
// data dir then has every object as it was (resourceVersions aside: etcd
// numbers the writes anew), with the same admin token.
func TestMigrateBoltToEtcd(t *testing.T) {
	srv := etcdtest.Start(t)
	home := t.TempDir()
	p := startPlatform(t, home)
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "shop.yaml", shopManifest))
	before := p.settledObjects()
	to := "etcd://" + strings.TrimPrefix(srv.Endpoint, "http://") + "/e2e-migrate"
	migrate := []string{"admin", "migrate", "--from", "bolt://" + p.dataDir, "--to", to}
	if r := p.run("", migrate...); r.code != 1 || !strings.Contains(r.stderr, "is in use by a running slipway; stop it first") {
		t.Fatalf("migrate of a running platform: exit %d, stderr %q", r.code, r.stderr)
	}
	p.stop()
	out := p.ok(migrate...)
	if !strings.Contains(out, "verified: ") || !strings.Contains(out, "apps ") {
		t.Fatalf("migrate printed:\n%s", out)
	}
	t.Logf("migrate printed:\n%s", out)
	p2 := startPlatform(t, home, etcdFlags(srv, "/e2e-migrate")...)
	rv := regexp.MustCompile(`"resourceVersion": *"?[0-9]+"?`)
	strip := func(s string) string { return rv.ReplaceAllString(s, `"resourceVersion": _`) }
	if after := p2.objects(); strip(after) != strip(before) {
		t.Fatalf("objects differ after the migration:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

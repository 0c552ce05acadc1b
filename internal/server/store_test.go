package server

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/store/etcd/etcdtest"
)

// TestRunRefusesBadStoreFlags: each bad choice of store fails Run with a
// message naming the flag, within the dial timeout.
func TestRunRefusesBadStoreFlags(t *testing.T) {
	junk := filepath.Join(t.TempDir(), "junk.pem")
	if err := os.WriteFile(junk, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		store string
		etcd  EtcdConfig
		want  string
	}{
		{"unknown store", "mysql", EtcdConfig{}, `--store "mysql": unsupported; choose bolt`},
		{"etcd without endpoints", "etcd", EtcdConfig{}, "--store etcd needs --etcd-endpoints"},
		{"etcd flags on bolt", "bolt", EtcdConfig{Endpoints: []string{"127.0.0.1:2379"}}, "--etcd-* flags are only for --store etcd"},
		{"unreachable etcd", "etcd", EtcdConfig{Endpoints: []string{"127.0.0.1:1", "127.0.0.1:2"}, DialTimeout: 300 * time.Millisecond}, "no answer from etcd at http://127.0.0.1:1,http://127.0.0.1:2 within 300ms"},
		{"unreadable CA", "etcd", EtcdConfig{Endpoints: []string{"127.0.0.1:1"}, CAFile: "/nonexistent/ca.pem"}, "--etcd-cert/--etcd-key/--etcd-ca: etcd CA: open /nonexistent/ca.pem"},
		{"certificate that is none", "etcd", EtcdConfig{Endpoints: []string{"127.0.0.1:1"}, CertFile: junk, KeyFile: junk}, "etcd client certificate " + junk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			err := Run(ctx, Config{DataDir: filepath.Join(t.TempDir(), "data"), APIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", HTTPSAddr: "", Store: tc.store, Etcd: tc.etcd})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Run: err = %v, want one containing %q", err, tc.want)
			}
			if ctx.Err() != nil {
				t.Fatalf("Run took until the test's deadline to fail")
			}
		})
	}
}

func TestParseMigrateURLs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		eps    string
		prefix string
	}{
		{"etcd://127.0.0.1:2379", "127.0.0.1:2379", "/slipway"},
		{"etcd://a:1,b:2/prod/", "a:1,b:2", "/prod"},
		{"etcd://a:1/x/y", "a:1", "/x/y"},
		{"etcd://a", "", ""},
		{"etcd://", "", ""},
		{"http://a:1", "", ""},
		{"etcd://a:1,,b:2", "", ""},
	} {
		eps, prefix, err := parseEtcdURL(tc.in)
		if tc.eps == "" {
			if err == nil || !strings.Contains(err.Error(), "must be etcd://HOST:PORT") {
				t.Errorf("parseEtcdURL(%q) = %v, %q, %v; want an error", tc.in, eps, prefix, err)
			}
			continue
		}
		if err != nil || strings.Join(eps, ",") != tc.eps || prefix != tc.prefix {
			t.Errorf("parseEtcdURL(%q) = %v, %q, %v; want %s, %q", tc.in, eps, prefix, err, tc.eps, tc.prefix)
		}
	}
	if _, err := parseBoltURL("/var/lib/slipway"); err == nil {
		t.Error("parseBoltURL of a plain path succeeded")
	}
}

// TestMigrate copies a bolt store to etcd and checks the copy key by key,
// the verification table, the refusals (a non-empty prefix without
// --force, a bolt file in use) and --force.
func TestMigrate(t *testing.T) {
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	src, err := bolt.Open(filepath.Join(dir, storeFileName), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 120 {
		k := fmt.Sprintf("/slipway/%s/default/obj-%03d", []string{"apps", "pods", "services"}[i%3], i)
		want[k] = fmt.Sprintf(`{"n":%d}`, i)
	}
	want["/slipway/internal/tokens/abc"] = "hash"
	for k, v := range want {
		if _, err := src.Create(t.Context(), k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	to := "etcd://" + strings.TrimPrefix(srv.Endpoint, "http://") + "/migrated"
	migrate := func(force bool) (string, error) {
		var out bytes.Buffer
		err := Migrate(t.Context(), MigrateConfig{From: "bolt://" + dir, To: to, Force: force, Out: &out})
		return out.String(), err
	}

	if _, err := migrate(false); err == nil || !strings.Contains(err.Error(), "is in use by a running slipway; stop it first") {
		t.Fatalf("migrate while the bolt file is open: err = %v, want a refusal", err)
	}
	src.Close()

	out, err := migrate(false)
	if err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	t.Logf("migrate printed:\n%s", out)
	for _, s := range []string{"apps  ", "40", "internal", "verified: 121 keys in 4 kinds"} {
		if !strings.Contains(out, s) {
			t.Errorf("migrate's output lacks %q:\n%s", s, out)
		}
	}
	dst := openEtcdForTest(t, srv.Endpoint, "/migrated")
	res, err := dst.List(t.Context(), "", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.KVs {
		got[kv.Key] = string(kv.Value)
	}
	if len(got) != len(want) {
		t.Fatalf("etcd holds %d keys, want %d", len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q in etcd, want %q", k, got[k], v)
		}
	}

	if _, err := migrate(false); err == nil || !strings.Contains(err.Error(), "prefix /migrated already holds 121 keys") {
		t.Fatalf("second migrate without --force: err = %v, want a refusal", err)
	}
	if _, err := dst.Create(t.Context(), "/slipway/apps/default/extra", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if out, err := migrate(true); err != nil || !strings.Contains(out, "deleting the 122 keys") || !strings.Contains(out, "verified: 121 keys") {
		t.Fatalf("migrate --force: %v\n%s", err, out)
	}
	if _, err := dst.Get(t.Context(), "/slipway/apps/default/extra"); err == nil {
		t.Error("migrate --force kept a key the source does not have")
	}
}

func openEtcdForTest(t *testing.T, endpoint, prefix string) store.Store {
	t.Helper()
	s, err := openEtcd(t.Context(), EtcdConfig{Endpoints: []string{endpoint}, Prefix: prefix}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestEtcdOverTLS: --etcd-ca, --etcd-cert and --etcd-key reach an etcd
// that serves TLS only and requires a client certificate (host:port then
// means https://); without the client certificate Open fails in time.
func TestEtcdOverTLS(t *testing.T) {
	srv, files := etcdtest.StartTLS(t)
	hostPort := strings.TrimPrefix(srv.Endpoint, "https://")
	s, err := openEtcd(t.Context(), EtcdConfig{Endpoints: []string{hostPort}, CAFile: files.CA, CertFile: files.ClientCert, KeyFile: files.ClientKey}, nil)
	if err != nil {
		t.Fatalf("open over TLS: %v", err)
	}
	defer s.Close()
	rev, err := s.Create(t.Context(), "/slipway/apps/default/a", []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	if kv, err := s.Get(t.Context(), "/slipway/apps/default/a"); err != nil || kv.ModRevision != rev {
		t.Fatalf("Get over TLS: %+v, %v", kv, err)
	}
	_, err = openEtcd(t.Context(), EtcdConfig{Endpoints: []string{hostPort}, CAFile: files.CA, DialTimeout: time.Second}, nil)
	if err == nil || !strings.Contains(err.Error(), "https://"+hostPort) {
		t.Errorf("open without a client certificate: err = %v, want a failure naming the endpoint", err)
	}
}

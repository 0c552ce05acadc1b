package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/store/storetest"
)

func secretManifest(name string, value string) string {
	return fmt.Sprintf("apiVersion: slipway.dev/v1\nkind: Secret\nmetadata: {name: %s}\ndata: {v: %q}\n", name, value)
}

// A full disk under the data dir: a write answers 507 saying no space is
// left and writes nothing, /readyz says why it is not ready, reads go on;
// once space is freed, readiness comes back by itself and writes succeed;
// the store file then holds every acknowledged object whole and nothing
// else. (Needs root for the tmpfs: skipped otherwise, unless
// SLIPWAY_REQUIRE_TMPFS=1.)
func TestFullDiskIs507AndRecovers(t *testing.T) {
	home := t.TempDir()
	dataDir := filepath.Join(home, "data")
	storetest.MountTmpfs(t, dataDir, 16<<20)
	p := startPlatform(t, home)
	tok, err := os.ReadFile(filepath.Join(dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, p.apiURL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	acked := map[string]string{}
	for i := range 3 {
		name, v := fmt.Sprintf("small-%d", i), strings.Repeat(fmt.Sprint(i), 100)
		p.ok("apply", "-f", writeFile(t, t.TempDir(), name+".yaml", secretManifest(name, v)))
		acked[name] = v
	}
	filler := filepath.Join(dataDir, "filler")
	storetest.FillDisk(t, filler)

	big := strings.Repeat("b", 256<<10)
	r := p.run(secretManifest("big-refused", big), "apply", "-f", "-")
	t.Logf("apply on a full disk: %s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "no space left on device") {
		t.Errorf("apply on a full disk: exit %d, stderr %q; want exit 1 saying no space left on device", r.code, r.stderr)
	}
	body := fmt.Sprintf(`{"apiVersion":"slipway.dev/v1","kind":"Secret","metadata":{"name":"big-refused-2"},"data":{"v":%q}}`, big)
	code, resp := call("POST", "/api/v1/projects/default/secrets", body)
	var e struct {
		Code            int
		Reason, Message string
	}
	if err := json.Unmarshal([]byte(resp), &e); err != nil || code != 507 || e.Reason != "InsufficientStorage" || !strings.Contains(e.Message, "no space left on device") {
		t.Errorf("POST on a full disk: %d %s; want 507 InsufficientStorage saying no space left on device", code, resp)
	}
	resp2, err := http.Get(p.apiURL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	ready, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	t.Logf("readyz: %s", ready)
	if resp2.StatusCode != 503 || !strings.Contains(string(ready), "no space left on device") {
		t.Errorf("/readyz on a full disk: %d %s; want 503 saying no space left on device", resp2.StatusCode, ready)
	}
	if out := p.ok("get", "secrets"); !strings.Contains(out, "small-2") || strings.Contains(out, "big-refused") {
		t.Errorf("get secrets on a full disk:\n%s", out)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "/readyz answers 200 once space is freed", func() bool {
		resp, err := http.Get(p.apiURL + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "big.yaml", secretManifest("big", big)))
	acked["big"] = big
	p.stop()

	// The file, reopened: consistent, every acknowledged Secret whole, no
	// refused one.
	st, err := bolt.Open(filepath.Join(dataDir, "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("store file inconsistent after the full disk: %v", err)
	}
	res, err := st.List(context.Background(), "/slipway/secrets/default/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range res.KVs {
		var s struct {
			Metadata struct{ Name string }
			Data     map[string]string
		}
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			t.Errorf("%s is not whole JSON: %v", kv.Key, err)
			continue
		}
		got[s.Metadata.Name] = s.Data["v"]
	}
	for name, v := range acked {
		if got[name] != v {
			t.Errorf("acknowledged secret %s: stored %d bytes, want %d", name, len(got[name]), len(v))
		}
	}
	for name := range got {
		if _, ok := acked[name]; !ok {
			t.Errorf("secret %s is stored but was never acknowledged", name)
		}
	}
	if bytes.Contains([]byte(p.logs.String()), []byte(big[:64])) {
		t.Error("a secret value reached the log")
	}
}

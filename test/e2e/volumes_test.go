package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// storeManifest is an App whose pod appends its VERSION to a file on a
// ReadWriteOncePod claim, prints the file, then serves.
func storeManifest(strategy, version, mnt string) string {
	return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOncePod]
  resources: {requests: {storage: 10Mi}}
---
apiVersion: slipway.dev/v1
kind: App
metadata: {name: store}
spec:
  replicas: 1
  strategy: {type: %s}
  template:
    terminationGracePeriodSeconds: 5
    volumes:
      - {name: data, persistentVolumeClaim: {claimName: data}}
    containers:
      - name: web
        command: [sh, -c, 'echo "$VERSION" >> %[3]s/versions && echo "versions: $(tr "\n" " " < %[3]s/versions)" && exec %[4]q']
        env: [{name: VERSION, value: %[2]s}]
        ports: [{name: http, port: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
        volumeMounts: [{name: data, mountPath: %[3]s}]
`, strategy, version, mnt, helloBin)
}

// TestClaimSurvivesRecreate: an App writing a ReadWriteOncePod claim is
// refused a Rolling strategy with a reason; with Recreate, the pod of
// revision 2 reads what the pod of revision 1 wrote; the claim is Bound,
// measured and names its pod; deleting the App keeps the claim, and
// deleting the claim then deletes its data.
func TestClaimSurvivesRecreate(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	mnt := filepath.Join(t.TempDir(), "store")

	r := p.run("", "apply", "-f", writeFile(t, dir, "rolling.yaml", storeManifest("Rolling", "v1", mnt)))
	if r.code == 0 || !strings.Contains(r.stderr, "use strategy Recreate") {
		t.Fatalf("a Rolling App writing a ReadWriteOncePod claim: exit %d, %s; want it refused, saying to use Recreate", r.code, r.stderr)
	}
	if out := p.run("", "get", "pvc", "data"); out.code == 0 {
		t.Fatalf("the refused apply wrote the claim: %s", out.stdout)
	}

	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", storeManifest("Recreate", "v1", mnt)))
	p.waitStore(1)
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", storeManifest("Recreate", "v2", mnt)))
	p.waitStore(2)
	waitUntil(t, 20*time.Second, "the pod of revision 2 printed both versions", func() bool {
		return strings.Contains(p.ok("logs", "app/store"), "versions: v1 v2")
	})
	if b, err := os.ReadFile(filepath.Join(p.dataDir, "volumes", "default", "data", "versions")); err != nil || string(b) != "v1\nv2\n" {
		t.Errorf("the claim's file on the data directory: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "versions")); err == nil {
		t.Errorf("the claim's file is visible at the mountPath on the machine: the mount must be the pod's own")
	}

	waitUntil(t, 30*time.Second, "get pvc shows the claim Bound, measured, mounted by revision 2's pod", func() bool {
		out := p.ok("get", "pvc")
		return strings.Contains(out, "Bound") && strings.Contains(out, "10Mi") && strings.Contains(out, "RWOP") && strings.Contains(out, "store-2-") && !strings.Contains(out, " - ")
	})
	// Usage is measured every 10 s.
	waitUntil(t, 30*time.Second, "describe pvc shows the usage (6 bytes) and the pod", func() bool {
		out := p.ok("describe", "pvc", "data")
		return strings.Contains(out, "Used:") && strings.Contains(out, "(6 bytes") && strings.Contains(out, "store-2-")
	})

	// Deleting the App keeps the claim; deleting the claim then removes it.
	p.ok("delete", "app", "store")
	waitUntil(t, 30*time.Second, "the App's pods are gone", func() bool {
		return !strings.Contains(p.ok("get", "pods"), "store-")
	})
	if out := p.ok("get", "pvc", "data"); !strings.Contains(out, "Bound") {
		t.Fatalf("deleting the App deleted or unbound its claim:\n%s", out)
	}
	p.ok("delete", "pvc", "data")
	waitUntil(t, 30*time.Second, "the claim and its data are gone", func() bool {
		_, err := os.Stat(filepath.Join(p.dataDir, "volumes", "default", "data"))
		return p.run("", "get", "pvc", "data").code != 0 && os.IsNotExist(err)
	})
}

// waitStore waits until the store App is Healthy on revision rev with its
// one pod ready and no other pod.
func (p *platform) waitStore(rev int64) {
	p.t.Helper()
	waitUntil(p.t, 90*time.Second, fmt.Sprintf("app store Healthy on revision %d", rev), func() bool {
		var a struct {
			Status struct {
				Phase                          string
				LatestRevision, StableRevision int64
				ReadyReplicas                  int
			}
		}
		if json.Unmarshal([]byte(p.ok("get", "app", "store", "-o", "json")), &a) != nil {
			return false
		}
		s := a.Status
		if s.Phase != "Healthy" || s.LatestRevision != rev || s.StableRevision != rev || s.ReadyReplicas != 1 {
			return false
		}
		var pods struct{ Items []json.RawMessage }
		return json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=store", "-o", "json")), &pods) == nil && len(pods.Items) == 1
	})
}

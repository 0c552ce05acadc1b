package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime/docker"
	"slipway.dev/slipway/internal/runtime/drivertest"
)

// serviceRangeFor is a platform's own service range, so that platforms
// running at once never share a virtual IP: on the loopback for processes,
// and for Docker in the pods' network's reserved half, where pods reach it.
func serviceRangeFor(n int, extra []string) string {
	for i := range len(extra) - 1 {
		if extra[i] == "--runtime" && extra[i+1] == "docker" {
			return fmt.Sprintf("172.29.%d.%d/26", 128+n/4, n%4*64)
		}
	}
	return fmt.Sprintf("127.32.%d.0/24", n)
}

// fetchAppImage packages the driver harness's test app (which has /fetch
// and /env) FROM scratch.
func fetchAppImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	bin, err := drivertest.BuildTestAppTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	ref := "slipway-e2e/testapp:" + hex.EncodeToString(sum[:6])
	if err := docker.BuildScratchImage(context.Background(), cli, ref, []docker.File{{Path: "/app", Mode: 0o755, Data: b}}, []string{"/app"}); err != nil {
		t.Fatal(err)
	}
	return ref
}

const dockerServicesManifest = `apiVersion: slipway.dev/v1
kind: App
metadata: {name: backend}
spec:
  replicas: 2
  template:
    containers:
      - name: web
        image: %[1]s
        env: [{name: VERSION, value: backend-v1}]
        ports: [{name: http, port: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
---
apiVersion: slipway.dev/v1
kind: Service
metadata: {name: backend}
spec:
  selector: {app: backend}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: slipway.dev/v1
kind: App
metadata: {name: frontend}
spec:
  replicas: 1
  template:
    containers:
      - name: web
        image: %[2]s
        ports: [{name: http, port: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
`

// TestDockerPodCallsServiceByEnv: on `slipway up --runtime docker`, a pod
// of app frontend finds Service backend in BACKEND_SERVICE_HOST/PORT — a
// virtual IP of the service range in the pods' network — and calls it from
// inside its container through the service proxy, under concurrent load:
// every answer is a backend pod's.
func TestDockerPodCallsServiceByEnv(t *testing.T) {
	cli := dockerEngine(t)
	backend, frontend := helloImage(t, cli), fetchAppImage(t, cli)
	home := t.TempDir()
	p := startDockerPlatform(t, cli, home)
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "apps.yaml", fmt.Sprintf(dockerServicesManifest, backend, frontend)))
	p.waitApp("backend", 2, 90*time.Second)
	p.waitApp("frontend", 1, 90*time.Second)

	vip := p.serviceIP("backend")
	svcRange := netip.MustParsePrefix(pickServiceRange(t, home, rangeFor(home), []string{"--runtime", "docker"})) // the one it started with
	if a, err := netip.ParseAddr(vip); err != nil || !svcRange.Contains(a) {
		t.Fatalf("backend's cluster IP %q is not in the platform's service range %s", vip, svcRange)
	}
	fe := p.podAddrs("app=frontend")
	if len(fe) != 1 {
		t.Fatalf("frontend pods: %q, want one", fe)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (string, error) {
		resp, err := c.Get("http://" + fe[0] + path)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, b)
		}
		return string(b), err
	}
	body, err := get("/env")
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "BACKEND_SERVICE_") {
			got = append(got, kv)
		}
	}
	slices.Sort(got)
	want := []string{"BACKEND_SERVICE_HOST=" + vip, "BACKEND_SERVICE_PORT=80", "BACKEND_SERVICE_PORT_HTTP=80"}
	if !slices.Equal(got, want) {
		t.Fatalf("frontend's service variables: %q, want %q", got, want)
	}

	// The pod's own view: host and port exactly as its environment says.
	host, port := strings.TrimPrefix(got[0], "BACKEND_SERVICE_HOST="), strings.TrimPrefix(got[1], "BACKEND_SERVICE_PORT=")
	target := "/fetch?url=" + url.QueryEscape("http://"+host+":"+port+"/")
	answer := regexp.MustCompile(`^hello from backend-v1 \((backend-[a-z0-9-]+)\)\n$`)
	var backendPods []string
	var pods struct {
		Items []struct{ Metadata struct{ Name string } }
	}
	if err := json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=backend", "-o", "json")), &pods); err != nil {
		t.Fatal(err)
	}
	for _, it := range pods.Items {
		backendPods = append(backendPods, it.Metadata.Name)
	}
	const workers, each = 8, 25
	var mu sync.Mutex
	var failures []string
	answered := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				b, err := get(target)
				m := answer.FindStringSubmatch(b)
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err.Error())
				case m == nil || !slices.Contains(backendPods, m[1]):
					failures = append(failures, fmt.Sprintf("answer %q is no backend pod's (%q)", b, backendPods))
				default:
					answered[m[1]]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls from the frontend pod to backend's service failed; first: %q", len(failures), workers*each, failures[:min(3, len(failures))])
	}
	total := 0
	for _, n := range answered {
		total += n
	}
	if total != workers*each {
		t.Errorf("%d answers, want %d", total, workers*each)
	}
	t.Logf("answers by backend pod: %v", answered)
}

// TestDockerServiceRangeOutsideNetworkFailsClearly: on Docker, a service
// range pods could not reach stops `slipway up` before it starts anything,
// naming the flag, the value and the rule (no engine is needed to say so).
func TestDockerServiceRangeOutsideNetworkFailsClearly(t *testing.T) {
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--runtime", "docker", "--data-dir", filepath.Join(home, "data"),
		"--api-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "", "--service-ip-range", "127.30.0.0/16")
	cmd.Env = (&platform{home: home}).env()
	out, err := cmd.CombinedOutput()
	want := "error: --service-ip-range 127.30.0.0/16: must lie inside 172.29.128.0/17, the upper half of the Docker network's subnet 172.29.0.0/16"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Fatalf("slipway up --runtime docker --service-ip-range 127.30.0.0/16: %v\n%s\nwant exit 1 and %q", err, out, want)
	}
	if _, err := os.Stat(filepath.Join(home, "data")); !os.IsNotExist(err) {
		t.Errorf("the refused start left its data dir behind (stat: %v)", err)
	}
}

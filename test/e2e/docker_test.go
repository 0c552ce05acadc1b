package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime/docker"
)

// Docker tests skip where no engine answers, and fail instead when
// SLIPWAY_REQUIRE_DOCKER=1 (CI starts one).
const requireDockerVar = "SLIPWAY_REQUIRE_DOCKER"

var (
	helloImageOnce sync.Once
	helloImageRef  string
	helloImageErr  error
)

// dockerEngine returns a client of the local engine, or skips (fails under
// SLIPWAY_REQUIRE_DOCKER=1) when none answers.
func dockerEngine(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		err = docker.Ping(context.Background(), cli)
	}
	if err != nil {
		if os.Getenv(requireDockerVar) == "1" {
			t.Fatalf("no Docker engine, and %s=1 requires one: %v", requireDockerVar, err)
		}
		t.Skipf("no Docker engine answers (set %s=1 to make this a failure): %v", requireDockerVar, err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// helloImage packages the sample app, built static, FROM scratch: no
// registry is involved.
func helloImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	helloImageOnce.Do(func() {
		dir, err := os.MkdirTemp("", "slipway-e2e-hello-")
		if err != nil {
			helloImageErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin := filepath.Join(dir, "hello")
		cmd := exec.Command("go", "build", "-o", bin, "slipway.dev/slipway/examples/hello")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			helloImageErr = fmt.Errorf("building the sample app: %v\n%s", err, out)
			return
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			helloImageErr = err
			return
		}
		sum := sha256.Sum256(b)
		helloImageRef = "slipway-e2e/hello:" + hex.EncodeToString(sum[:6])
		helloImageErr = docker.BuildScratchImage(context.Background(), cli, helloImageRef,
			[]docker.File{{Path: "/hello", Mode: 0o755, Data: b}}, []string{"/hello"})
	})
	if helloImageErr != nil {
		t.Fatal(helloImageErr)
	}
	return helloImageRef
}

// dockerManifest is a manifest of the sample app running its image instead
// of the local binary. The app binds $HOST, the pod IP, as on the process
// runtime.
func dockerManifest(m, image string) string {
	return strings.Replace(m, fmt.Sprintf("command: [%q]", helloBin), "image: "+image, 1)
}

// startDockerPlatform runs `slipway up --runtime docker` on home. Whatever
// the test leaves of its containers is removed once the platform stopped,
// so that a failing test leaves nothing running on the engine.
func startDockerPlatform(t *testing.T, cli *client.Client, home string) *platform {
	t.Helper()
	t.Cleanup(func() {
		b, err := os.ReadFile(filepath.Join(home, "data", "runtime", "docker-id"))
		if err != nil {
			return
		}
		list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{
			All: true, Filters: make(client.Filters).Add("label", docker.LabelManagedBy+"="+strings.TrimSpace(string(b))),
		})
		if err != nil {
			return
		}
		for _, s := range list.Items {
			cli.ContainerRemove(context.Background(), s.ID, client.ContainerRemoveOptions{Force: true})
		}
	})
	return startPlatform(t, home, "--runtime", "docker")
}

// owned lists the containers a platform owns (by its data dir's id).
func owned(t *testing.T, cli *client.Client, dataDir string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "runtime", "docker-id"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := cli.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", docker.LabelManagedBy+"="+strings.TrimSpace(string(b))),
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range list.Items {
		out = append(out, fmt.Sprintf("%s %s %s", s.ID[:12], s.Labels[docker.LabelRole], s.State))
	}
	slices.Sort(out)
	return out
}

// TestDockerKillNineAdoptsContainers: `slipway up --runtime docker` is
// killed with SIGKILL while 3 pods run; the restarted one adopts the very
// containers (no duplicate, no orphan) and serves through them. A graceful
// stop then removes all of its containers and none of anyone else's.
func TestDockerKillNineAdoptsContainers(t *testing.T) {
	cli := dockerEngine(t)
	image := helloImage(t, cli)
	// Someone else's container, labelled as another Slipway's: never ours
	// to remove.
	foreign, err := cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Labels: map[string]string{docker.LabelManagedBy: "slipway-someone-else"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cli.ContainerRemove(context.Background(), foreign.ID, client.ContainerRemoveOptions{Force: true})
	})

	home := t.TempDir()
	p := startDockerPlatform(t, cli, home)
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", dockerManifest(helloManifest(3, 30), image)))
	p.waitApp("hello", 3, 90*time.Second)
	ip := p.serviceIP("hello")
	before := owned(t, cli, p.dataDir)
	if n := len(before); n != 6 {
		t.Fatalf("%d containers after 3 pods started, want 6 (3 infra + 3 app): %q", n, before)
	}
	for _, c := range before {
		if !strings.HasSuffix(c, " running") {
			t.Fatalf("container %s is not running; all: %q", c, before)
		}
	}
	p.kill()
	p2 := startDockerPlatform(t, cli, home)
	// The pods' records say Ready from before the kill: what shows the
	// restarted agent adopted them is its log.
	waitUntil(t, 60*time.Second, "the restarted Slipway adopts 3 pods", func() bool {
		return strings.Count(p2.logs.String(), `msg="adopting a running pod"`) == 3
	})
	for _, line := range strings.Split(p2.logs.String(), "\n") {
		if strings.Contains(line, "recovered Slipway's containers") {
			t.Log(line)
		}
	}
	p2.waitApp("hello", 3, 60*time.Second)
	if after := owned(t, cli, p2.dataDir); !slices.Equal(after, before) {
		t.Fatalf("containers after kill -9 and restart:\n%q\nbefore:\n%q\n(want the very same ones, no duplicate or orphan)", after, before)
	}
	l := startLoad("http://"+ip+":80/", 8, 2)
	waitUntil(t, 20*time.Second, "traffic flows through the adopted containers", func() bool { return l.ok.Load() > 200 })
	l.end(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed through the adopted containers", n)
	}

	p2.stop()
	if left := owned(t, cli, p2.dataDir); len(left) != 0 {
		t.Errorf("containers left after a graceful stop: %q\nlog of slipway up:\n%s", left, p2.logs)
	}
	if _, err := cli.ContainerInspect(context.Background(), foreign.ID, client.ContainerInspectOptions{}); err != nil {
		t.Errorf("another owner's container is gone after the stop: %v", err)
	}
}

// TestDockerRollingRolloutLosesNoRequest rolls the sample app from v1 to v2
// on Docker with maxSurge 1 / maxUnavailable 0 under load through its
// service: no request fails, and v2 answers alone at the end.
func TestDockerRollingRolloutLosesNoRequest(t *testing.T) {
	cli := dockerEngine(t)
	image := helloImage(t, cli)
	p := startDockerPlatform(t, cli, t.TempDir())
	strategy := "    type: Rolling\n    rolling: {maxSurge: 1, maxUnavailable: 0}\n"
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", dockerManifest(rolloutManifest(strategy, "v1"), image)))
	p.waitRolledOut(1, 90*time.Second)
	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 32, 4)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.v1.Load() > 100 })

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", dockerManifest(rolloutManifest(strategy, "v2"), image)))
	p.waitRolledOut(2, 120*time.Second)
	v2 := l.v2.Load()
	waitUntil(t, 10*time.Second, "v2 answers after the rollout", func() bool { return l.v2.Load() > v2+200 })
	v1, v2 := l.v1.Load(), l.v2.Load()
	waitUntil(t, 10*time.Second, "v2 goes on answering", func() bool { return l.v2.Load() > v2+200 })
	l.end(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the rolling rollout on Docker; first errors: %q", n, l.errs)
	}
	if got := l.v1.Load(); got != v1 {
		t.Errorf("v1 answered %d requests after its pods were gone", got-v1)
	}
	// The last v1 pod's containers go once its sandbox is removed.
	waitUntil(t, 20*time.Second, "6 containers remain (3 pods of v2: infra + app)", func() bool { return len(owned(t, cli, p.dataDir)) == 6 })
}

// TestDockerRuntimeWithoutEngineFailsClearly: `slipway up --runtime docker`
// with no engine at DOCKER_HOST stops at once, saying where it looked.
func TestDockerRuntimeWithoutEngineFailsClearly(t *testing.T) {
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--runtime", "docker", "--data-dir", filepath.Join(home, "data"),
		"--api-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "")
	cmd.Env = append((&platform{home: home}).env(), "DOCKER_HOST=unix://"+filepath.Join(home, "no-engine.sock"))
	out, err := cmd.CombinedOutput()
	want := "error: cannot reach the Docker engine at unix://" + filepath.Join(home, "no-engine.sock") + ": "
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) {
		t.Fatalf("slipway up --runtime docker without an engine: %v\n%s\nwant exit 1 and %q", err, out, want)
	}
}

// TestDockerBlueGreenPromoteUnderLoad: on Docker, under load through the
// router, a BlueGreen rollout brings v2 up on the preview host while v1
// keeps every request; promote flips all traffic to v2. No request fails.
func TestDockerBlueGreenPromoteUnderLoad(t *testing.T) {
	cli := dockerEngine(t)
	image := helloImage(t, cli)
	p := startDockerPlatform(t, cli, t.TempDir())
	dir := t.TempDir()
	strategy := "    type: BlueGreen\n    blueGreen: {previewHost: preview.hello.test, scaleDownDelaySeconds: 120}\n"
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", dockerManifest(deployManifest(strategy, "v1", "", "hello.test"), image)))
	p.waitRolledOut(1, 90*time.Second)
	l := startRouteLoad(p, "hello.test", 32, 1)
	defer func() {
		if l != nil {
			l.end(t)
		}
	}()
	l.after(t, 500)

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", dockerManifest(deployManifest(strategy, "v2", "", "hello.test"), image)))
	waitUntil(t, 90*time.Second, "v2 is ready on the preview, waiting for promotion", func() bool {
		a := p.app("hello")
		return a.Status.Phase == "Paused" && a.Status.PreviewRevision == 2
	})
	waitUntil(t, 10*time.Second, "the preview host reaches v2", func() bool {
		v, code, err := p.getVersion("preview.hello.test")
		return err == nil && code == 200 && v == "v2"
	})
	l.after(t, 500)
	if ok, failed := l.counts(); ok["v2"] != 0 || len(failed) != 0 {
		t.Fatalf("before promotion: answers %v failures %v (%q); want v1 only", ok, failed, l.errs)
	}
	if out := p.ok("rollout", "promote", "app/hello"); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	waitUntil(t, 10*time.Second, "v2 answers", func() bool { ok, _ := l.counts(); return ok["v2"] > 0 })
	l.after(t, 300) // requests v1 accepted before the flip may still finish
	ok1, _ := l.counts()
	l.after(t, 1000)
	if ok, failed := l.counts(); ok["v1"] != ok1["v1"] || len(failed) != 0 {
		t.Fatalf("after promotion: v1 answered %d more; failures %v (%q)", ok["v1"]-ok1["v1"], failed, l.errs)
	}
	if a := p.app("hello"); a.Status.StableRevision != 2 || a.traffic() != "2=100" || a.Status.Phase != "Healthy" {
		t.Fatalf("after promotion: stable %d traffic %s phase %s", a.Status.StableRevision, a.traffic(), a.Status.Phase)
	}
	l.end(t)
	l = nil
}

// TestDockerCanaryAbortUnderLoad: on Docker, a canary of a version failing
// 30% of its requests gets 20% of the traffic and the analysis aborts the
// rollout by itself. Clients see failures only from the canary (its
// documented share), and none once the abort is applied.
func TestDockerCanaryAbortUnderLoad(t *testing.T) {
	cli := dockerEngine(t)
	image := helloImage(t, cli)
	p := startDockerPlatform(t, cli, t.TempDir())
	dir := t.TempDir()
	strategy := `    type: Canary
    canary:
      steps: [{setWeight: 20}, {pause: {}}]
      analysis:
        interval: 2s
        minRequests: 50
        metrics: [{name: success, type: successRate, min: 0.95}]
`
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", dockerManifest(deployManifest(strategy, "v1", "", "hello.test"), image)))
	p.waitRolledOut(1, 90*time.Second)
	l := startRouteLoad(p, "hello.test", 32, 1)
	defer func() {
		if l != nil {
			l.end(t)
		}
	}()
	l.after(t, 500)

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", dockerManifest(deployManifest(strategy, "v2", "{name: FAIL_RATE, value: '0.3'}", "hello.test"), image)))
	waitUntil(t, 90*time.Second, "the canary gets traffic", func() bool { ok, failed := l.counts(); return ok["v2"]+failed["v2"] > 0 })
	waitUntil(t, 60*time.Second, "the rollout aborts by itself", func() bool { return p.app("hello").Status.Phase == "Degraded" })
	if a := p.app("hello"); a.traffic() != "1=100" || a.Status.Rollout.Reason != "AnalysisFailed" {
		t.Fatalf("after the abort: traffic %s rollout %+v message %q", a.traffic(), a.Status.Rollout, a.Status.Message)
	}
	l.after(t, 500) // requests the canary accepted before the abort may still be answered
	ok1, failed1 := l.counts()
	l.after(t, 3000)
	ok2, failed2 := l.counts()
	if ok2["v2"] != ok1["v2"] || failed2["v2"] != failed1["v2"] {
		t.Errorf("v2 answered after the abort: %d ok, %d failed", ok2["v2"]-ok1["v2"], failed2["v2"]-failed1["v2"])
	}
	for v, n := range failed2 {
		if v != "v2" && n > 0 {
			t.Errorf("%d failures from %q (only the canary may fail): %q", n, v, l.errs)
		}
	}
	if served := ok2["v2"] + failed2["v2"]; served < 50 {
		t.Errorf("the canary answered %d requests, want at least 50 (minRequests) before the analysis decided", served)
	}
	l.end(t)
	l = nil
}

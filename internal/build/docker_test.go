package build_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build"
)

// needDocker connects to the engine, or skips with the reason; with
// SLIPWAY_REQUIRE_DOCKER=1 (CI) a missing engine fails the test instead.
func needDocker(t *testing.T) (*build.Docker, *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := build.NewDocker(ctx)
	if err != nil {
		if os.Getenv("SLIPWAY_REQUIRE_DOCKER") == "1" {
			t.Fatalf("SLIPWAY_REQUIRE_DOCKER=1 but %v", err)
		}
		t.Skipf("skipping: %v (set SLIPWAY_REQUIRE_DOCKER=1 to make this a failure)", err)
	}
	t.Cleanup(func() { d.Close() })
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return d, c
}

// server is a static web server answering its greeting on :8080.
const server = `package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wd, _ := os.Getwd()
		fmt.Fprintf(w, "%s from %s in %s", GREETING, os.Args[0], wd)
	})
	if err := http.ListenAndServe(":8080", nil); err != nil {
		panic(err)
	}
}
`

func serverSource(t *testing.T, greeting string) string {
	t.Helper()
	return writeFiles(t, t.TempDir(), map[string]string{
		"main.go":     server,
		"greeting.go": fmt.Sprintf("package main\n\nconst GREETING = %q\n", greeting),
	}, 0o644)
}

func uniqueApp(t *testing.T) string {
	var b [4]byte
	rand.Read(b[:])
	return "web-" + hex.EncodeToString(b[:])
}

// runImage runs image on the engine's default bridge (with entrypoint when
// given) and returns what GET / answers on the container's IP.
func runImage(t *testing.T, c *client.Client, image string, entrypoint []string) string {
	t.Helper()
	ctx := context.Background()
	created, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: image, Entrypoint: entrypoint, Labels: map[string]string{"slipway.dev/test": t.Name()}},
	})
	if err != nil {
		t.Fatalf("creating a container of %s: %v", image, err)
	}
	t.Cleanup(func() {
		c.ContainerRemove(context.Background(), created.ID, client.ContainerRemoveOptions{Force: true})
	})
	if _, err := c.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", image, err)
	}
	ins, err := c.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ip string
	for _, n := range ins.Container.NetworkSettings.Networks {
		if n.IPAddress.IsValid() {
			ip = n.IPAddress.String()
		}
	}
	if ip == "" {
		t.Fatalf("container of %s has no IP", image)
	}
	var body string
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + ip + ":8080/")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the container of %s did not answer on %s:8080 within 30s: %v", image, ip, err)
		}
		// Waiting for the program to listen: a condition polled with a deadline.
		time.Sleep(50 * time.Millisecond)
	}
	return body
}

func removeImage(t *testing.T, d *build.Docker, ref string) {
	t.Cleanup(func() { d.Remove(context.Background(), ref) })
}

// TestDockerfileBuildRunsOnDocker: a source with a Dockerfile (FROM
// scratch, a static program the test compiles) is built by the engine,
// tagged <project>/<app>:<n>, and the image serves.
func TestDockerfileBuildRunsOnDocker(t *testing.T) {
	d, c := needDocker(t)
	e := newEnv(t)
	e.runner.Docker = d
	name := uniqueApp(t)
	e.app(name, "/server")
	src := serverSource(t, "dockerfile build")
	cmd := exec.Command("go", "build", "-o", filepath.Join(src, "server"), ".")
	cmd.Dir, cmd.Env = src, append(goEnvForTests(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	writeFiles(t, src, map[string]string{"go.mod": "module server\n\ngo 1.22\n"}, 0o644)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling the test server: %v\n%s", err, out)
	}
	writeFiles(t, src, map[string]string{
		"Dockerfile":    "FROM scratch\nCOPY server /server\nEXPOSE 8080\nENTRYPOINT [\"/server\"]\n",
		".dockerignore": "*.go\ngo.mod\n",
	}, 0o644)
	e.start(name, 1, src)
	ref := api.ImageReference("default", name, 1)
	removeImage(t, d, ref)
	b := e.run(api.BuildName(name, 1))
	if b.Status.Phase != api.BuildComplete || b.Status.Strategy != api.BuildDocker || b.Status.Image != ref || !strings.HasPrefix(b.Status.ImageDigest, "sha256:") {
		t.Fatalf("status %+v\n%s", b.Status, e.log(api.BuildName(name, 1)))
	}
	if log := e.log(api.BuildName(name, 1)); !strings.Contains(log, " : FROM scratch") || !strings.Contains(log, "Successfully tagged "+ref) {
		t.Errorf("build log:\n%s", log)
	}
	ins, err := c.ImageInspect(context.Background(), ref)
	if err != nil || ins.ID != b.Status.ImageDigest {
		t.Fatalf("image %s: id %q, err %v; status digest %s", ref, ins.ID, err, b.Status.ImageDigest)
	}
	t.Logf("build took %s", b.Status.Duration)
	if got, want := runImage(t, c, ref, nil), "dockerfile build from /server in /"; got != want {
		t.Errorf("GET / = %q, want %q", got, want)
	}
	if img := e.getApp(name).Spec.Template.Containers[0].Image; img != ref {
		t.Errorf("app image %q, want %q", img, ref)
	}
}

// TestBinaryBuildRunsOnDocker: a Go source without Dockerfile is compiled
// on the host and packaged FROM scratch under /app, on PATH: the app's
// command ("server") runs it, and so does the image's entrypoint.
func TestBinaryBuildRunsOnDocker(t *testing.T) {
	d, c := needDocker(t)
	e := newEnv(t)
	e.runner.Docker = d
	name := uniqueApp(t)
	e.app(name, "server")
	e.start(name, 1, serverSource(t, "binary build"))
	ref := api.ImageReference("default", name, 1)
	removeImage(t, d, ref)
	b := e.run(api.BuildName(name, 1))
	if b.Status.Phase != api.BuildComplete || b.Status.Strategy != api.BuildGo || b.Status.Image != ref {
		t.Fatalf("status %+v\n%s", b.Status, e.log(api.BuildName(name, 1)))
	}
	t.Logf("build took %s", b.Status.Duration)
	if got, want := runImage(t, c, ref, nil), "binary build from /app/server in /app"; got != want {
		t.Errorf("entrypoint: GET / = %q, want %q", got, want)
	}
	if got, want := runImage(t, c, ref, []string{"server"}), "binary build from server in /app"; got != want {
		t.Errorf("the app's command: GET / = %q, want %q", got, want)
	}
}

// TestFailingDockerBuildKeepsTheApp: an engine error (an image that is
// not on the engine and cannot be pulled here) fails the build with the
// engine's words; the app keeps its image.
func TestFailingDockerBuildKeepsTheApp(t *testing.T) {
	d, _ := needDocker(t)
	e := newEnv(t)
	e.runner.Docker = d
	name := uniqueApp(t)
	before := e.app(name, "/server")
	src := writeFiles(t, t.TempDir(), map[string]string{"Dockerfile": "FROM scratch\nCOPY missing-file /x\n"}, 0o644)
	e.start(name, 1, src)
	b := e.run(api.BuildName(name, 1))
	if b.Status.Phase != api.BuildFailed || !strings.HasPrefix(b.Status.Message, "docker build: COPY failed") {
		t.Fatalf("status %+v\n%s", b.Status, e.log(api.BuildName(name, 1)))
	}
	if log := e.log(api.BuildName(name, 1)); !strings.Contains(log, "COPY failed") {
		t.Errorf("log:\n%s", log)
	}
	if after := e.getApp(name); after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Error("a failed build wrote the app")
	}
}

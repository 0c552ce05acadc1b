package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
)

// TestBuildsOnDocker runs builds on `slipway up --runtime docker` under
// load through the service: a binary build of the sample app (compiled on
// the host, packaged FROM scratch), then a Dockerfile build of a changed
// copy (v2), then a Dockerfile that fails: the engine's error is in the
// log and v2 goes on serving. No request fails.
func TestBuildsOnDocker(t *testing.T) {
	cli := dockerEngine(t)
	if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		t.Setenv("GOCACHE", strings.TrimSpace(string(out)))
	}
	for n := 1; n <= 3; n++ {
		ref := "default/hello:" + strconv.Itoa(n)
		cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{}) // left by an earlier run
		t.Cleanup(func() { cli.ImageRemove(context.Background(), ref, client.ImageRemoveOptions{PruneChildren: true}) })
	}
	p := startPlatform(t, t.TempDir(), "--runtime", "docker")
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", buildManifest))

	out := p.ok("build", "app/hello", "--from-dir", "../../examples/hello", "--follow")
	for _, want := range []string{"with the Go strategy", "Successfully tagged default/hello:1", "build hello-1 complete in "} {
		if !strings.Contains(out, want) {
			t.Errorf("build 1 output lacks %q:\n%s", want, out)
		}
	}
	p.waitRolledOut(2, 120*time.Second)
	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 16, 2)
	waitUntil(t, 20*time.Second, "v1 answers", func() bool { return l.v1.Load() > 100 })

	// v2 with a Dockerfile: the program is compiled here, the engine
	// packages it.
	src := copyHello(t, func(s string) string {
		return strings.Replace(s, `envOr("VERSION", "v1")`, `envOr("VERSION", "v2")`, 1)
	})
	cmd := exec.Command("go", "build", "-o", filepath.Join(src, "hello"), filepath.Join(src, "main.go"))
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compiling v2: %v\n%s", err, b)
	}
	writeFile(t, src, "Dockerfile", "FROM scratch\nCOPY hello /bin/hello\nENV PATH=/bin\nENTRYPOINT [\"/bin/hello\"]\n")
	writeFile(t, src, ".dockerignore", "*.go\n")
	out = p.ok("build", "app/hello", "--from-dir", src, "--follow")
	if !strings.Contains(out, "with the Docker strategy") || !strings.Contains(out, "Successfully tagged default/hello:2") {
		t.Errorf("build 2 output:\n%s", out)
	}
	p.waitRolledOut(3, 120*time.Second)
	n := l.v2.Load()
	waitUntil(t, 20*time.Second, "v2 answers", func() bool { return l.v2.Load() > n+200 })

	bad := t.TempDir()
	writeFile(t, bad, "Dockerfile", "FROM scratch\nCOPY no-such-file /x\n")
	r := p.run("", "build", "app/hello", "--from-dir", bad, "--follow")
	if r.code != 1 || !strings.Contains(r.stdout, "COPY failed") || !strings.HasPrefix(r.stderr, "error: build hello-3 Failed after ") {
		t.Fatalf("failing build: exit %d\nstdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if img := p.appImage(); img != "default/hello:2" {
		t.Errorf("app image %q after a failed build, want default/hello:2", img)
	}
	n = l.v2.Load()
	waitUntil(t, 20*time.Second, "v2 still answers", func() bool { return l.v2.Load() > n+200 })
	l.end(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during builds and rollouts on Docker; first errors: %q", n, l.errs)
	}
}

package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// buildManifest is the sample app run from what `slipway build` makes: its
// command names the program, and the ImageChange trigger puts each built
// image into the template. No VERSION is set: the program's own default
// says which source it was built from.
const buildManifest = `apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  replicas: 3
  template:
    terminationGracePeriodSeconds: 30
    containers:
      - name: web
        command: [hello]
        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
  strategy:
    type: Rolling
    rolling: {maxSurge: 1, maxUnavailable: 0}
  triggers:
    - type: ImageChange
---
apiVersion: slipway.dev/v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
`

// copyHello copies examples/hello to a new directory, with edit applied
// to main.go.
func copyHello(t *testing.T, edit func(string) string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(edit(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// appImage is the image of the app's web container.
func (p *platform) appImage() string {
	p.t.Helper()
	var a struct {
		Spec struct {
			Template struct{ Containers []struct{ Image string } }
		}
	}
	json.Unmarshal([]byte(p.ok("get", "app", "hello", "-o", "json")), &a)
	if len(a.Spec.Template.Containers) == 0 {
		p.t.Fatal("app hello has no container")
	}
	return a.Spec.Template.Containers[0].Image
}

// TestBuildsRollOut runs the whole build story on the process runtime
// under load through the service: build the sample app from examples/,
// roll it out, build a changed copy (v2) and roll again, fail a build
// (the running revision is untouched and the log shows why), undo to the
// previous image and set an image by hand. No request fails.
func TestBuildsRollOut(t *testing.T) {
	// The platform's `go build` uses this machine's build cache, as it
	// would for a developer; a cold cache only makes it slower.
	if out, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		t.Setenv("GOCACHE", strings.TrimSpace(string(out)))
	}
	p := startPlatform(t, t.TempDir())
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", buildManifest))

	// Bad input first: each a clear error, nothing created.
	if r := p.run("", "build", "app/nope", "--from-dir", "../../examples/hello"); r.code != 1 || !strings.Contains(r.stderr, `apps "nope" not found in project "default"`) {
		t.Errorf("build of an unknown app: exit %d %q", r.code, r.stderr)
	}
	if r := p.run("", "build", "app/hello", "--from-dir", "/no/such/dir"); r.code != 1 || r.stderr != "error: --from-dir /no/such/dir: no such directory\n" {
		t.Errorf("build of a missing dir: exit %d %q", r.code, r.stderr)
	}

	// Build 1 from the sample app as it is: revision 2 runs it (revision 1
	// had no image yet, so its pods could not start).
	out := p.ok("build", "app/hello", "--from-dir", "../../examples/hello", "--follow")
	for _, want := range []string{"build/hello-1 created", "building default/hello:1 for app hello with the Go strategy", "go build -trimpath -o hello . (CGO_ENABLED=0)", "image change: app hello containers web now run default/hello:1", "build hello-1 complete in "} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	p.waitRolledOut(2, 120*time.Second)
	if img := p.appImage(); img != "default/hello:1" {
		t.Fatalf("app image %q after build 1", img)
	}
	art := filepath.Join(p.dataDir, "artifacts", "default", "hello", "1", "hello")
	if fi, err := os.Stat(art); err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("artifact program %s: %v", art, err)
	}

	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 16, 2)
	waitUntil(t, 20*time.Second, "v1 answers", func() bool { return l.v1.Load() > 100 })

	// Build 2 from a changed copy: the rollout brings v2.
	v2src := copyHello(t, func(s string) string {
		return strings.Replace(s, `envOr("VERSION", "v1")`, `envOr("VERSION", "v2")`, 1)
	})
	p.ok("build", "app/hello", "--from-dir", v2src, "--follow")
	p.waitRolledOut(3, 120*time.Second)
	n := l.v2.Load()
	waitUntil(t, 20*time.Second, "v2 answers", func() bool { return l.v2.Load() > n+200 })
	v1 := l.v1.Load()
	waitUntil(t, 20*time.Second, "only v2 answers", func() bool { return l.v2.Load() > n+400 })
	if got := l.v1.Load(); got != v1 {
		t.Errorf("v1 answered %d requests after revision 3 was rolled out", got-v1)
	}

	// Build 3 does not compile: it fails with its log, and nothing changes.
	bad := copyHello(t, func(s string) string { return s + "\nfunc broken() { undefinedHelper() }\n" })
	r := p.run("", "build", "app/hello", "--from-dir", bad, "--follow")
	if r.code != 1 || !strings.Contains(r.stdout, "undefined: undefinedHelper") ||
		!strings.HasPrefix(r.stderr, "error: build hello-3 Failed after ") || !strings.Contains(r.stderr, "go build: exit status 1") {
		t.Fatalf("failing build: exit %d\nstdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"build", "logs", "hello-3"}, {"logs", "build/hello-3"}} {
		if logs := p.ok(args...); !strings.Contains(logs, "undefined: undefinedHelper") || !strings.Contains(logs, "error: go build: exit status 1") {
			t.Errorf("%s:\n%s", strings.Join(args, " "), logs)
		}
	}
	if r := p.run("", "build", "cancel", "build/hello-3"); r.code != 1 || r.stderr != "error: build hello-3 is already Failed\n" {
		t.Errorf("cancel of a finished build: exit %d %q", r.code, r.stderr)
	}
	desc := p.ok("describe", "build", "hello-3")
	for _, re := range []string{`(?m)^Phase:\s+Failed$`, `(?m)^Message:\s+go build: exit status 1`, `(?m)^Strategy:\s+Go$`, `(?m)^Log:\s+slipway build logs hello-3$`} {
		if !regexp.MustCompile(re).MatchString(desc) {
			t.Errorf("describe build hello-3 does not match %s:\n%s", re, desc)
		}
	}
	if img := p.appImage(); img != "default/hello:2" {
		t.Errorf("app image %q after a failed build, want default/hello:2", img)
	}
	if n := revisionCount(t, p); n != 3 {
		t.Errorf("%d revisions after a failed build, want 3", n)
	}
	n = l.v2.Load()
	waitUntil(t, 20*time.Second, "v2 still answers", func() bool { return l.v2.Load() > n+200 })

	builds := p.ok("get", "builds")
	for _, re := range []string{
		`(?m)^NAME\s+APP\s+STRATEGY\s+PHASE\s+IMAGE\s+DURATION\s+AGE$`,
		`(?m)^hello-1\s+hello\s+Go\s+Complete\s+default/hello:1\s+\S+s\s`,
		`(?m)^hello-2\s+hello\s+Go\s+Complete\s+default/hello:2\s+\S+s\s`,
		`(?m)^hello-3\s+hello\s+Go\s+Failed\s+-\s+\S+s\s`,
	} {
		if !regexp.MustCompile(re).MatchString(builds) {
			t.Errorf("get builds does not match %s:\n%s", re, builds)
		}
	}
	if images := p.ok("get", "images"); !regexp.MustCompile(`(?m)^hello\s+default/hello:2\s+sha256:[0-9a-f]{12}\s+2\s`).MatchString(images) {
		t.Errorf("get images:\n%s", images)
	}

	// rollout undo goes back to the previous image (a template change).
	p.ok("rollout", "undo", "app/hello")
	p.waitRolledOut(4, 120*time.Second)
	if img := p.appImage(); img != "default/hello:1" {
		t.Errorf("app image %q after undo, want default/hello:1", img)
	}
	n = l.v1.Load()
	waitUntil(t, 20*time.Second, "v1 answers again after undo", func() bool { return l.v1.Load() > n+200 })

	// set image picks any built image by hand.
	p.ok("set", "image", "app/hello", "web=default/hello:2")
	p.waitRolledOut(5, 120*time.Second)
	n = l.v2.Load()
	waitUntil(t, 20*time.Second, "v2 answers after set image", func() bool { return l.v2.Load() > n+200 })
	l.end(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during builds and rollouts; first errors: %q", n, l.errs)
	}
}

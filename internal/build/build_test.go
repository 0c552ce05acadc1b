package build_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build"
	"slipway.dev/slipway/internal/build/archive"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

var (
	appKind, _   = api.LookupKind("App")
	buildKind, _ = api.LookupKind("Build")
	isKind, _    = api.LookupKind("ImageStream")
)

// env is a real registry on a bolt file, a runner over it and its dirs.
type env struct {
	t      *testing.T
	ctx    context.Context
	reg    *registry.Registry
	runner *build.Runner
	logs   *build.Logs
	dir    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(t.Context()); err != nil {
		t.Fatal(err)
	}
	src := &build.Sources{Dir: filepath.Join(dir, "builds"), MaxBytes: 8 << 20}
	clk := clock.Real{}
	r := &build.Runner{
		Reg: reg, Sources: src, ArtifactDir: filepath.Join(dir, "artifacts"), GoEnv: goEnvForTests(), Clock: clk,
		Events: &events.Recorder{Reg: reg, Source: "build", Clock: clk},
		Log:    testLog(),
	}
	return &env{t: t, ctx: t.Context(), reg: reg, runner: r, logs: &build.Logs{Reg: reg, Sources: src, Poll: 20 * time.Millisecond}, dir: dir}
}

func testLog() *slog.Logger {
	if os.Getenv("SLIPWAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// goEnvForTests hands the toolchain this process's settings, so the
// build cache of the machine is used.
func goEnvForTests() []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k == "PATH" || k == "HOME" || k == "TMPDIR" || strings.HasPrefix(k, "GO") || k == "XDG_CACHE_HOME" {
			out = append(out, kv)
		}
	}
	if gocache, err := exec.Command("go", "env", "GOCACHE").Output(); err == nil {
		out = append(out, "GOCACHE="+strings.TrimSpace(string(gocache)))
	}
	return out
}

// app creates an App running command, with an ImageChange trigger.
func (e *env) app(name string, command ...string) *api.App {
	e.t.Helper()
	a := &api.App{
		Metadata: api.ObjectMeta{Name: name},
		Spec: api.AppSpec{
			Template: api.PodTemplate{Containers: []api.Container{{Name: "web", Command: command}, {Name: "side", Command: []string{"sleep", "1000"}}}},
			Triggers: []api.Trigger{{Type: api.TriggerImageChange, ImageChange: &api.ImageChangeTrigger{ContainerNames: []string{"web"}}}},
		},
	}
	obj, err := e.reg.Create(e.ctx, a)
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*api.App)
}

// start uploads dir as the API server does and records build n.
func (e *env) start(app string, n int64, dir string) *api.Build {
	e.t.Helper()
	var buf bytes.Buffer
	if _, err := archive.Pack(&buf, dir, archive.PackOptions{}); err != nil {
		e.t.Fatal(err)
	}
	st, err := e.runner.Sources.Stage(e.ctx, &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	name := api.BuildName(app, n)
	if err := st.Claim(api.DefaultProject, name); err != nil {
		e.t.Fatal(err)
	}
	obj, err := e.reg.Create(e.ctx, &api.Build{
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec:     api.BuildSpec{App: app, Number: n, Source: api.BuildSource{ArchiveBytes: st.Size(), ArchiveDigest: st.Digest()}},
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*api.Build)
}

// run reconciles the build (as the controller loop would) and returns it.
func (e *env) run(name string) *api.Build {
	e.t.Helper()
	if _, err := e.runner.Reconcile(e.ctx, controller.Key{Project: api.DefaultProject, Name: name}); err != nil {
		e.t.Fatalf("Reconcile(%s): %v", name, err)
	}
	obj, err := e.reg.Get(e.ctx, buildKind, api.DefaultProject, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*api.Build)
}

func (e *env) log(name string) string {
	e.t.Helper()
	rc, err := e.logs.BuildLog(e.ctx, api.DefaultProject, name, true)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

func (e *env) getApp(name string) *api.App {
	e.t.Helper()
	obj, err := e.reg.Get(e.ctx, appKind, api.DefaultProject, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*api.App)
}

func (e *env) stream(name string) *api.ImageStream {
	e.t.Helper()
	obj, err := e.reg.Get(e.ctx, isKind, api.DefaultProject, name)
	if err != nil {
		e.t.Fatal(err)
	}
	return obj.(*api.ImageStream)
}

func writeFiles(t *testing.T, dir string, files map[string]string, mode os.FileMode) string {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// greeter is a Go program without go.mod (as examples/hello is): the
// build must make it a module and compile it statically.
const greeter = `package main

import (
	"fmt"
	"os"
)

func main() { fmt.Println("hello from", os.Args[0]) }
`

func TestGoBuildMakesARunnableArtifactAndChangesTheImage(t *testing.T) {
	e := newEnv(t)
	e.app("hello", "hello", "--flag")
	src := writeFiles(t, t.TempDir(), map[string]string{"main.go": greeter, "static/page.html": "<p>hi</p>"}, 0o644)
	e.start("hello", 1, src)
	b := e.run("hello-1")
	if b.Status.Phase != api.BuildComplete {
		t.Fatalf("phase %s: %s\n%s", b.Status.Phase, b.Status.Message, e.log("hello-1"))
	}
	if b.Status.Image != "default/hello:1" || b.Status.Strategy != api.BuildGo || !strings.HasPrefix(b.Status.ImageDigest, "sha256:") || len(b.Status.ImageDigest) != 71 {
		t.Errorf("status %+v", b.Status)
	}
	if b.Status.LogRef != "/api/v1/projects/default/builds/hello-1/log" || b.Status.Duration == "" || b.Status.StartTime.IsZero() {
		t.Errorf("status %+v", b.Status)
	}
	art := build.ArtifactPath(filepath.Join(e.dir, "artifacts"), "default", "hello", 1)
	out, err := exec.Command(filepath.Join(art, "hello")).CombinedOutput()
	if err != nil || string(out) != "hello from "+filepath.Join(art, "hello")+"\n" {
		t.Fatalf("running the artifact: %q, %v", out, err)
	}
	if b, err := os.ReadFile(filepath.Join(art, "static", "page.html")); err != nil || string(b) != "<p>hi</p>" {
		t.Errorf("the artifact lacks the source's files: %q %v", b, err)
	}
	// Only the trigger's container changed.
	app := e.getApp("hello")
	if got := []string{app.Spec.Template.Containers[0].Image, app.Spec.Template.Containers[1].Image}; !cmp.Equal(got, []string{"default/hello:1", ""}) {
		t.Errorf("images after the build: %q", got)
	}
	s := e.stream("hello")
	if len(s.Status.Images) != 1 || s.Status.Images[0].Image != "default/hello:1" || s.Status.Images[0].Digest != b.Status.ImageDigest || s.Status.Images[0].Build != "hello-1" {
		t.Errorf("image stream %+v", s.Status)
	}
	log := e.log("hello-1")
	for _, want := range []string{"no go.mod: making the directory module \"hello\"", "go build -trimpath -o hello . (CGO_ENABLED=0)", "built default/hello:1 (sha256:"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	// The source and the work tree are gone once the build is final.
	e.run("hello-1")
	if _, err := os.Stat(filepath.Join(e.dir, "builds", "default", "hello-1", "source.tar")); !os.IsNotExist(err) {
		t.Errorf("source kept after the build: %v", err)
	}
}

func TestFailingBuildLeavesTheAppAlone(t *testing.T) {
	e := newEnv(t)
	before := e.app("hello", "hello")
	src := writeFiles(t, t.TempDir(), map[string]string{"main.go": "package main\n\nfunc main() { undefinedThing() }\n"}, 0o644)
	e.start("hello", 1, src)
	b := e.run("hello-1")
	if b.Status.Phase != api.BuildFailed || !strings.HasPrefix(b.Status.Message, "go build: exit status 1 (the compiler's output is in the build log)") {
		t.Fatalf("status %+v", b.Status)
	}
	if log := e.log("hello-1"); !strings.Contains(log, "undefined: undefinedThing") || !strings.Contains(log, "error: go build: exit status 1") {
		t.Errorf("log:\n%s", log)
	}
	after := e.getApp("hello")
	if after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Errorf("the app was written by a failed build")
	}
	if _, err := e.reg.Get(e.ctx, isKind, api.DefaultProject, "hello"); !api.IsNotFound(err) {
		t.Errorf("an image stream after a failed first build: %v", err)
	}
}

func TestDirectoryBuildNeedsTheCommandsExecutable(t *testing.T) {
	e := newEnv(t)
	e.app("web", "./bin/server")
	src := writeFiles(t, t.TempDir(), map[string]string{"README": "no program here"}, 0o644)
	e.start("web", 1, src)
	b := e.run("web-1")
	want := "the source has no bin/server: a directory build packages the source as is"
	if b.Status.Phase != api.BuildFailed || b.Status.Strategy != api.BuildDirectory || !strings.HasPrefix(b.Status.Message, want) {
		t.Fatalf("status %+v", b.Status)
	}
	writeFiles(t, src, map[string]string{"bin/server": "#!/bin/sh\necho served\n"}, 0o755)
	e.start("web", 2, src)
	if b := e.run("web-2"); b.Status.Phase != api.BuildComplete {
		t.Fatalf("status %+v", b.Status)
	}
	out, err := exec.Command(filepath.Join(build.ArtifactPath(filepath.Join(e.dir, "artifacts"), "default", "web", 2), "bin", "server")).Output()
	if err != nil || string(out) != "served\n" {
		t.Fatalf("artifact program: %q %v", out, err)
	}
}

func TestImagesAndBuildsArePrunedBeyondTheirLimits(t *testing.T) {
	e := newEnv(t)
	e.app("web", "server")
	limit := int32(2)
	if _, err := e.reg.Create(e.ctx, &api.ImageStream{Metadata: api.ObjectMeta{Name: "web"}, Spec: api.ImageStreamSpec{HistoryLimit: &limit}}); err != nil {
		t.Fatal(err)
	}
	e.runner.HistoryLimit = 2
	src := writeFiles(t, t.TempDir(), map[string]string{"server": "#!/bin/sh\n"}, 0o755)
	for n := int64(1); n <= 3; n++ {
		e.start("web", n, src)
		if b := e.run(api.BuildName("web", n)); b.Status.Phase != api.BuildComplete {
			t.Fatalf("build %d: %+v", n, b.Status)
		}
	}
	// The finished build's next reconcile prunes old builds; the deleted
	// build's reconcile removes its log.
	e.run("web-3")
	if _, err := e.reg.Get(e.ctx, buildKind, api.DefaultProject, "web-1"); !api.IsNotFound(err) {
		t.Errorf("build web-1 beyond the history limit: %v", err)
	}
	if _, err := e.runner.Reconcile(e.ctx, controller.Key{Project: api.DefaultProject, Name: "web-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "builds", "default", "web-1")); !os.IsNotExist(err) {
		t.Errorf("the pruned build's directory is still there: %v", err)
	}
	for _, name := range []string{"web-2", "web-3"} {
		if _, err := os.Stat(filepath.Join(e.dir, "builds", "default", name, "build.log")); err != nil {
			t.Errorf("log of kept build %s: %v", name, err)
		}
	}
	var got []string
	for _, im := range e.stream("web").Status.Images {
		got = append(got, im.Image)
	}
	if diff := cmp.Diff([]string{"default/web:3", "default/web:2"}, got); diff != "" {
		t.Errorf("images (-want +got):\n%s", diff)
	}
	arts := filepath.Join(e.dir, "artifacts")
	if _, err := os.Stat(build.ArtifactPath(arts, "default", "web", 1)); !os.IsNotExist(err) {
		t.Errorf("the pruned artifact is still there: %v", err)
	}
	if _, err := os.Stat(build.ArtifactPath(arts, "default", "web", 2)); err != nil {
		t.Errorf("a kept artifact is gone: %v", err)
	}
}

func TestDockerfileOnTheProcessRuntimeFailsClearly(t *testing.T) {
	e := newEnv(t)
	e.app("web", "server")
	src := writeFiles(t, t.TempDir(), map[string]string{"Dockerfile": "FROM scratch\n"}, 0o644)
	e.start("web", 1, src)
	b := e.run("web-1")
	if b.Status.Phase != api.BuildFailed || !strings.HasPrefix(b.Status.Message, "a Dockerfile build needs the Docker runtime (slipway up --runtime docker)") {
		t.Fatalf("status %+v", b.Status)
	}
}

func TestInterruptedBuildIsFailedAfterARestart(t *testing.T) {
	e := newEnv(t)
	e.app("web", "server")
	src := writeFiles(t, t.TempDir(), map[string]string{"server": "#!/bin/sh\n"}, 0o755)
	b := e.start("web", 1, src)
	b.Status.Phase = api.BuildRunning
	if _, err := e.reg.UpdateStatus(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	got := e.run("web-1")
	if got.Status.Phase != api.BuildFailed || got.Status.Message != "interrupted: Slipway stopped during the build; start it again with slipway build" {
		t.Fatalf("status %+v", got.Status)
	}
}

func TestBuildWithoutItsAppIsCancelled(t *testing.T) {
	e := newEnv(t)
	e.app("web", "server")
	src := writeFiles(t, t.TempDir(), map[string]string{"server": "#!/bin/sh\n"}, 0o755)
	e.start("web", 1, src)
	if _, err := e.reg.Delete(e.ctx, appKind, api.DefaultProject, "web", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	got := e.run("web-1")
	if got.Status.Phase != api.BuildCancelled || got.Status.Message != "the app was deleted: app default/web no longer exists" {
		t.Fatalf("status %+v", got.Status)
	}
}

// TestFollowedLogEndsWithTheBuild: a follower started before the build
// sees the whole log and then EOF.
func TestFollowedLogEndsWithTheBuild(t *testing.T) {
	e := newEnv(t)
	e.app("web", "server")
	src := writeFiles(t, t.TempDir(), map[string]string{"server": "#!/bin/sh\n"}, 0o755)
	e.start("web", 1, src)
	rc, err := e.logs.BuildLog(e.ctx, api.DefaultProject, "web-1", true)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(rc)
		got <- string(b)
	}()
	e.run("web-1")
	select {
	case log := <-got:
		if !strings.HasSuffix(log, "built default/web:1 ("+e.stream("web").Status.Images[0].Digest+")\n") {
			t.Errorf("followed log:\n%s", log)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the followed log did not end within 30s of the build's end")
	}
	if _, err := e.logs.BuildLog(e.ctx, api.DefaultProject, "web-9", false); !api.IsNotFound(err) {
		t.Errorf("log of a missing build: %v", err)
	}
}

// TestCancelStopsARunningBuild: a build stuck in `go build` (its module
// proxy never answers) is cancelled by the annotation `slipway build
// cancel` sets; the toolchain is killed and the build ends Cancelled.
func TestCancelStopsARunningBuild(t *testing.T) {
	e := newEnv(t)
	asked := make(chan struct{}, 1)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case asked <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers
	}))
	defer proxy.Close()
	e.runner.GoEnv = append(goEnvForTests(), "GOPROXY="+proxy.URL, "GOSUMDB=off", "GOFLAGS=-mod=mod", "GOMODCACHE="+t.TempDir())
	e.app("web", "web")
	src := writeFiles(t, t.TempDir(), map[string]string{
		"go.mod":  "module web\n\ngo 1.22\n\nrequire example.com/never v1.0.0\n",
		"main.go": "package main\n\nimport _ \"example.com/never\"\n\nfunc main() {}\n",
	}, 0o644)
	e.start("web", 1, src)
	done := make(chan *api.Build, 1)
	go func() {
		if _, err := e.runner.Reconcile(context.Background(), controller.Key{Project: api.DefaultProject, Name: "web-1"}); err != nil {
			t.Errorf("Reconcile: %v", err)
		}
		obj, _ := e.reg.Get(context.Background(), buildKind, api.DefaultProject, "web-1")
		done <- obj.(*api.Build)
	}()
	select {
	case <-asked:
	case <-time.After(60 * time.Second):
		t.Fatal("go build did not ask the module proxy within 60s")
	}
	obj, err := e.reg.Get(e.ctx, buildKind, api.DefaultProject, "web-1")
	if err != nil {
		t.Fatal(err)
	}
	b := obj.(*api.Build)
	if b.Status.Phase != api.BuildRunning {
		t.Fatalf("phase %s while go build runs", b.Status.Phase)
	}
	b.Metadata.Annotations = map[string]string{api.AnnotationCancelBuild: "true"}
	if _, err := e.reg.Update(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	select {
	case b = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the build did not end within 30s of its cancellation")
	}
	if b.Status.Phase != api.BuildCancelled || b.Status.Message != "cancelled (slipway build cancel)" {
		t.Fatalf("status %+v", b.Status)
	}
	if log := e.log("web-1"); !strings.HasSuffix(log, "error: cancelled (slipway build cancel)\n") {
		t.Errorf("log:\n%s", log)
	}
	if a := e.getApp("web"); a.Spec.Template.Containers[0].Image != "" {
		t.Errorf("a cancelled build set image %q", a.Spec.Template.Containers[0].Image)
	}

	// A build cancelled before it starts never runs.
	b = e.start("web", 3, src)
	b.Metadata.Annotations = map[string]string{api.AnnotationCancelBuild: "true"}
	if _, err := e.reg.Update(e.ctx, b); err != nil {
		t.Fatal(err)
	}
	if b := e.run("web-3"); b.Status.Phase != api.BuildCancelled || !b.Status.StartTime.Equal(b.Status.CompletionTime) {
		t.Fatalf("status %+v", b.Status)
	}
	if log := e.log("web-3"); log != "" {
		t.Errorf("a build cancelled before it started has a log: %q", log)
	}
}

// Package build runs Builds: it unpacks a build's uploaded source, builds
// it (a Docker build of its Dockerfile, a Go module compiled with
// CGO_ENABLED=0, or a directory holding a ready executable), records the
// image in the App's ImageStream and, when the App has an ImageChange
// trigger, writes the image into the App's template, which the deploy
// controller rolls out as a new Revision with the App's strategy.
//
// On Docker an image is tagged <project>/<app>:<n>; on the process runtime
// the same reference names the directory <artifacts>/<project>/<app>/<n>,
// from which the process driver runs the container's command.
//
// Builds run one at a time: the machine is small, and it makes the order
// of image changes the order of build numbers.
package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build/archive"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

var (
	buildKind, _       = api.LookupKind("Build")
	appKind, _         = api.LookupKind("App")
	imageStreamKind, _ = api.LookupKind("ImageStream")
	revisionKind, _    = api.LookupKind("Revision")
)

// DefaultTimeout bounds one build.
const DefaultTimeout = 15 * time.Minute

// Runner is the build controller.
type Runner struct {
	Reg     *registry.Registry
	Sources *Sources
	// ArtifactDir is where the process runtime's artifacts go
	// (<data-dir>/artifacts); used when Docker is nil.
	ArtifactDir string
	// Docker, when set, builds images on the engine instead of artifacts.
	Docker *Docker
	// GoEnv is the environment `go` runs with (PATH, HOME, GOPATH,
	// GOCACHE, GOPROXY…); CGO_ENABLED=0 and GOTOOLCHAIN=local are added.
	GoEnv   []string
	Timeout time.Duration
	// HistoryLimit is how many finished Builds each App keeps
	// (DefaultBuildHistoryLimit when 0).
	HistoryLimit int
	Clock        clock.Clock
	Events       *events.Recorder
	Log          *slog.Logger
}

// Run watches Builds until ctx ends.
func (r *Runner) Run(ctx context.Context, q *controller.Queue[controller.Key]) {
	go controller.WatchKind(ctx, r.Reg, buildKind, r.Log, func(ev registry.WatchEvent) {
		q.Add(controller.KeyOf(ev.Object))
	})
	controller.Loop(ctx, q, r, 1, func(k controller.Key, err error) {
		r.Log.Warn("build reconcile failed", "build", k.String(), "err", err)
	})
}

// Reconcile implements controller.Reconciler.
func (r *Runner) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := r.Reg.Get(ctx, buildKind, key.Project, key.Name)
	if api.IsNotFound(err) {
		r.Sources.Release(key.Project, key.Name) // the build was deleted: its log and source go too
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	b := obj.(*api.Build)
	switch {
	case b.Status.Finished():
		os.Remove(r.Sources.SourcePath(key.Project, key.Name))
		os.RemoveAll(r.Sources.workPath(key.Project, key.Name))
		return controller.Result{}, r.pruneBuilds(ctx, key.Project, b.Spec.App)
	case hasCancel(b):
		return controller.Result{}, r.finish(ctx, b, result{}, errCancelled)
	case b.Status.Phase == api.BuildRunning:
		// Builds run inside Reconcile and a key is never reconciled twice
		// at once, so a Running build seen here was left by a previous
		// Slipway that stopped during it.
		return controller.Result{}, r.finish(ctx, b, result{}, errors.New("interrupted: Slipway stopped during the build; start it again with slipway build"))
	}
	return controller.Result{}, r.run(ctx, b)
}

func hasCancel(b *api.Build) bool {
	_, ok := b.Metadata.Annotations[api.AnnotationCancelBuild]
	return ok
}

// pruneBuilds deletes an App's oldest finished Builds past
// HistoryLimit; their logs go when their deletion is reconciled.
func (r *Runner) pruneBuilds(ctx context.Context, project, app string) error {
	keep := r.HistoryLimit
	if keep <= 0 {
		keep = DefaultBuildHistoryLimit
	}
	objs, _, err := r.Reg.List(ctx, buildKind, project, registry.ListOptions{})
	if err != nil {
		return err
	}
	var builds []*api.Build
	for _, o := range objs {
		if b := o.(*api.Build); b.Spec.App == app {
			builds = append(builds, b)
		}
	}
	for _, name := range PruneBuilds(builds, keep) {
		if _, err := r.Reg.Delete(ctx, buildKind, project, name, registry.DeleteOptions{}); err != nil && !api.IsNotFound(err) {
			return err
		}
		r.Log.Info("pruned an old build", "build", project+"/"+name)
	}
	return nil
}

// result is what a successful build produced.
type result struct {
	image, digest, strategy string
	changed                 []string
}

func (r *Runner) run(ctx context.Context, b *api.Build) error {
	now := r.Clock.Now()
	b.Status = api.BuildStatus{Phase: api.BuildRunning, StartTime: now, LogRef: LogRef(b.Metadata.Project, b.Metadata.Name)}
	upd, err := r.Reg.UpdateStatus(ctx, b)
	if err != nil {
		return err
	}
	b = upd.(*api.Build)
	logf, err := os.OpenFile(r.Sources.LogPath(b.Metadata.Project, b.Metadata.Name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return r.finish(ctx, b, result{}, fmt.Errorf("opening the build log: %w", err))
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	bctx, cancelBuild := context.WithCancelCause(tctx)
	stopWatch := r.watchCancel(bctx, b, cancelBuild)
	res, berr := r.execute(bctx, b, logf)
	stopWatch()
	cancel()
	if berr != nil && errors.Is(context.Cause(bctx), errCancelled) {
		berr = errCancelled
	} else if berr != nil && ctx.Err() != nil {
		berr = fmt.Errorf("interrupted: Slipway stopped during the build (%v)", berr)
	} else if berr != nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
		berr = fmt.Errorf("timed out after %s: %w", timeout, berr)
	}
	if berr != nil {
		fmt.Fprintf(logf, "error: %v\n", berr)
	} else {
		fmt.Fprintf(logf, "built %s (%s)\n", res.image, res.digest)
	}
	logf.Close()
	return r.finish(ctx, b, res, berr)
}

// finish writes the final status; it must land even when ctx ended (the
// platform is stopping), so it gets a short context of its own.
func (r *Runner) finish(ctx context.Context, b *api.Build, res result, berr error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := r.Clock.Now()
	st := &b.Status
	if st.StartTime.IsZero() {
		st.StartTime = now
	}
	st.CompletionTime = now
	st.Duration = now.Sub(st.StartTime).Round(100 * time.Millisecond).String()
	st.LogRef = LogRef(b.Metadata.Project, b.Metadata.Name)
	st.Strategy = res.strategy
	if berr != nil {
		st.Phase, st.Message = api.BuildFailed, truncate(berr.Error(), api.MaxEventMessageBytes)
		if errors.Is(berr, errAppGone) || errors.Is(berr, errCancelled) {
			st.Phase = api.BuildCancelled
		}
	} else {
		st.Phase, st.Image, st.ImageDigest = api.BuildComplete, res.image, res.digest
		st.Message = "built " + res.image
		if len(res.changed) > 0 {
			st.Message += "; image set on containers " + strings.Join(res.changed, ", ") + " of app " + b.Spec.App
		}
	}
	err := r.writeStatus(wctx, b)
	if r.Events != nil {
		typ, reason := api.EventNormal, "BuildComplete"
		if st.Phase != api.BuildComplete {
			typ, reason = api.EventWarning, "Build"+st.Phase
		}
		r.Events.Record(wctx, b, typ, reason, st.Message)
	}
	r.Log.Info("build finished", "build", b.Metadata.Project+"/"+b.Metadata.Name, "phase", st.Phase, "duration", st.Duration, "image", st.Image)
	return err
}

// writeStatus writes b's status over whatever metadata changed meanwhile
// (a cancel annotation, labels): the status is the runner's alone.
func (r *Runner) writeStatus(ctx context.Context, b *api.Build) error {
	for range maxConflicts {
		_, err := r.Reg.UpdateStatus(ctx, b)
		if !api.IsConflict(err) {
			return err
		}
		obj, err := r.Reg.Get(ctx, buildKind, b.Metadata.Project, b.Metadata.Name)
		if err != nil {
			return err
		}
		latest := obj.(*api.Build)
		latest.Status = b.Status
		*b = *latest
	}
	return api.Errorf(api.ReasonConflict, "build %s kept changing", b.Metadata.Name)
}

var (
	errAppGone   = errors.New("the app was deleted")
	errCancelled = errors.New("cancelled (slipway build cancel)")
)

// cancelPoll is how often a running build looks for a cancel request.
const cancelPoll = 300 * time.Millisecond

// watchCancel cancels the build's context when its Build asks for it
// (AnnotationCancelBuild). A build runs inside Reconcile, so the queue
// cannot deliver the annotation's change to it: it looks for itself.
func (r *Runner) watchCancel(ctx context.Context, b *api.Build, cancel context.CancelCauseFunc) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(cancelPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			obj, err := r.Reg.Get(ctx, buildKind, b.Metadata.Project, b.Metadata.Name)
			if api.IsNotFound(err) {
				cancel(errCancelled)
				return
			}
			if err == nil && hasCancel(obj.(*api.Build)) {
				cancel(errCancelled)
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }
}

// execute builds, records the image and applies the image change.
func (r *Runner) execute(ctx context.Context, b *api.Build, log io.Writer) (result, error) {
	var res result
	project := b.Metadata.Project
	appObj, err := r.Reg.Get(ctx, appKind, project, b.Spec.App)
	if api.IsNotFound(err) {
		return res, fmt.Errorf("%w: app %s/%s no longer exists", errAppGone, project, b.Spec.App)
	}
	if err != nil {
		return res, err
	}
	app := appObj.(*api.App)
	work := r.Sources.workPath(project, b.Metadata.Name)
	if err := os.RemoveAll(work); err != nil {
		return res, err
	}
	if err := os.Mkdir(work, 0o700); err != nil {
		return res, err
	}
	if err := r.unpack(b, work, log); err != nil {
		return res, err
	}
	res.strategy, err = detectStrategy(b, work)
	if err != nil {
		return res, err
	}
	exe := Executable(app)
	res.image = api.ImageReference(project, b.Spec.App, b.Spec.Number)
	fmt.Fprintf(log, "building %s for app %s with the %s strategy\n", res.image, b.Spec.App, res.strategy)
	if r.Docker != nil {
		res.digest, err = r.dockerImage(ctx, b, res.strategy, work, exe, res.image, log)
	} else {
		res.digest, err = r.artifact(ctx, b, res.strategy, work, exe, log)
	}
	if err != nil {
		return res, err
	}
	if err := r.recordImage(ctx, b, res, app); err != nil {
		return res, fmt.Errorf("recording the image in image stream %s: %w", b.Spec.App, err)
	}
	res.changed, err = r.imageChange(ctx, b, res.image)
	if err != nil {
		return res, fmt.Errorf("the image was built, but setting it on app %s failed: %w", b.Spec.App, err)
	}
	if len(res.changed) > 0 {
		fmt.Fprintf(log, "image change: app %s containers %s now run %s\n", b.Spec.App, strings.Join(res.changed, ", "), res.image)
	} else if TargetContainers(app) == nil {
		fmt.Fprintf(log, "app %s has no ImageChange trigger: its template is unchanged (slipway set image app/%s CONTAINER=%s rolls it out)\n", b.Spec.App, b.Spec.App, res.image)
	}
	return res, nil
}

func (r *Runner) unpack(b *api.Build, work string, log io.Writer) error {
	switch b.Spec.Source.Type {
	case api.BuildSourceDockerfile:
		return os.WriteFile(filepath.Join(work, "Dockerfile"), []byte(b.Spec.Source.Dockerfile), 0o600)
	default:
		f, err := os.Open(r.Sources.SourcePath(b.Metadata.Project, b.Metadata.Name))
		if err != nil {
			return fmt.Errorf("the build's source is missing: %w", err)
		}
		defer f.Close()
		st, err := archive.Extract(f, work, archive.Limits{MaxBytes: r.Sources.limit()})
		if err != nil {
			return fmt.Errorf("unpacking the source: %w", err)
		}
		fmt.Fprintf(log, "source: %d entries, %d bytes (%s)\n", st.Entries, st.Bytes, b.Spec.Source.ArchiveDigest)
		return nil
	}
}

// detectStrategy: the spec's, else a Binary source → Directory, a
// Dockerfile → Docker, go.mod or .go files at the top → Go, anything else
// → Directory.
func detectStrategy(b *api.Build, work string) (string, error) {
	if s := b.Spec.Strategy.Type; s != "" {
		return s, nil
	}
	switch b.Spec.Source.Type {
	case api.BuildSourceDockerfile:
		return api.BuildDocker, nil
	case api.BuildSourceBinary:
		return api.BuildDirectory, nil // a ready program: never compiled, never a Dockerfile's context
	}
	if fi, err := os.Lstat(filepath.Join(work, "Dockerfile")); err == nil && fi.Mode().IsRegular() {
		return api.BuildDocker, nil
	}
	if _, err := os.Lstat(filepath.Join(work, "go.mod")); err == nil {
		return api.BuildGo, nil
	}
	ents, err := os.ReadDir(work)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".go") {
			return api.BuildGo, nil
		}
	}
	return api.BuildDirectory, nil
}

// LogRef is the API path of a build's log.
func LogRef(project, name string) string {
	return "/api/v1/projects/" + project + "/builds/" + name + "/log"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

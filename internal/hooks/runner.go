package hooks

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

// Labels on a hook's pod. api.LabelHook (its value the hook kind) keeps it
// out of every Service and every revision's replica count; the others let
// Observe and Cleanup find an App's hook pods. A hook's pod carries no
// "app" or "revision" label: it is no replica of the App.
const (
	LabelApp      = "slipway.dev/hook-app"
	LabelRevision = "slipway.dev/hook-revision"
	LabelAttempt  = "slipway.dev/hook-attempt"
)

// ContainerName is the one container of a hook's pod.
const ContainerName = "hook"

// Runner starts hook pods and reports on them.
type Runner struct {
	Reg    *registry.Registry
	Log    *slog.Logger
	Clock  clock.Clock
	Events *events.Recorder // nil: no Events
}

var podKind, _ = api.LookupKind("Pod")

// Of returns the App's hook of the given kind, or nil.
func Of(app *api.App, kind string) *api.Hook {
	h := app.Spec.Strategy.Hooks
	if h == nil {
		return nil
	}
	switch kind {
	case Pre:
		return h.Pre
	case Mid:
		return h.Mid
	case Post:
		return h.Post
	}
	return nil
}

// PodName is the name of the attempt-th run of a revision's hook:
// <app>-<n>-hook-<kind>-<attempt>. It cannot collide with a replica
// (<app>-<n>-<5 letters>) nor with another App's hook (revision names end
// in a number).
func PodName(app string, revision int64, kind string, attempt int) string {
	return fmt.Sprintf("%s-%d-hook-%s-%d", app, revision, kind, attempt)
}

// NewPod returns the pod of a hook run: the first container of the
// revision's template (image, working directory, environment, limits)
// running the hook's command with the hook's environment on top, never
// restarted, stopped past the hook's timeoutSeconds.
func NewPod(app *api.App, rev *api.Revision, kind string, attempt int) (*api.Pod, error) {
	hook := Of(app, kind)
	switch {
	case hook == nil:
		return nil, api.Errorf(api.ReasonBadRequest, "app %s has no %s hook", app.Metadata.Name, kind)
	case len(rev.Spec.Template.Containers) == 0:
		return nil, api.Errorf(api.ReasonBadRequest, "revision %s has no container to run its %s hook from", rev.Metadata.Name, kind)
	case attempt < 1:
		return nil, api.Errorf(api.ReasonBadRequest, "hook attempt %d: attempts count from 1", attempt)
	}
	name := PodName(app.Metadata.Name, rev.Spec.Number, kind, attempt)
	if len(name) > api.MaxNameLength {
		return nil, api.Errorf(api.ReasonBadRequest, "hook pod name %q is longer than %d characters: shorten the app's name", name, api.MaxNameLength)
	}
	c0 := rev.Spec.Template.Containers[0]
	env := []api.EnvVar{{Name: "SLIPWAY_HOOK", Value: kind}}
	for _, e := range c0.Env {
		if !slices.ContainsFunc(hook.Env, func(h api.EnvVar) bool { return h.Name == e.Name }) {
			env = append(env, e)
		}
	}
	env = append(env, hook.Env...)
	vols, mounts := hookVolumes(rev.Spec.Template.Volumes, c0.VolumeMounts)
	spec := api.PodSpec{
		App:      app.Metadata.Name,
		Revision: rev.Spec.Number,
		Containers: []api.Container{{
			Name: ContainerName, Image: c0.Image, Command: hook.Command, WorkingDir: c0.WorkingDir,
			Env: env, Resources: c0.Resources, VolumeMounts: mounts,
		}},
		Volumes:                       vols,
		TerminationGracePeriodSeconds: rev.Spec.Template.TerminationGracePeriodSeconds,
		RestartPolicy:                 api.RestartNever,
	}
	if hook.TimeoutSeconds > 0 {
		d := int64(hook.TimeoutSeconds)
		spec.ActiveDeadlineSeconds = &d
	}
	return &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Pod"},
		Metadata: api.ObjectMeta{
			Name:    name,
			Project: app.Metadata.Project,
			Labels: map[string]string{
				api.LabelHook: kind,
				LabelApp:      app.Metadata.Name,
				LabelRevision: strconv.FormatInt(rev.Spec.Number, 10),
				LabelAttempt:  strconv.Itoa(attempt),
			},
		},
		Spec: spec,
	}, nil
}

// Ensure makes sure the attempt-th run of the revision's hook exists and
// reports on it. The first call creates the pod; every later call (from
// this Slipway or the next one) finds it by name and only reads. So the
// deploy controller may call it at each reconcile; it should record the
// final Status in the App's status and stop calling once the run ended,
// because a run's record lasts only as long as its pod (see Cleanup).
func (r *Runner) Ensure(ctx context.Context, app *api.App, rev *api.Revision, kind string, attempt int) (Status, error) {
	want, err := NewPod(app, rev, kind, attempt)
	if err != nil {
		return Status{}, err
	}
	project := want.Metadata.Project
	obj, err := r.Reg.Get(ctx, podKind, project, want.Metadata.Name)
	if api.IsNotFound(err) {
		obj, err = r.Reg.Create(ctx, want)
		switch {
		case err == nil:
			r.log().Info("started a hook", "app", app.Metadata.Name, "hook", kind, "revision", rev.Spec.Number, "attempt", attempt, "pod", want.Metadata.Name)
			if r.Events != nil {
				r.Events.Record(ctx, app, api.EventNormal, "HookStarted",
					fmt.Sprintf("started the %s hook of revision %d (attempt %d) in pod %s", kind, rev.Spec.Number, attempt, want.Metadata.Name))
			}
		case api.IsAlreadyExists(err): // created meanwhile: read it
			obj, err = r.Reg.Get(ctx, podKind, project, want.Metadata.Name)
		}
	}
	if err != nil {
		return Status{}, err
	}
	pod := obj.(*api.Pod)
	if !r.owns(pod, want) {
		return Status{}, api.Errorf(api.ReasonConflict, "pod %s exists and is not the %s hook of revision %d of app %s", pod.Metadata.Name, kind, rev.Spec.Number, app.Metadata.Name)
	}
	return Describe(kind, attempt, pod), nil
}

// owns reports whether an existing pod is the one want describes.
func (r *Runner) owns(pod, want *api.Pod) bool {
	for _, k := range []string{api.LabelHook, LabelApp, LabelRevision, LabelAttempt} {
		if pod.Metadata.Labels[k] != want.Metadata.Labels[k] {
			return false
		}
	}
	return pod.Spec.RestartPolicy == api.RestartNever
}

// Observe reports every run of the revision's hook still on record,
// oldest attempt first: a controller that lost count finds the last one.
func (r *Runner) Observe(ctx context.Context, project, app string, revision int64, kind string) ([]Status, error) {
	sel := api.LabelHook + "=" + kind + "," + LabelApp + "=" + app + "," + LabelRevision + "=" + strconv.FormatInt(revision, 10)
	objs, _, err := r.Reg.List(ctx, podKind, project, registry.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, o := range objs {
		p := o.(*api.Pod)
		n, err := strconv.Atoi(p.Metadata.Labels[LabelAttempt])
		if err != nil || p.Metadata.Name != PodName(app, revision, kind, n) {
			continue
		}
		out = append(out, Describe(kind, n, p))
	}
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Attempt, b.Attempt) })
	return out, nil
}

// DefaultKeepRevisions is how many revisions' hook pods Cleanup keeps.
const DefaultKeepRevisions = 3

// Cleanup deletes the hook pods of all but the newest keep revisions that
// have any (keep < 1 means DefaultKeepRevisions). It never deletes those
// of the App's latest revision, nor a run that has not ended: deleting the
// record of a run would let Ensure start it again. It returns the names
// it deleted.
func (r *Runner) Cleanup(ctx context.Context, app *api.App, keep int) ([]string, error) {
	pods, err := r.appPods(ctx, app.Metadata.Project, app.Metadata.Name)
	if err != nil {
		return nil, err
	}
	doomed := PlanCleanup(pods, app.Status.LatestRevision, cmp.Or(max(keep, 0), DefaultKeepRevisions))
	return r.deleteAll(ctx, app.Metadata.Project, doomed)
}

// DeleteAll deletes every hook pod of an App, for when the App goes.
func (r *Runner) DeleteAll(ctx context.Context, project, app string) ([]string, error) {
	pods, err := r.appPods(ctx, project, app)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(pods))
	for i, p := range pods {
		names[i] = p.Metadata.Name
	}
	return r.deleteAll(ctx, project, names)
}

func (r *Runner) appPods(ctx context.Context, project, app string) ([]*api.Pod, error) {
	objs, _, err := r.Reg.List(ctx, podKind, project, registry.ListOptions{LabelSelector: LabelApp + "=" + app})
	if err != nil {
		return nil, err
	}
	var pods []*api.Pod
	for _, o := range objs {
		if p := o.(*api.Pod); api.IsHookPod(p) {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

func (r *Runner) deleteAll(ctx context.Context, project string, names []string) ([]string, error) {
	var done []string
	for _, n := range names {
		if _, err := r.Reg.Delete(ctx, podKind, project, n, registry.DeleteOptions{}); err != nil && !api.IsNotFound(err) {
			return done, fmt.Errorf("deleting hook pod %s: %w", n, err)
		}
		done = append(done, n)
	}
	return done, nil
}

// PlanCleanup picks the hook pods to delete: those of revisions older than
// the newest keep revisions having hook pods, except the latest revision's
// and runs that have not ended. Sorted by name.
func PlanCleanup(pods []*api.Pod, latest int64, keep int) []string {
	var revs []int64
	for _, p := range pods {
		if n, err := strconv.ParseInt(p.Metadata.Labels[LabelRevision], 10, 64); err == nil && !slices.Contains(revs, n) {
			revs = append(revs, n)
		}
	}
	slices.Sort(revs)
	kept := map[int64]bool{latest: true}
	for i := len(revs) - 1; i >= 0 && i >= len(revs)-keep; i-- {
		kept[revs[i]] = true
	}
	var out []string
	for _, p := range pods {
		n, err := strconv.ParseInt(p.Metadata.Labels[LabelRevision], 10, 64)
		if err != nil || kept[n] {
			continue
		}
		if p.Status.Phase != api.PodSucceeded && p.Status.Phase != api.PodFailed {
			continue
		}
		out = append(out, p.Metadata.Name)
	}
	slices.Sort(out)
	return out
}

// RetryWait is how long the deploy controller waits before starting the
// next attempt after st, the attempts-th run, failed (0: now).
func (r *Runner) RetryWait(st Status, attempts int) time.Duration {
	return max(RetryAt(st, attempts).Sub(r.clock().Now()), 0)
}

func (r *Runner) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

func (r *Runner) clock() clock.Clock {
	if r.Clock == nil {
		return clock.Real{}
	}
	return r.Clock
}

// hookVolumes are the volumes a hook's pod mounts: those of the app's
// first container but its claims. A hook runs beside the old pods, and a
// claim one pod at a time may write would make it wait for them while
// they wait for it; a hook reaches the app's data through its services.
func hookVolumes(vols []api.Volume, mounts []api.VolumeMount) ([]api.Volume, []api.VolumeMount) {
	var vs []api.Volume
	claims := map[string]bool{}
	for _, v := range vols {
		if v.PersistentVolumeClaim != nil {
			claims[v.Name] = true
			continue
		}
		vs = append(vs, v)
	}
	var ms []api.VolumeMount
	for _, m := range mounts {
		if !claims[m.Name] {
			ms = append(ms, m)
		}
	}
	return vs, ms
}

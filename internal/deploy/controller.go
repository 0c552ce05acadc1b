package deploy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

var (
	appKind, _      = api.LookupKind("App")
	revisionKind, _ = api.LookupKind("Revision")
	podKind, _      = api.LookupKind("Pod")
	secretKind, _   = api.LookupKind("Secret")
)

// Controller reconciles Apps into Revisions: it reads the App, its
// revisions and pods, the router's counters and any due analysis webhooks,
// lets Decide choose, and applies the plan (status first, so traffic
// leaves a revision before its pods are scaled down).
type Controller struct {
	Reg    *registry.Registry
	Events *events.Recorder
	Log    *slog.Logger
	// Now is the clock of minReadySeconds, pauses, analyses and deadlines
	// (time.Now if nil).
	Now func() time.Time
	// Metrics are the router's counters; nil leaves analyses inconclusive.
	Metrics Metrics
	// Client calls analysis webhooks (a client with no timeout of its own
	// if nil: each call has the metric's timeoutSeconds).
	Client *http.Client
	// Hooks runs rollout hooks; nil: hooks are not run.
	Hooks Hooks
}

// Run watches Apps, Revisions, Pods and Secrets until ctx ends.
func (c *Controller) Run(ctx context.Context, q *controller.Queue[controller.Key]) {
	go controller.WatchKind(ctx, c.Reg, appKind, c.Log, func(ev registry.WatchEvent) {
		q.Add(controller.KeyOf(ev.Object))
	})
	go controller.WatchKind(ctx, c.Reg, revisionKind, c.Log, func(ev registry.WatchEvent) {
		r := ev.Object.(*api.Revision)
		q.Add(controller.Key{Project: r.Metadata.Project, Name: r.Spec.App})
	})
	// Pods: crash loops and readiness gaps are read from them.
	go controller.WatchKind(ctx, c.Reg, podKind, c.Log, func(ev registry.WatchEvent) {
		if p := ev.Object.(*api.Pod); p.Spec.App != "" {
			q.Add(controller.Key{Project: p.Metadata.Project, Name: p.Spec.App})
		}
	})
	// Secrets: a change of a referenced key's value is a new revision.
	go controller.WatchKind(ctx, c.Reg, secretKind, c.Log, func(ev registry.WatchEvent) {
		project := ev.Object.GetMeta().Project
		objs, _, err := c.Reg.List(ctx, appKind, project, registry.ListOptions{})
		if err != nil {
			return
		}
		for _, o := range objs {
			if _, ok := SecretRefs(o.(*api.App).Spec.Template)[ev.Object.GetMeta().Name]; ok {
				q.Add(controller.KeyOf(o))
			}
		}
	})
	controller.Loop(ctx, q, c, 2, func(k controller.Key, err error) {
		c.Log.Warn("app reconcile failed", "app", k.String(), "err", err)
	})
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Reconcile implements controller.Reconciler.
func (c *Controller) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := c.Reg.Get(ctx, appKind, key.Project, key.Name)
	if api.IsNotFound(err) {
		if c.Hooks != nil {
			if err := c.Hooks.Forget(ctx, key.Project, key.Name, nil); err != nil {
				return controller.Result{}, err
			}
		}
		return controller.Result{}, c.deleteRevisions(ctx, key)
	}
	if err != nil {
		return controller.Result{}, err
	}
	app := obj.(*api.App)
	revs, err := c.revisions(ctx, key)
	if err != nil {
		return controller.Result{}, err
	}
	pods, err := c.pods(ctx, key)
	if err != nil {
		return controller.Result{}, err
	}
	obs := Observed{Revisions: revs, Pods: pods}
	if obs.SecretHash, err = c.secretHash(ctx, app); err != nil {
		return controller.Result{}, err
	}
	if c.Metrics != nil {
		if s, ok := c.Metrics.Routes(key.Project, key.Name); ok {
			obs.Routes = &s
		}
		obs.Metrics = map[int64]Sample{}
		for _, r := range revs {
			if s, ok := c.Metrics.Revision(key.Project, key.Name, r.Spec.Number); ok {
				obs.Metrics[r.Spec.Number] = s
			}
		}
	}
	if c.Hooks != nil {
		obs.Hooks = map[string]HookRun{}
		if ro := app.Status.Rollout; ro != nil {
			obs.Hooks = c.observeHooks(ctx, app, revs, ro.Revision, HooksToRun(app.Status))
		}
	}
	// The decision's time, as late as the observations allow: rollouts'
	// start and end times in the report are stamped with it.
	now := c.now()
	var res controller.Result
	if d := minReady(app); d > 0 {
		avail, wait := AvailablePods(pods, d, now)
		obs.Revisions = withAvailable(revs, avail)
		res.RequeueAfter = wait // a pod becoming available changes no record: look again then
	}
	if calls := DueWebhooks(app, now); len(calls) > 0 {
		obs.Webhooks = c.callWebhooks(ctx, calls)
	}
	p := Decide(app, obs, now)
	if p.RequeueAfter > 0 && (res.RequeueAfter == 0 || p.RequeueAfter < res.RequeueAfter) {
		res.RequeueAfter = p.RequeueAfter
	}
	if !reflect.DeepEqual(p.Status, app.Status) {
		next := *app
		next.Status = p.Status
		if _, err := c.Reg.UpdateStatus(ctx, &next); err != nil {
			if api.IsNotFound(err) {
				return controller.Result{}, nil
			}
			return controller.Result{}, err // a conflict requeues and decides again
		}
	}
	if p.Create != nil {
		if _, err := c.Reg.Create(ctx, p.Create); err != nil && !api.IsAlreadyExists(err) {
			return controller.Result{}, err
		}
	}
	for _, r := range revs {
		want, ok := p.Scale[r.Metadata.Name]
		if !ok {
			continue
		}
		r.Spec.Replicas = want
		if _, err := c.Reg.Update(ctx, r); err != nil {
			return controller.Result{}, err // a conflict requeues and re-plans
		}
	}
	for _, name := range p.Delete {
		if _, err := c.Reg.Delete(ctx, revisionKind, key.Project, name, registry.DeleteOptions{}); err != nil && !api.IsNotFound(err) {
			return controller.Result{}, err
		}
	}
	for _, ev := range p.Events {
		c.Events.Record(ctx, app, ev.Type, ev.Reason, ev.Message)
	}
	if c.Hooks != nil {
		// Start the runs the decision recorded (after the status holding
		// them is written: a restart finds the same attempt, hence the
		// same pod).
		var start []api.HookState
		for _, h := range HooksToRun(p.Status) {
			if run, ok := obs.Hooks[h.Hook]; !ok || run.Attempt != h.Attempt {
				start = append(start, h)
			}
		}
		if len(start) > 0 {
			revs, err := c.revisions(ctx, key)
			if err != nil {
				return controller.Result{}, err
			}
			c.observeHooks(ctx, app, revs, p.Status.Rollout.Revision, start)
		}
		// A rollout that just ended: the hook pods of old revisions go
		// (their logs with them; the last few revisions' are kept).
		if was, now := app.Status.Rollout, p.Status.Rollout; was != nil && now != nil && was.EndedAt.IsZero() && !now.EndedAt.IsZero() {
			next := *app
			next.Status = p.Status
			if err := c.Hooks.Forget(ctx, key.Project, key.Name, &next); err != nil {
				c.Log.Warn("cannot delete old hook pods; will retry after the next rollout", "app", key.String(), "err", err)
			}
		}
	}
	return res, nil
}

// observeHooks makes sure of each hook run (starting it the first time)
// and reports on them by kind. A run that cannot be read is left out: the
// rollout waits for it.
func (c *Controller) observeHooks(ctx context.Context, app *api.App, revs []*api.Revision, revision int64, runs []api.HookState) map[string]HookRun {
	out := map[string]HookRun{}
	var rev *api.Revision
	for _, r := range revs {
		if r.Spec.Number == revision {
			rev = r
		}
	}
	if rev == nil {
		return out
	}
	for _, h := range runs {
		run, err := c.Hooks.Run(ctx, app, rev, h.Hook, h.Attempt)
		if err != nil {
			c.Log.Warn("cannot run a rollout hook; will retry", "app", app.Metadata.Name, "hook", h.Hook, "attempt", h.Attempt, "err", err)
			continue
		}
		run.Attempt = h.Attempt
		out[h.Hook] = run
	}
	return out
}

// secretHash digests the Secret values app's template references.
func (c *Controller) secretHash(ctx context.Context, app *api.App) (string, error) {
	refs := SecretRefs(app.Spec.Template)
	if len(refs) == 0 {
		return "", nil
	}
	data := map[string]map[string]string{}
	for name := range refs {
		obj, err := c.Reg.Get(ctx, secretKind, app.Metadata.Project, name)
		if api.IsNotFound(err) {
			continue // digests as absent; the node reports the missing Secret
		}
		if err != nil {
			return "", err
		}
		data[name] = obj.(*api.Secret).Data
	}
	return SecretHash(refs, data), nil
}

// callWebhooks calls each due webhook metric (in parallel) and reports
// which answered 2xx within its timeout.
func (c *Controller) callWebhooks(ctx context.Context, calls []WebhookCall) map[string]bool {
	client := c.Client
	if client == nil {
		client = &http.Client{}
	}
	out := make(map[string]bool, len(calls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, call := range calls {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, call.Timeout)
			defer cancel()
			ok := false
			req, err := http.NewRequestWithContext(cctx, http.MethodGet, call.URL, nil)
			if err == nil {
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
					resp.Body.Close()
					ok = resp.StatusCode >= 200 && resp.StatusCode < 300
				}
			}
			mu.Lock()
			out[call.Key] = ok
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (c *Controller) revisions(ctx context.Context, key controller.Key) ([]*api.Revision, error) {
	objs, _, err := c.Reg.List(ctx, revisionKind, key.Project, registry.ListOptions{LabelSelector: api.LabelApp + "=" + key.Name})
	if err != nil {
		return nil, err
	}
	revs := make([]*api.Revision, 0, len(objs))
	for _, o := range objs {
		if r := o.(*api.Revision); r.Spec.App == key.Name {
			revs = append(revs, r)
		}
	}
	return revs, nil
}

// pods lists the pods of the App named by key.
func (c *Controller) pods(ctx context.Context, key controller.Key) ([]*api.Pod, error) {
	objs, _, err := c.Reg.List(ctx, podKind, key.Project, registry.ListOptions{LabelSelector: api.LabelApp + "=" + key.Name})
	if err != nil {
		return nil, err
	}
	pods := make([]*api.Pod, 0, len(objs))
	for _, o := range objs {
		if p := o.(*api.Pod); p.Spec.App == key.Name {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// deleteRevisions removes the revisions of a deleted App; the replication
// controller then removes their pods.
func (c *Controller) deleteRevisions(ctx context.Context, key controller.Key) error {
	revs, err := c.revisions(ctx, key)
	if err != nil {
		return err
	}
	for _, r := range revs {
		if _, err := c.Reg.Delete(ctx, revisionKind, key.Project, r.Metadata.Name, registry.DeleteOptions{}); err != nil && !api.IsNotFound(err) {
			return err
		}
	}
	return nil
}

package deploy

import (
	"context"
	"log/slog"
	"reflect"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/registry"
)

var (
	appKind, _      = api.LookupKind("App")
	revisionKind, _ = api.LookupKind("Revision")
	podKind, _      = api.LookupKind("Pod")
)

// Controller reconciles Apps into Revisions.
type Controller struct {
	Reg    *registry.Registry
	Events *controller.Recorder
	Log    *slog.Logger
	// Now is the clock minReadySeconds is measured with (time.Now if nil).
	Now func() time.Time
}

// Run watches Apps and Revisions until ctx ends.
func (c *Controller) Run(ctx context.Context, q *controller.Queue[controller.Key]) {
	go controller.WatchKind(ctx, c.Reg, appKind, c.Log, func(ev registry.WatchEvent) {
		q.Add(controller.KeyOf(ev.Object))
	})
	go controller.WatchKind(ctx, c.Reg, revisionKind, c.Log, func(ev registry.WatchEvent) {
		r := ev.Object.(*api.Revision)
		q.Add(controller.Key{Project: r.Metadata.Project, Name: r.Spec.App})
	})
	controller.Loop(ctx, q, c, 2, func(k controller.Key, err error) {
		c.Log.Warn("app reconcile failed", "app", k.String(), "err", err)
	})
}

// Reconcile implements controller.Reconciler.
func (c *Controller) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := c.Reg.Get(ctx, appKind, key.Project, key.Name)
	if api.IsNotFound(err) {
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
	var res controller.Result
	planned := revs
	if d := minReady(app); d > 0 {
		pods, err := c.pods(ctx, key)
		if err != nil {
			return controller.Result{}, err
		}
		now := time.Now
		if c.Now != nil {
			now = c.Now
		}
		avail, wait := AvailablePods(pods, d, now())
		planned = withAvailable(revs, avail)
		res.RequeueAfter = wait // a pod becoming available changes no record: look again then
	}
	p := PlanApp(app, planned)
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
	if !reflect.DeepEqual(p.Status, app.Status) {
		app.Status = p.Status
		if _, err := c.Reg.UpdateStatus(ctx, app); err != nil && !api.IsNotFound(err) {
			return controller.Result{}, err
		}
	}
	return res, nil
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

package autoscale

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

var (
	appKind, _ = api.LookupKind("App")
	podKind, _ = api.LookupKind("Pod")
)

// Metrics are the router's counters of an App, summed over the routes
// whose backends it serves (server implements it over the router's
// AppRoutes: the autoscaler may not import the router).
type Metrics interface {
	// App returns the App's in-flight requests (held ones included) and
	// its answered requests so far; false when no route reaches it.
	App(project, name string) (RouterSample, bool)
}

// Usage is the runtime's resource usage of a pod (cpu in millicores,
// memory in bytes), false when the runtime reports none for it: that
// pod's cpu and memory are then missing metrics, as the HPA counts them.
type Usage interface {
	Pod(p *api.Pod) (map[string]float64, bool)
}

// Controller evaluates each autoscaled App every intervalSeconds: it
// observes (its load-carrying pods, the router's counters, the runtime's
// usage), lets Decide choose, writes spec.replicas (compare-and-swap on
// the App read), then status.autoscaling, and records an Event per scale.
type Controller struct {
	Reg    *registry.Registry
	Events *events.Recorder
	Log    *slog.Logger
	Clock  clock.Clock
	// Metrics nil: concurrency and requestsPerSecond cannot be computed.
	Metrics Metrics
	// Usage nil: the runtime reports no usage, cpu and memory are missing.
	Usage Usage
}

// Run watches Apps until ctx ends; each App is looked at again when its
// next evaluation is due.
func (c *Controller) Run(ctx context.Context, q *controller.Queue[controller.Key]) {
	go controller.WatchKind(ctx, c.Reg, appKind, c.Log, func(ev registry.WatchEvent) {
		if ev.Type == registry.Deleted {
			return
		}
		if a := ev.Object.(*api.App); a.Spec.Autoscaling != nil || a.Status.Autoscaling != nil {
			q.Add(controller.KeyOf(ev.Object))
		}
	})
	controller.Loop(ctx, q, c, 1, func(k controller.Key, err error) {
		c.Log.Warn("autoscale failed", "app", k.String(), "err", err)
	})
}

// Interval is how often as is evaluated.
func Interval(as *api.Autoscaling) time.Duration {
	if as.IntervalSeconds != nil && *as.IntervalSeconds > 0 {
		return time.Duration(*as.IntervalSeconds) * time.Second
	}
	return time.Duration(api.DefaultAutoscaleIntervalSeconds) * time.Second
}

// Reconcile implements controller.Reconciler.
func (c *Controller) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := c.Reg.Get(ctx, appKind, key.Project, key.Name)
	if api.IsNotFound(err) {
		return controller.Result{}, nil
	}
	if err != nil {
		return controller.Result{}, err
	}
	app := obj.(*api.App)
	as := app.Spec.Autoscaling
	if as == nil {
		if app.Status.Autoscaling == nil {
			return controller.Result{}, nil
		}
		// Autoscaling was turned off: its account goes, spec.replicas stays.
		return controller.Result{}, c.writeStatus(ctx, app, nil)
	}
	now := c.Clock.Now()
	every := Interval(as)
	var history api.AutoscalingStatus
	if h := app.Status.Autoscaling; h != nil {
		history = *h
		if since := now.Sub(h.LastEvaluation); !h.LastEvaluation.IsZero() && since >= 0 && since < every {
			return controller.Result{RequeueAfter: every - since}, nil
		}
	}
	obs, err := c.observe(ctx, app)
	if err != nil {
		return controller.Result{}, err
	}
	d := Decide(as, obs, history, now)
	if d.Replicas != obs.Replicas {
		next := *app
		next.Spec.Replicas = &d.Replicas
		updated, err := c.Reg.Update(ctx, &next)
		if err != nil {
			return controller.Result{}, err // a conflict: observe and decide again
		}
		app = updated.(*api.App)
	}
	if err := c.writeStatus(ctx, app, &d.History); err != nil {
		return controller.Result{}, err
	}
	if d.Replicas != obs.Replicas {
		c.Events.Record(ctx, app, api.EventNormal, "SuccessfulRescale", fmt.Sprintf("New size: %d; reason: %s", d.Replicas, d.Reason))
	}
	return controller.Result{RequeueAfter: every}, nil
}

// writeStatus sets status.autoscaling, reading the App again on a
// conflict (the deploy controller writes the rest of the status).
func (c *Controller) writeStatus(ctx context.Context, app *api.App, st *api.AutoscalingStatus) error {
	for range 5 {
		if reflect.DeepEqual(app.Status.Autoscaling, st) {
			return nil
		}
		next := *app
		next.Status.Autoscaling = st
		_, err := c.Reg.UpdateStatus(ctx, &next)
		if !api.IsConflict(err) {
			if api.IsNotFound(err) {
				return nil
			}
			return err
		}
		obj, err := c.Reg.Get(ctx, appKind, app.Metadata.Project, app.Metadata.Name)
		if err != nil {
			return err
		}
		app = obj.(*api.App)
	}
	return fmt.Errorf("status of app %s/%s: conflicts on every try", app.Metadata.Project, app.Metadata.Name)
}

// observe gathers what Decide needs: spec.replicas, the load-carrying
// pods and the router's counters.
func (c *Controller) observe(ctx context.Context, app *api.App) (Observations, error) {
	obs := Observations{Replicas: api.DefaultReplicas}
	if app.Spec.Replicas != nil {
		obs.Replicas = *app.Spec.Replicas
	}
	objs, _, err := c.Reg.List(ctx, podKind, app.Metadata.Project, registry.ListOptions{LabelSelector: api.LabelApp + "=" + app.Metadata.Name})
	if err != nil {
		return obs, err
	}
	var pods []*api.Pod
	for _, o := range objs {
		p := o.(*api.Pod)
		if p.Spec.App == app.Metadata.Name && !api.IsHookPod(p) {
			pods = append(pods, p)
		}
	}
	for _, p := range LoadCarrying(pods, obs.Replicas) {
		s := PodSample{Name: p.Metadata.Name, Ready: podReady(p), Limit: limits(p)}
		if c.Usage != nil {
			if u, ok := c.Usage.Pod(p); ok {
				s.Usage = u
			}
		}
		obs.Pods = append(obs.Pods, s)
	}
	if c.Metrics != nil {
		if s, ok := c.Metrics.App(app.Metadata.Project, app.Metadata.Name); ok {
			obs.Router = &s
		}
	}
	return obs, nil
}

// LoadCarrying picks the pods that carry the App's load: not terminating,
// not ended, and at most replicas of them, ready ones first (then the
// oldest). The pods beyond spec.replicas are a rollout's surge, or pods on
// their way out after a scale-down; counting them would make the
// autoscaler size the App by its rollout (the HPA's surge lock-in,
// kubernetes#72775).
func LoadCarrying(pods []*api.Pod, replicas int32) []*api.Pod {
	var live []*api.Pod
	for _, p := range pods {
		if p.Metadata.DeletionTimestamp != nil || p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed {
			continue
		}
		if c := api.FindCondition(p.Status.Conditions, api.PodReady); c != nil && c.Status != api.ConditionTrue && c.Reason == "Terminating" {
			continue
		}
		live = append(live, p)
	}
	slices.SortStableFunc(live, func(a, b *api.Pod) int {
		if ra, rb := podReady(a), podReady(b); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		return a.Metadata.CreationTimestamp.Compare(b.Metadata.CreationTimestamp)
	})
	if int32(len(live)) > replicas {
		live = live[:max(replicas, 0)]
	}
	return live
}

func podReady(p *api.Pod) bool {
	c := api.FindCondition(p.Status.Conditions, api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

// limits sums the pod's containers' limits (cpu in millicores, memory in
// bytes); a resource some container has no limit for is left out.
func limits(p *api.Pod) map[string]float64 {
	out := map[string]float64{}
	for _, res := range []string{api.ResourceCPU, api.ResourceMemory} {
		var sum float64
		for _, ct := range p.Spec.Containers {
			q, ok := ct.Resources.Limits[res]
			if !ok {
				sum = -1
				break
			}
			var v int64
			var err error
			if res == api.ResourceCPU {
				v, err = q.MilliValue()
			} else {
				v, err = q.Value()
			}
			if err != nil {
				sum = -1
				break
			}
			sum += float64(v)
		}
		if sum > 0 {
			out[res] = sum
		}
	}
	return out
}

// Package replication keeps each Revision at its desired number of pods:
// it recreates deleted pods, replaces failed ones and scales up and down.
// The decision is the pure function Plan; Controller applies it.
package replication

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

// PlanResult is what must change for a revision to have its pods.
type PlanResult struct {
	Create int      // pods to create
	Delete []string // pods to delete, in this order
	Status api.RevisionStatus
}

// Plan decides how to bring pods to rev.Spec.Replicas. Failed and
// succeeded pods are replaced. On scale-down, pods that are not ready go
// first, then the newest, so the longest-serving ready pods stay.
func Plan(rev *api.Revision, pods []*api.Pod) PlanResult {
	var res PlanResult
	var live []*api.Pod
	for _, p := range pods {
		switch p.Status.Phase {
		case api.PodFailed, api.PodSucceeded:
			res.Delete = append(res.Delete, p.Metadata.Name)
		default:
			live = append(live, p)
		}
	}
	want := int(rev.Spec.Replicas)
	switch {
	case len(live) < want:
		res.Create = want - len(live)
	case len(live) > want:
		sort.SliceStable(live, func(i, j int) bool {
			ri, rj := IsReady(live[i]), IsReady(live[j])
			if ri != rj {
				return !ri
			}
			return live[i].Metadata.CreationTimestamp.After(live[j].Metadata.CreationTimestamp)
		})
		for _, p := range live[:len(live)-want] {
			res.Delete = append(res.Delete, p.Metadata.Name)
		}
		live = live[len(live)-want:]
	}
	res.Status = rev.Status
	res.Status.ObservedGeneration = rev.Metadata.Generation
	res.Status.Replicas = int32(len(live))
	res.Status.ReadyReplicas = 0
	for _, p := range live {
		if IsReady(p) {
			res.Status.ReadyReplicas++
		}
	}
	res.Status.AvailableReplicas = res.Status.ReadyReplicas
	return res
}

// IsReady reports whether the pod's Ready condition is True.
func IsReady(p *api.Pod) bool {
	c := api.FindCondition(p.Status.Conditions, api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

// NewPod returns a pod of rev named <revision>-<5 random chars>.
func NewPod(rev *api.Revision) *api.Pod {
	labels := map[string]string{}
	for k, v := range rev.Spec.Template.Metadata.Labels {
		labels[k] = v
	}
	labels[api.LabelApp] = rev.Spec.App
	labels[api.LabelRevision] = strconv.FormatInt(rev.Spec.Number, 10)
	return &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Pod"},
		Metadata: api.ObjectMeta{
			Name:        rev.Metadata.Name + "-" + randomSuffix(),
			Project:     rev.Metadata.Project,
			Labels:      labels,
			Annotations: rev.Spec.Template.Metadata.Annotations,
		},
		Spec: api.PodSpec{
			App:                           rev.Spec.App,
			Revision:                      rev.Spec.Number,
			Containers:                    rev.Spec.Template.Containers,
			Volumes:                       rev.Spec.Template.Volumes,
			TerminationGracePeriodSeconds: rev.Spec.Template.TerminationGracePeriodSeconds,
		},
	}
}

// Kubernetes' alphabet for generated names: no vowels, no look-alikes.
const suffixAlphabet = "bcdfghjklmnpqrstvwxz2456789"

func randomSuffix() string {
	var b [5]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = suffixAlphabet[int(b[i])%len(suffixAlphabet)]
	}
	return string(b[:])
}

var (
	revisionKind, _ = api.LookupKind("Revision")
	podKind, _      = api.LookupKind("Pod")
)

// Controller reconciles Revisions into Pods.
type Controller struct {
	Reg    *registry.Registry
	Events *events.Recorder
	Log    *slog.Logger
}

// Run watches Revisions and Pods until ctx ends.
func (c *Controller) Run(ctx context.Context, q *controller.Queue[controller.Key]) {
	go controller.WatchKind(ctx, c.Reg, revisionKind, c.Log, func(ev registry.WatchEvent) {
		q.Add(controller.KeyOf(ev.Object))
	})
	go controller.WatchKind(ctx, c.Reg, podKind, c.Log, func(ev registry.WatchEvent) {
		p := ev.Object.(*api.Pod)
		if p.Spec.App != "" {
			q.Add(controller.Key{Project: p.Metadata.Project, Name: p.Spec.App + "-" + strconv.FormatInt(p.Spec.Revision, 10)})
		}
	})
	controller.Loop(ctx, q, c, 2, func(k controller.Key, err error) {
		c.Log.Warn("revision reconcile failed", "revision", k.String(), "err", err)
	})
}

// Reconcile implements controller.Reconciler.
func (c *Controller) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := c.Reg.Get(ctx, revisionKind, key.Project, key.Name)
	notFound := api.IsNotFound(err)
	if err != nil && !notFound {
		return controller.Result{}, err
	}
	pods, err := c.pods(ctx, key)
	if err != nil {
		return controller.Result{}, err
	}
	if notFound { // the revision is gone: so are its pods
		for _, p := range pods {
			if err := c.deletePod(ctx, p.Metadata.Project, p.Metadata.Name); err != nil {
				return controller.Result{}, err
			}
		}
		return controller.Result{}, nil
	}
	rev := obj.(*api.Revision)
	plan := Plan(rev, pods)
	for range plan.Create {
		pod, err := c.Reg.Create(ctx, NewPod(rev))
		if err != nil {
			return controller.Result{}, err
		}
		c.Events.Record(ctx, rev, api.EventNormal, "SuccessfulCreate", "created pod "+pod.GetMeta().Name)
	}
	for _, name := range plan.Delete {
		if err := c.deletePod(ctx, key.Project, name); err != nil {
			return controller.Result{}, err
		}
		c.Events.Record(ctx, rev, api.EventNormal, "SuccessfulDelete", "deleted pod "+name)
	}
	if !reflect.DeepEqual(plan.Status, rev.Status) {
		rev.Status = plan.Status
		if _, err := c.Reg.UpdateStatus(ctx, rev); err != nil && !api.IsNotFound(err) {
			return controller.Result{}, err
		}
	}
	return controller.Result{}, nil
}

func (c *Controller) deletePod(ctx context.Context, project, name string) error {
	_, err := c.Reg.Delete(ctx, podKind, project, name, registry.DeleteOptions{})
	if err != nil && !api.IsNotFound(err) {
		return fmt.Errorf("deleting pod %s: %w", name, err)
	}
	return nil
}

// pods lists the pods of the revision named by key (<app>-<n>).
func (c *Controller) pods(ctx context.Context, key controller.Key) ([]*api.Pod, error) {
	app, n, ok := splitRevisionName(key.Name)
	if !ok {
		return nil, nil
	}
	sel := api.LabelApp + "=" + app + "," + api.LabelRevision + "=" + strconv.FormatInt(n, 10)
	objs, _, err := c.Reg.List(ctx, podKind, key.Project, registry.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, err
	}
	pods := make([]*api.Pod, 0, len(objs))
	for _, o := range objs {
		// A hook's pod names its revision but is not one of its replicas.
		if p := o.(*api.Pod); p.Spec.App == app && p.Spec.Revision == n && !api.IsHookPod(p) {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

func splitRevisionName(name string) (string, int64, bool) {
	for i := len(name) - 1; i > 0; i-- {
		if name[i] == '-' {
			n, err := strconv.ParseInt(name[i+1:], 10, 64)
			return name[:i], n, err == nil && n > 0
		}
	}
	return "", 0, false
}

package services

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/registry"
)

// DefaultResync is how often every service is reconciled though nothing
// changed. Watches replay current objects after they break, but not the
// deletions they missed; the resync bounds how long such a miss can last.
const DefaultResync = 5 * time.Minute

var (
	serviceKind   = mustKind("Service")
	podKind       = mustKind("Pod")
	endpointsKind = mustKind("Endpoints")
)

func mustKind(name string) api.KindInfo {
	k, ok := api.LookupKind(name)
	if !ok {
		panic("services: no kind " + name)
	}
	return k
}

// Controller allocates service VIPs and writes Endpoints. Set the exported
// fields, then call Run once.
type Controller struct {
	Reg *registry.Registry
	Log *slog.Logger
	// Clock drives retry back-off; clock.Real when nil.
	Clock clock.Clock
	// Workers reconcile services concurrently (2 when 0).
	Workers int
	// VIPRange is where VIPs come from (DefaultVIPRange when invalid).
	VIPRange netip.Prefix
	// Resync is DefaultResync when 0.
	Resync time.Duration

	// allocMu serialises VIP allocation: two services reconciled at once
	// must not both take the first free address.
	allocMu sync.Mutex

	mu sync.Mutex
	// selectors holds each service's selector, to find the services a pod
	// change concerns without reading the store.
	selectors map[controller.Key]map[string]string
	// pods holds what of each pod an endpoint depends on, so that a status
	// write that changes none of it (a probe result) enqueues nothing, and
	// a label change enqueues the services the pod leaves as well.
	pods map[controller.Key]podState
}

type podState struct {
	labels      map[string]string
	fingerprint string
}

func (c *Controller) init() {
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if !c.VIPRange.IsValid() {
		c.VIPRange = DefaultVIPRange
	}
	if c.Resync <= 0 {
		c.Resync = DefaultResync
	}
	c.selectors = map[controller.Key]map[string]string{}
	c.pods = map[controller.Key]podState{}
}

// Run watches Services, Pods and Endpoints and reconciles services until
// ctx ends.
func (c *Controller) Run(ctx context.Context) {
	c.init()
	q := controller.NewQueue[controller.Key](c.Clock, controller.DefaultBackoff)
	var wg sync.WaitGroup
	watch := func(kind api.KindInfo, w controller.Watcher, fn func(registry.WatchEvent)) {
		wg.Go(func() { controller.WatchKind(ctx, w, kind, c.Log, fn) })
	}
	watch(serviceKind, c.Reg, func(ev registry.WatchEvent) { c.onService(q, ev) })
	// Every (re)start of the pod watch requeues every known service: a
	// pod deleted while the watch was broken is never replayed.
	watch(podKind, relistHook{c.Reg, func() { c.enqueueAll(q) }}, func(ev registry.WatchEvent) { c.onPod(q, ev) })
	// Endpoints are watched so that an orphan (its service deleted while
	// Slipway was down) is removed and a hand-edited one is rewritten.
	watch(endpointsKind, c.Reg, func(ev registry.WatchEvent) { q.Add(controller.KeyOf(ev.Object)) })
	controller.Loop(ctx, q, c, c.Workers, func(k controller.Key, err error) {
		c.Log.Warn("service reconcile failed", "service", k.String(), "err", err)
	})
	wg.Wait()
}

// relistHook calls onWatch each time a watch (re)starts from a fresh list.
type relistHook struct {
	controller.Watcher
	onWatch func()
}

func (h relistHook) Watch(ctx context.Context, kind api.KindInfo, project string, fromRV int64, selector string) (<-chan registry.WatchEvent, error) {
	ch, err := h.Watcher.Watch(ctx, kind, project, fromRV, selector)
	if err == nil {
		h.onWatch()
	}
	return ch, err
}

func (c *Controller) onService(q *controller.Queue[controller.Key], ev registry.WatchEvent) {
	k := controller.KeyOf(ev.Object)
	c.mu.Lock()
	if ev.Type == registry.Deleted {
		delete(c.selectors, k)
	} else {
		c.selectors[k] = ev.Object.(*api.Service).Spec.Selector
	}
	c.mu.Unlock()
	// Enqueued after the index is updated: a pod event racing with this one
	// either finds the service in the index or is seen by this reconcile.
	q.Add(k)
}

func (c *Controller) onPod(q *controller.Queue[controller.Key], ev registry.WatchEvent) {
	pod := ev.Object.(*api.Pod)
	k := controller.KeyOf(pod)
	now := podState{labels: pod.Metadata.Labels, fingerprint: fingerprint(pod)}
	c.mu.Lock()
	old, known := c.pods[k]
	if ev.Type == registry.Deleted {
		delete(c.pods, k)
	} else {
		c.pods[k] = now
	}
	var keys []controller.Key
	if ev.Type == registry.Deleted || !known || old.fingerprint != now.fingerprint || !maps.Equal(old.labels, now.labels) {
		for sk, sel := range c.selectors {
			if sk.Project == k.Project && (selects(sel, now.labels) || known && selects(sel, old.labels)) {
				keys = append(keys, sk)
			}
		}
	}
	c.mu.Unlock()
	for _, sk := range keys {
		q.Add(sk)
	}
}

func (c *Controller) enqueueAll(q *controller.Queue[controller.Key]) {
	c.mu.Lock()
	keys := make([]controller.Key, 0, len(c.selectors))
	for k := range c.selectors {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		q.Add(k)
	}
}

// fingerprint is everything of a pod ComputeEndpoints reads, labels aside.
func fingerprint(pod *api.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%t|%t|%d", pod.Status.PodIP, ready(pod), terminating(pod), pod.Spec.Revision)
	for _, ctr := range pod.Spec.Containers {
		for _, p := range ctr.Ports {
			b.WriteString("|" + p.Name + "=" + strconv.Itoa(int(p.Port)) + "/" + p.Protocol)
		}
	}
	return b.String()
}

// Reconcile implements controller.Reconciler: it gives the service a VIP
// if it has none and makes its Endpoints match the pods it selects.
func (c *Controller) Reconcile(ctx context.Context, key controller.Key) (controller.Result, error) {
	obj, err := c.Reg.Get(ctx, serviceKind, key.Project, key.Name)
	if api.IsNotFound(err) {
		return controller.Result{}, c.deleteEndpoints(ctx, key)
	}
	if err != nil {
		return controller.Result{}, err
	}
	svc := obj.(*api.Service)
	if svc, err = c.ensureVIP(ctx, svc); err != nil {
		return controller.Result{}, err
	}
	objs, _, err := c.Reg.List(ctx, podKind, key.Project, registry.ListOptions{LabelSelector: registry.FormatSelector(svc.Spec.Selector)})
	if err != nil {
		return controller.Result{}, err
	}
	pods := make([]*api.Pod, len(objs))
	for i, o := range objs {
		pods[i] = o.(*api.Pod)
	}
	if err := c.writeEndpoints(ctx, svc, ComputeEndpoints(svc, pods)); err != nil {
		return controller.Result{}, err
	}
	return controller.Result{RequeueAfter: c.Resync}, nil
}

// ensureVIP returns svc with a clusterIP of the range, allocating the
// first free one if it has none. A service keeps its address for life.
func (c *Controller) ensureVIP(ctx context.Context, svc *api.Service) (*api.Service, error) {
	if _, ok := validVIP(c.VIPRange, svc.Status.ClusterIP); ok {
		return svc, nil
	}
	c.allocMu.Lock()
	defer c.allocMu.Unlock()
	all, _, err := c.Reg.List(ctx, serviceKind, "", registry.ListOptions{})
	if err != nil {
		return nil, err
	}
	used := map[netip.Addr]bool{}
	for _, o := range all {
		other := o.(*api.Service)
		if other.Metadata.Project == svc.Metadata.Project && other.Metadata.Name == svc.Metadata.Name {
			continue
		}
		if a, ok := validVIP(c.VIPRange, other.Status.ClusterIP); ok {
			used[a] = true
		}
	}
	ip, ok := firstFreeVIP(c.VIPRange, used)
	if !ok {
		return nil, api.Errorf(api.ReasonUnavailable, "no free virtual IP in %s for service %s/%s: %d services hold every address",
			c.VIPRange, svc.Metadata.Project, svc.Metadata.Name, len(used))
	}
	if old := svc.Status.ClusterIP; old != "" {
		c.Log.Warn("replacing a clusterIP outside the VIP range", "service", svc.Metadata.Project+"/"+svc.Metadata.Name, "clusterIP", old, "range", c.VIPRange)
	}
	svc.Status.ClusterIP = ip.String()
	// A conflict (the service changed since it was read) returns an error:
	// the key is retried on a fresh read, still under no VIP.
	out, err := c.Reg.UpdateStatus(ctx, svc)
	if err != nil {
		return nil, err
	}
	c.Log.Info("allocated service VIP", "service", svc.Metadata.Project+"/"+svc.Metadata.Name, "clusterIP", ip)
	return out.(*api.Service), nil
}

// writeEndpoints creates or updates the service's Endpoints when they
// differ from addrs (and its labels from the service's).
func (c *Controller) writeEndpoints(ctx context.Context, svc *api.Service, addrs []api.EndpointAddress) error {
	m := svc.Metadata
	obj, err := c.Reg.Get(ctx, endpointsKind, m.Project, m.Name)
	if api.IsNotFound(err) {
		ep := &api.Endpoints{Metadata: api.ObjectMeta{Name: m.Name, Project: m.Project, Labels: m.Labels}, Addresses: addrs}
		if _, err := c.Reg.Create(ctx, ep); err != nil {
			return err // AlreadyExists: a racing write; retried on a fresh read
		}
		c.Log.Debug("created endpoints", "service", m.Project+"/"+m.Name, "addresses", len(addrs))
		return nil
	}
	if err != nil {
		return err
	}
	ep := obj.(*api.Endpoints)
	if sameAddresses(ep.Addresses, addrs) && maps.Equal(ep.Metadata.Labels, m.Labels) {
		return nil
	}
	ep.Addresses = addrs
	ep.Metadata.Labels = m.Labels
	if _, err := c.Reg.Update(ctx, ep); err != nil {
		return err
	}
	c.Log.Debug("updated endpoints", "service", m.Project+"/"+m.Name, "addresses", len(addrs))
	return nil
}

func (c *Controller) deleteEndpoints(ctx context.Context, key controller.Key) error {
	_, err := c.Reg.Delete(ctx, endpointsKind, key.Project, key.Name, registry.DeleteOptions{})
	if err == nil {
		c.Log.Debug("deleted endpoints", "service", key.String())
	}
	if api.IsNotFound(err) {
		return nil
	}
	return err
}

// sameAddresses compares by serialised form, where nil and empty agree.
func sameAddresses(a, b []api.EndpointAddress) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

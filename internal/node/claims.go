package node

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
)

// defaultClaimSync is how often claims are measured even when nothing
// changed (usage grows without events).
const defaultClaimSync = 10 * time.Second

// runClaims keeps the claims of this machine: it provisions each claim's
// storage (Pending → Bound; Lost when it vanished), measures its usage
// into status (VolumeFull when over its request, which the runtime's
// filesystem does not enforce), lists the pods that mount it, and
// finishes the deletion of a claim marked for deletion once no pod
// mounts it — neither in the store nor still running here — removing
// its data. It is the node's, since only the node sees the storage and
// the pods still stopping after their records went.
func (a *Agent) runClaims(ctx context.Context) {
	vd, ok := a.opts.Driver.(runtime.VolumeDriver)
	if !ok {
		return
	}
	kick, poke := a.claimsKick, a.kickClaims
	gone := map[string]bool{} // project/name of deleted claims whose data is left
	goneCh := make(chan string, 64)
	go controller.WatchKind(ctx, a.opts.Reg, claimKind, a.log, func(ev registry.WatchEvent) {
		m := ev.Object.GetMeta()
		if ev.Type == registry.Deleted {
			select {
			case goneCh <- m.Project + "/" + m.Name:
			case <-ctx.Done():
			}
		} else {
			a.wakeMounting(m.Project, func(s *api.PodSpec) bool { return slices.Contains(api.ClaimNames(s.Volumes), m.Name) })
		}
		poke()
	})
	go controller.WatchKind(ctx, a.opts.Reg, podKind, a.log, func(ev registry.WatchEvent) {
		if ev.Type != registry.Modified { // pods come and go; status writes change nothing here
			poke()
		}
	})
	t := clock.NewTicker(a.opts.Clock, a.opts.ClaimSyncInterval)
	defer t.Stop()
	a.syncClaims(ctx, vd, gone)
	for {
		select {
		case <-ctx.Done():
			return
		case k := <-goneCh:
			gone[k] = true
		case <-kick:
		case <-t.C:
		}
		a.syncClaims(ctx, vd, gone)
	}
}

func (a *Agent) kickClaims() {
	select {
	case a.claimsKick <- struct{}{}:
	default:
	}
}

// wakeMounting wakes the workers of the project's pods whose spec matches
// (a pod waiting for a volume retries at once).
func (a *Agent) wakeMounting(project string, match func(*api.PodSpec) bool) {
	a.mu.Lock()
	var ws []*podWorker
	for _, w := range a.workers {
		if w.project == project && match(w.spec) {
			ws = append(ws, w)
		}
	}
	a.mu.Unlock()
	for _, w := range ws {
		w.send(workerEvent{wake: true})
	}
}

// mounting lists, by project/claim, the pods that mount a claim: those in
// the store and those still running here.
func (a *Agent) mounting(pods []api.Object) map[string][]string {
	out := map[string][]string{}
	add := func(project, pod string, spec *api.PodSpec) {
		for _, c := range api.ClaimNames(spec.Volumes) {
			k := project + "/" + c
			if !slices.Contains(out[k], pod) {
				out[k] = append(out[k], pod)
			}
		}
	}
	for _, o := range pods {
		p := o.(*api.Pod)
		add(p.Metadata.Project, p.Metadata.Name, &p.Spec)
	}
	a.mu.Lock()
	for _, w := range a.workers {
		add(w.project, w.podName, w.spec)
	}
	a.mu.Unlock()
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}

func (a *Agent) syncClaims(ctx context.Context, vd runtime.VolumeDriver, gone map[string]bool) {
	objs, _, err := a.opts.Reg.List(ctx, claimKind, "", registry.ListOptions{})
	if err != nil {
		return
	}
	pods, _, err := a.opts.Reg.List(ctx, podKind, "", registry.ListOptions{})
	if err != nil {
		return
	}
	users := a.mounting(pods)
	for _, o := range objs {
		c := o.(*api.PersistentVolumeClaim)
		k := c.Metadata.Project + "/" + c.Metadata.Name
		delete(gone, k) // a claim created again under the name keeps the data
		if c.Metadata.DeletionTimestamp != nil && len(users[k]) == 0 {
			a.finishDelete(ctx, vd, c)
			continue
		}
		a.claimStatus(ctx, vd, c, users[k])
	}
	a.measureEmptyDirs(ctx, vd)
	for k := range gone {
		if len(users[k]) > 0 {
			continue
		}
		project, name, _ := cutKey(k)
		if err := vd.RemoveClaim(ctx, project, name); err != nil {
			a.log.Warn("removing the data of a deleted claim failed", "claim", k, "err", err)
			continue
		}
		a.log.Info("removed the data of a deleted claim", "claim", k)
		delete(gone, k)
	}
}

func cutKey(k string) (project, name string, ok bool) {
	for i := range k {
		if k[i] == '/' {
			return k[:i], k[i+1:], true
		}
	}
	return "", k, false
}

func (a *Agent) finishDelete(ctx context.Context, vd runtime.VolumeDriver, c *api.PersistentVolumeClaim) {
	if err := vd.RemoveClaim(ctx, c.Metadata.Project, c.Metadata.Name); err != nil {
		a.log.Warn("removing the data of a claim being deleted failed", "claim", c.Metadata.Name, "err", err)
		return
	}
	if _, err := a.opts.Reg.Delete(ctx, claimKind, c.Metadata.Project, c.Metadata.Name, registry.DeleteOptions{}); err != nil && !api.IsNotFound(err) {
		a.log.Warn("deleting a claim no pod mounts any more failed", "claim", c.Metadata.Name, "err", err)
		return
	}
	a.opts.Events.Record(ctx, c, api.EventNormal, "Deleted", "no pod mounts it any more: the claim and its data are deleted")
}

func (a *Agent) claimStatus(ctx context.Context, vd runtime.VolumeDriver, c *api.PersistentVolumeClaim, users []string) {
	now := a.opts.Clock.Now()
	st := c.Status
	st.AccessModes = c.Spec.AccessModes
	st.MountedBy = users
	req := c.Spec.Resources.Requests[api.ResourceStorage]
	if st.Phase == "" || st.Phase == api.ClaimPending {
		if err := vd.EnsureClaim(ctx, c.Metadata.Project, c.Metadata.Name); err != nil {
			st.Phase = api.ClaimPending
			a.opts.Events.Record(ctx, c, api.EventWarning, "ProvisioningFailed", err.Error())
		} else {
			st.Phase = api.ClaimBound
			st.Capacity = api.ResourceList{api.ResourceStorage: req}
			a.opts.Events.Record(ctx, c, api.EventNormal, "Provisioned", fmt.Sprintf("storage of %s on the %s runtime", req, a.opts.Driver.Name()))
		}
	}
	if st.Phase == api.ClaimBound {
		st.Capacity = api.ResourceList{api.ResourceStorage: req} // a claim may grow
		used, err := vd.ClaimUsage(ctx, c.Metadata.Project, c.Metadata.Name)
		switch {
		case errors.Is(err, runtime.ErrNotFound):
			st.Phase = api.ClaimLost
			a.opts.Events.Record(ctx, c, api.EventWarning, "ClaimLost", "its storage is gone from this machine: "+err.Error())
		case err != nil:
			a.log.Warn("measuring a claim failed", "claim", c.Metadata.Name, "err", err)
		default:
			if st.Used == nil || *st.Used != used {
				st.Used, st.MeasuredAt = &used, now
			}
			size, _ := req.Value()
			full := api.Condition{Type: api.ConditionVolumeFull, Status: api.ConditionFalse}
			if size > 0 && used > size {
				full = api.Condition{Type: api.ConditionVolumeFull, Status: api.ConditionTrue, Reason: "OverRequest",
					Message: fmt.Sprintf("uses %s bytes, more than its request of %s (%d bytes): the %s runtime measures claims, it cannot enforce their size", strconv.FormatInt(used, 10), req, size, a.opts.Driver.Name())}
				if old := api.FindCondition(st.Conditions, api.ConditionVolumeFull); old == nil || old.Status != api.ConditionTrue {
					a.opts.Events.Record(ctx, c, api.EventWarning, api.ConditionVolumeFull, full.Message)
				}
			}
			st.Conditions = api.SetCondition(slices.Clone(st.Conditions), full, now)
		}
	}
	if reflect.DeepEqual(st, c.Status) {
		return
	}
	c.Status = st
	if _, err := a.opts.Reg.UpdateStatus(ctx, c); err != nil && !api.IsConflict(err) && !api.IsNotFound(err) {
		a.log.Warn("writing claim status failed", "claim", c.Metadata.Name, "err", err)
	}
}

// measureEmptyDirs compares the usage of the pods' emptyDirs on disk with
// their sizeLimit, which no runtime enforces there (a Memory one is a
// tmpfs of that size), and tells each pod's worker the VolumeFull
// condition when it changes.
func (a *Agent) measureEmptyDirs(ctx context.Context, vd runtime.VolumeDriver) {
	a.mu.Lock()
	ws := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	for _, w := range ws {
		var over []string
		measured := false
		for _, v := range w.spec.Volumes {
			e := v.EmptyDir
			if e == nil || e.Medium == api.MediumMemory || e.SizeLimit == "" {
				continue
			}
			limit, _ := e.SizeLimit.Value()
			used, err := vd.EmptyDirUsage(ctx, w.uid(), v.Name)
			if err != nil {
				continue // no sandbox yet, or gone
			}
			measured = true
			if used > limit {
				over = append(over, fmt.Sprintf("emptyDir %s uses %d bytes, more than its sizeLimit %s", v.Name, used, e.SizeLimit))
			}
		}
		if !measured {
			continue
		}
		c := api.Condition{Type: api.ConditionVolumeFull, Status: api.ConditionFalse}
		if len(over) > 0 {
			c = api.Condition{Type: api.ConditionVolumeFull, Status: api.ConditionTrue, Reason: "OverSizeLimit",
				Message: strings.Join(over, "; ") + " (measured: the " + a.opts.Driver.Name() + " runtime does not enforce it on disk)"}
		}
		if last := w.lastFull.Load(); last == nil || *last != c {
			w.lastFull.Store(&c)
			w.send(workerEvent{full: &c})
		}
	}
}

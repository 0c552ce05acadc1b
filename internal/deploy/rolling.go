package deploy

import (
	"time"

	"slipway.dev/slipway/internal/api"
)

// What a strategy may rely on about a revision, given that its status lags
// its spec: the replication controller reports pods after it acted.

// podsAtMost bounds the pods a revision has or is about to have: its spec
// (pods being created) or its last report (pods not yet deleted).
func podsAtMost(r *api.Revision) int32 { return max(r.Spec.Replicas, r.Status.Replicas) }

// availableAtLeast bounds the available pods a revision keeps: the
// replication controller removes pods that are not ready first, so scaling
// down to spec leaves min(available, spec) of them.
func availableAtLeast(r *api.Revision) int32 { return min(r.Status.AvailableReplicas, r.Spec.Replicas) }

// observed reports whether the revision's status was written for its
// current spec. Before that, pods created for an earlier, larger spec may
// exist that no count shows.
func observed(r *api.Revision) bool { return r.Status.ObservedGeneration >= r.Metadata.Generation }

// rollingBounds resolves maxSurge (rounded up) and maxUnavailable (rounded
// down) against replicas. Like Kubernetes, when both come to 0 (e.g. 25%
// unavailable of 1 replica) one pod may be unavailable, or nothing could move.
func rollingBounds(s *api.RollingStrategy, replicas int32) (surge, unavailable int32) {
	surgeV, unavailV := api.FromString(api.DefaultMaxSurge), api.FromInt(0)
	if s != nil && s.MaxSurge != nil {
		surgeV = *s.MaxSurge
	}
	if s != nil && s.MaxUnavailable != nil {
		unavailV = *s.MaxUnavailable
	}
	// Validation refuses values Percent cannot read; 0 is the safe reading.
	surge, _ = surgeV.Percent(replicas, true)
	unavailable, _ = unavailV.Percent(replicas, false)
	surge, unavailable = max(surge, 0), min(max(unavailable, 0), replicas)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// planRolling returns the replicas each revision should have next under a
// rolling update toward next, with Kubernetes Deployment semantics: pods of
// all revisions never exceed replicas+surge, available pods never drop
// below replicas-unavailable, and olds (oldest first) shrink only as pods
// become available.
//
// Available is the revisions' availableReplicas; with minReadySeconds the
// controller lowers it to the pods ready for that long (AvailablePods).
//
// Once the App has had a stable revision, pods that were not ready at the
// last report are only removed while the reported ready pods meet the
// minimum: a report may lag pods that became ready since, and removing them
// then could take capacity below it. Before that, there is no capacity to
// protect and removing them is what lets a fix replace a broken first
// version.
func planRolling(next *api.Revision, olds []*api.Revision, replicas, surge, unavailable int32, hadStable bool) map[string]int32 {
	want := map[string]int32{next.Metadata.Name: next.Spec.Replicas}
	allObserved := observed(next)
	oldPods := false
	for _, o := range olds {
		want[o.Metadata.Name] = o.Spec.Replicas
		allObserved = allObserved && observed(o)
		oldPods = oldPods || podsAtMost(o) > 0 || !observed(o)
	}
	if !oldPods { // nothing to replace: a plain scale
		want[next.Metadata.Name] = replicas
		return want
	}

	// Scale the new revision up as far as the surge allows, counting only
	// pods whose existence is known.
	newWant := min(next.Spec.Replicas, replicas)
	if allObserved {
		total := podsAtMost(next)
		for _, o := range olds {
			total += podsAtMost(o)
		}
		if up := min(replicas+surge-total, replicas-newWant); up > 0 {
			newWant += up
		}
	}
	want[next.Metadata.Name] = newWant

	// Scale old revisions down. First drop their pods that are not
	// available, as long as the pods left could still reach the minimum...
	minAvailable := replicas - unavailable
	newAvail := min(next.Status.AvailableReplicas, newWant)
	budget := newAvail - minAvailable
	reported := newAvail
	for _, o := range olds {
		budget += o.Spec.Replicas
		reported += availableAtLeast(o)
	}
	if hadStable && reported < minAvailable {
		budget = 0
	}
	for _, o := range olds {
		if budget <= 0 {
			break
		}
		n := min(o.Spec.Replicas-availableAtLeast(o), budget)
		want[o.Metadata.Name] -= n
		budget -= n
	}
	// ...then available ones, as far as available pods exceed the minimum.
	avail := newAvail
	for _, o := range olds {
		avail += min(o.Status.AvailableReplicas, want[o.Metadata.Name])
	}
	excess := avail - minAvailable
	for _, o := range olds {
		if excess <= 0 {
			break
		}
		n := min(want[o.Metadata.Name], excess)
		want[o.Metadata.Name] -= n
		excess -= n
	}
	return want
}

// planRecreate scales every old revision to 0 and the new one up only once
// the replication controller reports their pods gone, so no new pod is
// created while an old one is in service. "Gone" is as the store sees it:
// the registry removes a pod's record at once and the node then drains and
// stops its process, so an old process may still finish in-flight requests
// while the first new pods start.
func planRecreate(next *api.Revision, olds []*api.Revision, replicas int32) map[string]int32 {
	want := map[string]int32{next.Metadata.Name: replicas}
	for _, o := range olds {
		want[o.Metadata.Name] = 0
		if o.Spec.Replicas != 0 || o.Status.Replicas != 0 || !observed(o) {
			want[next.Metadata.Name] = 0
		}
	}
	return want
}

// minReady is how long a new pod must have been ready to count as
// available: the rolling strategy's minReadySeconds, else the App's.
func minReady(app *api.App) time.Duration {
	s := app.Spec.MinReadySeconds
	if r := app.Spec.Strategy.Rolling; r != nil && r.MinReadySeconds > 0 {
		s = r.MinReadySeconds
	}
	return time.Duration(s) * time.Second
}

// AvailablePods counts, per revision number, the pods that have been ready
// for at least minReady at now, and says how long until the next ready pod
// becomes available (0 if none is waiting). A ready pod without a
// transition time counts as available: nothing says it is new.
func AvailablePods(pods []*api.Pod, minReady time.Duration, now time.Time) (map[int64]int32, time.Duration) {
	out := map[int64]int32{}
	var wait time.Duration
	for _, p := range pods {
		c := api.FindCondition(p.Status.Conditions, api.PodReady)
		if c == nil || c.Status != api.ConditionTrue {
			continue
		}
		if left := c.LastTransitionTime.Add(minReady).Sub(now); !c.LastTransitionTime.IsZero() && left > 0 {
			if wait == 0 || left < wait {
				wait = left
			}
			continue
		}
		out[p.Spec.Revision]++
	}
	return out, wait
}

// withAvailable returns copies of revs whose available counts are lowered
// to what AvailablePods found: the replication controller reports ready
// pods as available, not knowing minReadySeconds.
func withAvailable(revs []*api.Revision, avail map[int64]int32) []*api.Revision {
	out := make([]*api.Revision, len(revs))
	for i, r := range revs {
		c := *r
		c.Status.AvailableReplicas = min(c.Status.AvailableReplicas, avail[r.Spec.Number])
		out[i] = &c
	}
	return out
}

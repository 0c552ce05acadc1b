package deploy

import (
	"fmt"
	"slices"
	"time"

	"slipway.dev/slipway/internal/api"
)

// finalReport recounts the report of an ended rollout once the revisions
// it left have no pod: requests in flight when it ended, or sent before
// the router applied the last split, are counted too.
func (d *decision) finalReport() {
	ro := d.ro
	if ro.Report == nil || ro.Report.Final || ro.From == 0 || d.inProgress() || d.now.IsZero() {
		return
	}
	serving := ro.From
	if ro.State == api.RolloutCompleted {
		serving = ro.Revision
	}
	for _, r := range d.byNum {
		if r.Spec.Number != serving && (d.want[r.Metadata.Name] != 0 || r.Spec.Replicas != 0 || r.Status.Replicas != 0 || !observed(r)) {
			return
		}
	}
	// Pod records go before their processes: the router may still apply
	// the last split and finish requests already sent. Wait a moment,
	// then until none is in flight.
	if ro.DrainedAt.IsZero() {
		ro.DrainedAt = d.now
	}
	if at := ro.DrainedAt.Add(drainSettle); d.now.Before(at) {
		d.wake(at.Sub(d.now))
		return
	}
	for n, m := range d.obs.Metrics {
		if n != serving && m.InFlight > 0 && d.now.Before(ro.DrainedAt.Add(drainLimit)) {
			d.wake(drainSettle)
			return
		}
	}
	ro.Report = d.report()
	ro.Report.Final = true
}

// drainSettle is how long after the revisions a rollout left lost their
// pods its report is recounted; drainLimit bounds the wait for their last
// requests in flight.
const (
	drainSettle = time.Second
	drainLimit  = time.Minute
)

// trackReadiness keeps the longest time during a rollout when no pod of
// the App was ready (Recreate's gap): it opens when the revisions report
// no ready pod and closes at the first ready transition seen after it.
func (d *decision) trackReadiness() {
	ro := d.ro
	if ro.From == 0 || !ro.EndedAt.IsZero() && ro.NoReadySince.IsZero() || d.now.IsZero() {
		return
	}
	var ready int32
	for _, r := range d.byNum {
		ready += r.Status.ReadyReplicas
	}
	switch {
	case ready == 0 && ro.NoReadySince.IsZero():
		ro.NoReadySince = d.now
	case ready > 0 && !ro.NoReadySince.IsZero():
		end := d.now
		for _, p := range d.obs.Pods {
			if c := api.FindCondition(p.Status.Conditions, api.PodReady); c != nil && c.Status == api.ConditionTrue &&
				!c.LastTransitionTime.Before(ro.NoReadySince) && c.LastTransitionTime.Before(end) {
				end = c.LastTransitionTime
			}
		}
		ro.LongestNoReadyMillis = max(ro.LongestNoReadyMillis, end.Sub(ro.NoReadySince).Milliseconds())
		ro.NoReadySince = time.Time{}
		if ro.Report != nil {
			ro.Report.LongestNoReadyMillis = ro.LongestNoReadyMillis
		}
	}
}

// report is the zero-downtime report of the rollout at now: the router's
// counters since the baseline, per revision that served.
func (d *decision) report() *api.Report {
	ro := d.ro
	rep := &api.Report{Measured: d.obs.Metrics != nil, LongestNoReadyMillis: ro.LongestNoReadyMillis}
	if !ro.StartedAt.IsZero() && !ro.EndedAt.IsZero() {
		rep.DurationMillis = ro.EndedAt.Sub(ro.StartedAt).Milliseconds()
	}
	if !ro.NoReadySince.IsZero() {
		rep.LongestNoReadyMillis = max(rep.LongestNoReadyMillis, d.now.Sub(ro.NoReadySince).Milliseconds())
	}
	base := map[int64]api.RequestCounts{}
	for _, b := range ro.Baseline {
		base[b.Revision] = b
	}
	for _, n := range slices.Sorted(mapsKeys(d.obs.Metrics)) {
		w := d.obs.Metrics[n].since(base[n])
		if w.total() == 0 && w.UpstreamErrors == 0 {
			continue
		}
		rr := api.RevisionReport{Revision: n, Requests: w.total(), ServerErrors: w.Requests[5], Resets: w.Requests[0], UpstreamErrors: w.UpstreamErrors}
		rep.Revisions = append(rep.Revisions, rr)
		rep.Failed += rr.ServerErrors + rr.Resets
		rep.UpstreamErrors += rr.UpstreamErrors
	}
	if r := d.obs.Routes; r != nil {
		// The routes see every request, including those no revision
		// could take (the router's 503 while no pod is ready).
		w := r.since(base[0])
		rep.NoReadyPod = max(0, w.Requests[5]+w.Requests[0]-rep.Failed)
		rep.Failed += rep.NoReadyPod
	}
	return rep
}

func reportSummary(r *api.Report) string {
	if r == nil || !r.Measured {
		return ""
	}
	var served int64
	for _, rr := range r.Revisions {
		served += rr.Requests
	}
	return fmt.Sprintf(" (rollout took %s: %d requests, %d failed, longest time without a ready pod %s)",
		time.Duration(r.DurationMillis)*time.Millisecond, served, r.Failed, time.Duration(r.LongestNoReadyMillis)*time.Millisecond)
}

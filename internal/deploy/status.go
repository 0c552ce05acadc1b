package deploy

import (
	"fmt"
	"slices"
	"time"

	"slipway.dev/slipway/internal/api"
)

// status writes the App status from the decision.
func (d *decision) status(sorted []*api.Revision, held string) {
	st, ro, app := &d.st, d.ro, d.app
	st.ObservedGeneration = app.Metadata.Generation
	st.LatestRevision = d.active.Spec.Number
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0
	st.Revisions = nil
	st.Traffic = d.safeTraffic()
	weight := map[int64]int32{}
	for _, t := range st.Traffic {
		weight[t.Revision] = t.Weight
	}
	for _, r := range sorted {
		st.Replicas += r.Status.Replicas
		st.ReadyReplicas += r.Status.ReadyReplicas
		st.AvailableReplicas += r.Status.AvailableReplicas
		if w := d.want[r.Metadata.Name]; w > 0 || r.Status.Replicas > 0 || weight[r.Spec.Number] > 0 {
			st.Revisions = append(st.Revisions, api.RevisionState{Revision: r.Spec.Number, Desired: w, Replicas: r.Status.Replicas,
				Ready: r.Status.ReadyReplicas, Available: r.Status.AvailableReplicas, Weight: weight[r.Spec.Number]})
		}
	}
	st.PreviewRevision = 0
	if d.inProgress() {
		st.PreviewRevision = d.preview
	}
	progressing := api.Condition{Type: "Progressing", Status: api.ConditionTrue, Message: fmt.Sprintf("revision %d", d.active.Spec.Number)}
	cleanOthers := true
	for _, r := range sorted {
		if r != d.active && (d.want[r.Metadata.Name] != 0 || r.Status.Replicas != 0 || !observed(r)) {
			cleanOthers = false
		}
	}
	crash := d.crashLoop()
	switch {
	case held != "":
		st.Phase, st.Message = api.AppPaused, held
		progressing.Status, progressing.Reason = api.ConditionUnknown, "RolloutPaused"
	case ro.State == api.RolloutAborted:
		st.Phase, st.Message = api.AppDegraded, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionFalse, ro.Reason, ro.Message
	case ro.State == api.RolloutRolledBack:
		st.Phase, st.Message = api.AppHealthy, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionFalse, "RolledBack", ro.Message
	case ro.State == api.RolloutCompleted && d.want[d.active.Metadata.Name] == d.replicas && d.active.Spec.Replicas == d.replicas &&
		observed(d.active) && d.active.Status.AvailableReplicas >= d.replicas && (cleanOthers || ro.From != 0):
		// Old pods still draining after a rollout carry no traffic.
		st.Phase, st.Message = api.AppHealthy, ""
		progressing.Reason = "NewRevisionAvailable"
	case ro.State == api.RolloutPaused:
		st.Phase, st.Message = api.AppPaused, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionUnknown, ro.Reason, ro.Message
	case crash != "":
		st.Phase, st.Message = api.AppDegraded, crash
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionFalse, ReasonCrashLoopBackOff, crash
		if old := api.FindCondition(d.app.Status.Conditions, "Progressing"); old == nil || old.Reason != ReasonCrashLoopBackOff {
			d.event(api.EventWarning, ReasonCrashLoopBackOff, crash)
		}
	default:
		st.Phase = api.AppProgressing
		st.Message = fmt.Sprintf("revision %d: %d of %d pods ready", d.active.Spec.Number, d.active.Status.ReadyReplicas, d.replicas)
		if d.strategyType() == api.StrategyCanary && ro.From != 0 && ro.State == api.RolloutProgressing {
			st.Message += fmt.Sprintf(", step %d, canary weight %d%%", d.step(), ro.CanaryWeight)
		}
		for _, h := range ro.Hooks {
			if !h.Done {
				st.Message += fmt.Sprintf("; waiting for the %s hook (attempt %d, %s)", h.Hook, h.Attempt, h.Phase)
				break
			}
		}
		progressing.Reason = "RevisionProgressing"
		if d.p.Create != nil {
			progressing.Reason = "NewRevisionCreated"
		}
	}
	st.Conditions = setConditionAt(st.Conditions, progressing, d.now)
}

// safeTraffic drops weight given to a revision without a ready pod,
// spreading it over the others in proportion; with nothing left, traffic
// follows ready pods (the active revision's when none is ready).
func (d *decision) safeTraffic() []api.TrafficTarget {
	var out []api.TrafficTarget
	var kept int32
	for _, t := range d.traffic {
		if r := d.byNum[t.Revision]; r != nil && r.Status.ReadyReplicas > 0 && t.Weight > 0 {
			out = append(out, t)
			kept += t.Weight
		}
	}
	if kept == 0 {
		// Ready pods of the revisions kept first; those on their way
		// out only when nothing else is ready.
		var keep []*api.Revision
		for _, r := range d.others() {
			if d.want[r.Metadata.Name] > 0 {
				keep = append(keep, r)
			}
		}
		if out := byReady(keep); out != nil {
			return out
		}
		return byReady(d.others())
	}
	if kept != 100 {
		left := int32(100)
		for i := range out {
			out[i].Weight = out[i].Weight * 100 / kept
			left -= out[i].Weight
		}
		out[0].Weight += left
	}
	return out
}

// setConditionAt is setCondition stamping a changed condition with now.
func setConditionAt(conds []api.Condition, c api.Condition, now time.Time) []api.Condition {
	if old := api.FindCondition(conds, c.Type); old == nil || old.Status != c.Status {
		c.LastTransitionTime = now
	}
	return setCondition(conds, c)
}

// cloneStatus deep-copies a status, so a decision never mutates the App
// it was given.
func cloneStatus(s api.AppStatus) api.AppStatus {
	out := s
	out.Traffic = slices.Clone(s.Traffic)
	out.Conditions = slices.Clone(s.Conditions)
	out.Revisions = slices.Clone(s.Revisions)
	if s.CurrentStep != nil {
		out.CurrentStep = new(*s.CurrentStep)
	}
	if s.Rollout != nil {
		ro := *s.Rollout
		ro.Analysis = slices.Clone(ro.Analysis)
		for i := range ro.Analysis {
			r := &ro.Analysis[i]
			r.Results = slices.Clone(r.Results)
			r.Last.Latency = slices.Clone(r.Last.Latency)
		}
		ro.Baseline = slices.Clone(ro.Baseline)
		for i := range ro.Baseline {
			ro.Baseline[i].Latency = slices.Clone(ro.Baseline[i].Latency)
		}
		ro.Hooks = slices.Clone(ro.Hooks)
		if ro.Report != nil {
			rep := *ro.Report
			rep.Revisions = slices.Clone(rep.Revisions)
			ro.Report = &rep
		}
		out.Rollout = &ro
	}
	return out
}

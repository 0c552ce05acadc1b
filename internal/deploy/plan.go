// Package deploy turns Apps into Revisions: every change to an App's
// template becomes a new immutable Revision, and a strategy sets how many
// pods each revision should have. Decisions are pure functions of the App,
// its observed revisions and the time; Controller applies them.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"slipway.dev/slipway/internal/api"
)

// TemplateHash identifies a pod template: equal templates, equal hashes.
func TemplateHash(t api.PodTemplate) string {
	b, _ := json.Marshal(t) // a struct of plain fields cannot fail to encode
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])[:16]
}

// RevisionName is "<app>-<n>".
func RevisionName(app string, n int64) string { return app + "-" + strconv.FormatInt(n, 10) }

// Plan is what the controller must do to move an App toward its spec.
type Plan struct {
	// Create is a new revision to write (nil if none).
	Create *api.Revision
	// Scale sets spec.replicas of existing revisions, by name.
	Scale map[string]int32
	// Delete lists revisions beyond the history limit.
	Delete []string
	// Status is the App status to write.
	Status api.AppStatus
	// Events to record on the App.
	Events []Event
}

// Event is an event the plan wants recorded.
type Event struct {
	Type, Reason, Message string
}

// PlanApp decides the revisions of app given the revisions that exist.
//
// A template change creates revision n+1; the App's strategy then moves
// pods to it one decision at a time, each call taking the next step from
// what the revisions report: Rolling (the default, and for now also
// BlueGreen and Canary) surges new pods and retires old ones as new ones
// become ready; Recreate retires every old pod before starting new ones.
// A change during a rollout supersedes it: the half-finished revision is
// just one more old revision. A replica change on a settled App scales its
// revision directly.
func PlanApp(app *api.App, revs []*api.Revision) Plan {
	sorted := append([]*api.Revision(nil), revs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Spec.Number < sorted[j].Spec.Number })
	replicas := int32(1)
	if app.Spec.Replicas != nil {
		replicas = *app.Spec.Replicas
	}
	hash := TemplateHash(app.Spec.Template)
	p := Plan{Scale: map[string]int32{}}

	var latest *api.Revision
	if n := len(sorted); n > 0 {
		latest = sorted[n-1]
	}
	var active *api.Revision
	switch {
	case latest != nil && latest.Spec.TemplateHash == hash:
		active = latest
	case app.Spec.Paused && latest != nil:
		active = latest // hold the change: paused apps keep their revision
	default:
		n := int64(1)
		if latest != nil {
			n = latest.Spec.Number + 1
		}
		// A template equal to an older revision's (an undo) still makes a
		// new revision, so history reads in order. Its size is the
		// strategy's first step, decided below.
		active = &api.Revision{
			TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Revision"},
			Metadata: api.ObjectMeta{
				Name:    RevisionName(app.Metadata.Name, n),
				Project: app.Metadata.Project,
				Labels:  map[string]string{api.LabelApp: app.Metadata.Name, api.LabelRevision: strconv.FormatInt(n, 10)},
			},
			Spec: api.RevisionSpec{App: app.Metadata.Name, Number: n, TemplateHash: hash, Template: app.Spec.Template},
		}
		p.Create = active
		p.Events = append(p.Events, Event{api.EventNormal, "RevisionCreated", fmt.Sprintf("created revision %d", n)})
	}

	var old []*api.Revision // oldest first
	for _, r := range sorted {
		if r != active {
			old = append(old, r)
		}
	}
	var want map[string]int32
	if app.Spec.Strategy.Type == api.StrategyRecreate {
		want = planRecreate(active, old, replicas)
	} else {
		surge, unavailable := rollingBounds(app.Spec.Strategy.Rolling, replicas)
		want = planRolling(active, old, replicas, surge, unavailable, app.Status.StableRevision != 0)
	}
	if p.Create != nil {
		p.Create.Spec.Replicas = want[active.Metadata.Name]
	}
	for _, r := range sorted {
		if w := want[r.Metadata.Name]; r.Spec.Replicas != w {
			p.Scale[r.Metadata.Name] = w
			p.Events = append(p.Events, Event{api.EventNormal, "ScalingRevision", fmt.Sprintf("scaled revision %d from %d to %d", r.Spec.Number, r.Spec.Replicas, w)})
		}
	}

	// History: keep the active revision and revisionHistoryLimit others,
	// deleting the oldest whose pods are gone.
	limit := 10
	if app.Spec.RevisionHistoryLimit != nil {
		limit = int(*app.Spec.RevisionHistoryLimit)
	}
	for i := 0; i < len(old)-limit; i++ {
		if o := old[i]; want[o.Metadata.Name] == 0 && o.Spec.Replicas == 0 && o.Status.Replicas == 0 && observed(o) {
			p.Delete = append(p.Delete, o.Metadata.Name)
		}
	}

	p.Status = appStatus(app, hash, active, old, replicas, p)
	return p
}

// appStatus reports the rollout from what the revisions report. Counts are
// totals over all revisions (as a Kubernetes Deployment's are): during a
// rollout they are the App's serving capacity.
func appStatus(app *api.App, hash string, active *api.Revision, old []*api.Revision, replicas int32, p Plan) api.AppStatus {
	st := app.Status
	st.ObservedGeneration = app.Metadata.Generation
	st.LatestRevision = active.Spec.Number
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = active.Status.Replicas, active.Status.ReadyReplicas, active.Status.AvailableReplicas
	oldGone := true
	for _, o := range old {
		st.Replicas += o.Status.Replicas
		st.ReadyReplicas += o.Status.ReadyReplicas
		st.AvailableReplicas += o.Status.AvailableReplicas
		oldGone = oldGone && o.Spec.Replicas == 0 && o.Status.Replicas == 0 && observed(o)
	}
	st.Traffic = trafficByReady(active, old)
	settled := p.Create == nil && len(p.Scale) == 0 && oldGone && observed(active) &&
		active.Status.Replicas == replicas && active.Status.ReadyReplicas == replicas && active.Status.AvailableReplicas == replicas
	progressing := api.Condition{Type: "Progressing", Status: api.ConditionTrue}
	switch {
	case app.Spec.Paused && p.Create == nil && active.Spec.TemplateHash != hash:
		st.Phase, st.Message = api.AppPaused, "template change held: spec.paused is true"
		progressing.Status, progressing.Reason = api.ConditionUnknown, "RolloutPaused"
	case settled:
		st.Phase, st.Message = api.AppHealthy, ""
		st.StableRevision = active.Spec.Number
		progressing.Reason = "NewRevisionAvailable"
	default:
		st.Phase = api.AppProgressing
		st.Message = fmt.Sprintf("revision %d: %d of %d pods ready", active.Spec.Number, active.Status.ReadyReplicas, replicas)
		progressing.Reason = "RevisionProgressing"
		if p.Create != nil {
			progressing.Reason = "NewRevisionCreated"
		}
	}
	progressing.Message = fmt.Sprintf("revision %d", active.Spec.Number)
	st.Conditions = setCondition(st.Conditions, progressing)
	return st
}

// trafficByReady splits traffic in percent by ready pods per revision
// (largest remainder, so weights sum to 100), as a service spreads
// requests over ready endpoints. With no ready pod anywhere, the share is
// the active revision's: it is the one coming up.
func trafficByReady(active *api.Revision, old []*api.Revision) []api.TrafficTarget {
	revs := append(append([]*api.Revision(nil), old...), active)
	var total int32
	for _, r := range revs {
		total += r.Status.ReadyReplicas
	}
	if total == 0 {
		return []api.TrafficTarget{{Revision: active.Spec.Number, Weight: 100}}
	}
	type share struct {
		i         int
		remainder int32
	}
	var out []api.TrafficTarget
	var rest []share
	left := int32(100)
	for _, r := range revs {
		if r.Status.ReadyReplicas == 0 {
			continue
		}
		w := 100 * r.Status.ReadyReplicas
		out = append(out, api.TrafficTarget{Revision: r.Spec.Number, Weight: w / total})
		rest = append(rest, share{len(out) - 1, w % total})
		left -= w / total
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].remainder > rest[j].remainder })
	for k := int32(0); k < left; k++ {
		out[rest[k].i].Weight++
	}
	return out
}

// setCondition replaces the condition of c's type, keeping its transition
// time while its status holds (there is no clock here to set a new one).
func setCondition(conds []api.Condition, c api.Condition) []api.Condition {
	out := make([]api.Condition, 0, len(conds)+1)
	found := false
	for _, x := range conds {
		if x.Type != c.Type {
			out = append(out, x)
			continue
		}
		if x.Status == c.Status {
			c.LastTransitionTime = x.LastTransitionTime
		}
		out, found = append(out, c), true
	}
	if !found {
		out = append(out, c)
	}
	return out
}

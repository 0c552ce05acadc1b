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
// Until the deployment strategies land, one revision is active: a template
// change creates revision n+1 at full size and scales every other revision
// to 0; the replication controller then replaces pods.
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
		// new revision, so history reads in order.
		active = &api.Revision{
			TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Revision"},
			Metadata: api.ObjectMeta{
				Name:    RevisionName(app.Metadata.Name, n),
				Project: app.Metadata.Project,
				Labels:  map[string]string{api.LabelApp: app.Metadata.Name, api.LabelRevision: strconv.FormatInt(n, 10)},
			},
			Spec: api.RevisionSpec{App: app.Metadata.Name, Number: n, TemplateHash: hash, Template: app.Spec.Template, Replicas: replicas},
		}
		p.Create = active
		p.Events = append(p.Events, Event{api.EventNormal, "RevisionCreated", fmt.Sprintf("created revision %d", n)})
	}

	for _, r := range sorted {
		want := int32(0)
		if r == active {
			want = replicas
		}
		if r.Spec.Replicas != want {
			p.Scale[r.Metadata.Name] = want
			p.Events = append(p.Events, Event{api.EventNormal, "ScalingRevision", fmt.Sprintf("scaled revision %d from %d to %d", r.Spec.Number, r.Spec.Replicas, want)})
		}
	}

	// History: keep the active revision and revisionHistoryLimit others,
	// deleting the oldest whose pods are gone.
	limit := 10
	if app.Spec.RevisionHistoryLimit != nil {
		limit = int(*app.Spec.RevisionHistoryLimit)
	}
	var old []*api.Revision
	for _, r := range sorted {
		if r != active {
			old = append(old, r)
		}
	}
	for i := 0; i < len(old)-limit; i++ {
		if old[i].Status.Replicas == 0 {
			p.Delete = append(p.Delete, old[i].Metadata.Name)
		}
	}

	// Status from what the revisions report.
	st := app.Status
	st.ObservedGeneration = app.Metadata.Generation
	st.LatestRevision = active.Spec.Number
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0
	for _, r := range sorted {
		st.Replicas += r.Status.Replicas
		if r == active {
			st.ReadyReplicas += r.Status.ReadyReplicas
			st.AvailableReplicas += r.Status.AvailableReplicas
		}
	}
	st.Traffic = []api.TrafficTarget{{Revision: active.Spec.Number, Weight: 100}}
	settled := p.Create == nil && len(p.Scale) == 0 && active.Status.ReadyReplicas == replicas && st.Replicas == replicas
	switch {
	case app.Spec.Paused && latest != nil && latest.Spec.TemplateHash != hash:
		st.Phase, st.Message = api.AppPaused, "template change held: spec.paused is true"
	case settled:
		st.Phase, st.Message = api.AppHealthy, ""
		st.StableRevision = active.Spec.Number
	default:
		st.Phase = api.AppProgressing
		st.Message = fmt.Sprintf("revision %d: %d of %d pods ready", active.Spec.Number, active.Status.ReadyReplicas, replicas)
	}
	p.Status = st
	return p
}

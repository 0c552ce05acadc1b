// Package deploy turns Apps into Revisions: every change to an App's
// template becomes a new immutable Revision, and a strategy sets how many
// pods each revision should have. Decisions are pure functions of the App,
// its observed revisions and the time; Controller applies them.
package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"time"

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
	// RequeueAfter is when to decide again though nothing changed: a
	// pause, an analysis interval, a scale-down delay or a deadline ends.
	RequeueAfter time.Duration
}

// Event is an event the plan wants recorded.
type Event struct {
	Type, Reason, Message string
}

// trafficByReady splits traffic in percent by ready pods per revision
// (largest remainder, so weights sum to 100), as a service spreads
// requests over ready endpoints. With no ready pod anywhere there is no
// split: no weight goes to a revision without a ready pod.
func trafficByReady(active *api.Revision, old []*api.Revision) []api.TrafficTarget {
	return byReady(append(append([]*api.Revision(nil), old...), active))
}

// byReady splits traffic over revs by their ready pods.
func byReady(revs []*api.Revision) []api.TrafficTarget {
	var total int32
	for _, r := range revs {
		total += r.Status.ReadyReplicas
	}
	if total == 0 {
		return nil // nothing to weigh; the router has no endpoint either
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

package view

import (
	"strings"

	"slipway.dev/slipway/internal/api"
)

// Condition returns the status and reason of an object's condition, found
// by type in any case; ok is false when the object has no such condition.
// An App's Available, which the deploy controller does not write, is
// derived as a Deployment's would read: True when the revision it serves
// has at least spec.replicas available pods.
func Condition(obj api.Object, typ string) (status, reason string, ok bool) {
	var conds []api.Condition
	switch o := obj.(type) {
	case *api.App:
		conds = o.Status.Conditions
		if strings.EqualFold(typ, "Available") && api.FindCondition(conds, "Available") == nil {
			return appAvailable(o)
		}
	case *api.Pod:
		conds = o.Status.Conditions
	case *api.Route:
		conds = o.Status.Conditions
	}
	for _, c := range conds {
		if strings.EqualFold(c.Type, typ) {
			return c.Status, c.Reason, true
		}
	}
	return "", "", false
}

func appAvailable(a *api.App) (string, string, bool) {
	if a.Status.ObservedGeneration < a.Metadata.Generation {
		return api.ConditionFalse, "ChangeNotObserved", true
	}
	want := valueOr(a.Spec.Replicas, 1)
	serving := ServingRevision(a)
	for _, r := range a.Status.Revisions {
		if r.Revision == serving && r.Available >= want {
			return api.ConditionTrue, "MinimumReplicasAvailable", true
		}
	}
	if want == 0 {
		return api.ConditionTrue, "MinimumReplicasAvailable", true
	}
	return api.ConditionFalse, "MinimumReplicasUnavailable", true
}

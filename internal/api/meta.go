// Package api is Slipway's vocabulary: the resource kinds users and
// controllers exchange, their defaults and the few error kinds every other
// package maps to. Their validation lives in package api/validation. It
// imports the standard library only.
package api

import "time"

// Version is the apiVersion every Slipway object carries.
const Version = "slipway.dev/v1"

// DefaultProject is the project an object lands in when its metadata names none.
const DefaultProject = "default"

// TypeMeta names the schema of an object. It is embedded so that apiVersion
// and kind sit at the top level of the JSON and YAML forms.
type TypeMeta struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind,omitempty"`
}

// ObjectMeta is the metadata every object has. Users write name, project,
// labels and annotations; the server owns the rest.
type ObjectMeta struct {
	Name        string            `json:"name,omitempty"`
	Project     string            `json:"project,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`

	// UID is unique for the life of the object: a deleted and re-created
	// object of the same name gets a new one.
	UID string `json:"uid,omitempty"`
	// ResourceVersion is the store revision of the object's last write; an
	// update carrying a stale value is refused with a conflict.
	ResourceVersion int64 `json:"resourceVersion,omitempty"`
	// Generation counts changes to spec (never to status).
	Generation        int64     `json:"generation,omitempty"`
	CreationTimestamp time.Time `json:"creationTimestamp,omitzero"`
	// DeletionTimestamp is set when a graceful deletion began: the object
	// (a Pod) stays until whoever runs it has stopped it in order.
	DeletionTimestamp *time.Time `json:"deletionTimestamp,omitempty"`
	// DeletionGracePeriodSeconds is the grace the deletion asked for.
	DeletionGracePeriodSeconds *int64 `json:"deletionGracePeriodSeconds,omitempty"`
}

// Object is implemented by every kind.
type Object interface {
	GetTypeMeta() *TypeMeta
	GetMeta() *ObjectMeta
}

// GetTypeMeta implements Object.
func (t *TypeMeta) GetTypeMeta() *TypeMeta { return t }

// Condition is a Kubernetes-style condition on an object's status.
type Condition struct {
	Type               string    `json:"type"`
	Status             string    `json:"status"` // "True", "False", "Unknown"
	Reason             string    `json:"reason,omitempty"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime,omitzero"`
}

// Condition statuses.
const (
	ConditionTrue    = "True"
	ConditionFalse   = "False"
	ConditionUnknown = "Unknown"
)

// FindCondition returns the condition of the given type, or nil.
func FindCondition(conds []Condition, typ string) *Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}

// SetCondition replaces or appends c, keeping LastTransitionTime when the
// status did not change. now is the time of the transition.
func SetCondition(conds []Condition, c Condition, now time.Time) []Condition {
	if old := FindCondition(conds, c.Type); old != nil {
		if old.Status == c.Status {
			c.LastTransitionTime = old.LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		*old = c
		return conds
	}
	c.LastTransitionTime = now
	return append(conds, c)
}

// Package validation checks api objects, as Kubernetes keeps
// pkg/apis/core/validation apart from the types: Validate reports every
// problem of an object at once, each naming its field path, the bad value
// and the rule, in Kubernetes' wording; ValidateUpdate adds the immutable
// fields; ValidateClaimUse checks an App against the claims it mounts.
// The checks of each kind live in a file of their own (app.go, route.go,
// volume.go, build.go, ...) as methods on validator. It imports api and the
// standard library only.
package validation

import (
	"encoding/json"
	"fmt"

	"slipway.dev/slipway/internal/api"
)

// Validate returns every problem of obj at once, each naming its field path,
// the bad value and the rule. Call api.SetDefaults first: Validate checks the
// defaulted object, so a zero where a default belongs (a probe's
// periodSeconds) is an error, while an optional pointer left nil (replicas)
// is taken to mean its default. Status is not validated: only controllers
// write it.
func Validate(obj api.Object) api.FieldErrors {
	v := &validator{}
	if obj == nil {
		v.required("kind", "")
		return v.errs
	}
	tm := obj.GetTypeMeta()
	if tm.APIVersion != api.Version {
		v.unsupported("apiVersion", tm.APIVersion, api.Version)
	}
	kind := api.KindOf(obj)
	if tm.Kind != kind {
		v.invalid("kind", tm.Kind, fmt.Sprintf("must be %q for this object", kind))
	}
	switch o := obj.(type) {
	case *api.Project:
		v.meta(&o.Metadata, kind, false)
		v.maxLen("spec.displayName", o.Spec.DisplayName, 256)
		v.maxLen("spec.description", o.Spec.Description, 4096)
	case *api.App:
		v.meta(&o.Metadata, kind, true)
		v.appSpec("spec", &o.Spec)
	case *api.Revision:
		v.meta(&o.Metadata, kind, true)
		v.revisionSpec("spec", &o.Spec)
	case *api.Pod:
		v.meta(&o.Metadata, kind, true)
		v.podSpec("spec", &o.Spec)
	case *api.Service:
		v.meta(&o.Metadata, kind, true)
		v.serviceSpec("spec", &o.Spec)
	case *api.Endpoints:
		v.meta(&o.Metadata, kind, true)
		v.endpoints(o)
	case *api.Route:
		v.meta(&o.Metadata, kind, true)
		v.routeSpec("spec", &o.Spec, &o.Metadata)
	case *api.Secret:
		v.meta(&o.Metadata, kind, true)
		v.secret(o)
	case *api.Event:
		v.meta(&o.Metadata, kind, true)
		v.event(o)
	case *api.ConfigMap:
		v.meta(&o.Metadata, kind, true)
		v.configMap(o)
	case *api.PersistentVolumeClaim:
		v.meta(&o.Metadata, kind, true)
		v.persistentVolumeClaim(o)
	case *api.Build:
		v.meta(&o.Metadata, kind, true)
		v.build(o)
	case *api.ImageStream:
		v.meta(&o.Metadata, kind, true)
		v.imageStream(o)
	case *api.Template, *api.TemplateInstance:
		v.meta(obj.GetMeta(), kind, true) // the structure of a Template is checked when it is processed (internal/template)
	default:
		v.unsupported("kind", tm.Kind, api.KindNames()...)
	}
	return v.errs
}

// ValidateUpdate validates newObj (as Validate does) and checks that it
// changes no immutable field of oldObj. metadata.uid and
// metadata.creationTimestamp are immutable when newObj sets them; the
// server copies them from oldObj when a manifest leaves them out.
func ValidateUpdate(oldObj, newObj api.Object) api.FieldErrors {
	errs := Validate(newObj)
	if oldObj == nil || newObj == nil {
		return errs
	}
	v := &validator{errs: errs}
	if ok, nk := api.KindOf(oldObj), api.KindOf(newObj); ok != nk {
		v.forbidden("kind", fmt.Sprintf("may not change from %q to %q", ok, nk))
		return v.errs
	}
	om, nm := oldObj.GetMeta(), newObj.GetMeta()
	v.immutable("metadata.name", om.Name, nm.Name)
	v.immutable("metadata.project", om.Project, nm.Project)
	if nm.UID != "" {
		v.immutable("metadata.uid", om.UID, nm.UID)
	}
	if !nm.CreationTimestamp.IsZero() && !nm.CreationTimestamp.Equal(om.CreationTimestamp) {
		v.add(api.FieldInvalid, "metadata.creationTimestamp", nm.CreationTimestamp, "field is immutable")
	}
	switch o := oldObj.(type) {
	case *api.Revision:
		n := newObj.(*api.Revision)
		v.immutable("spec.app", o.Spec.App, n.Spec.App)
		v.immutable("spec.number", o.Spec.Number, n.Spec.Number)
		v.immutable("spec.templateHash", o.Spec.TemplateHash, n.Spec.TemplateHash)
		if !sameJSON(o.Spec.Template, n.Spec.Template) {
			v.forbidden("spec.template", "field is immutable: a changed template is a new revision")
		}
	case *api.Pod:
		// A record written before restartPolicy existed means Always.
		was, now := o.Spec, newObj.(*api.Pod).Spec
		was.RestartPolicy, now.RestartPolicy = was.Restarts(), now.Restarts()
		if !sameJSON(was, now) {
			v.forbidden("spec", "field is immutable: a pod is replaced, never changed")
		}
	case *api.PersistentVolumeClaim:
		n := newObj.(*api.PersistentVolumeClaim)
		if !sameJSON(o.Spec.AccessModes, n.Spec.AccessModes) {
			v.forbidden("spec.accessModes", "field is immutable after creation")
		}
		// A claim may grow, never shrink: its data would no longer fit.
		if was, err1 := o.Spec.Resources.Requests[api.ResourceStorage].Value(); err1 == nil {
			if now, err2 := n.Spec.Resources.Requests[api.ResourceStorage].Value(); err2 == nil && now < was {
				v.forbidden(key("spec.resources.requests", api.ResourceStorage), fmt.Sprintf("may not be less than the previous value %s: a claim may grow, never shrink", o.Spec.Resources.Requests[api.ResourceStorage]))
			}
		}
	case *api.Build:
		if !sameJSON(o.Spec, newObj.(*api.Build).Spec) {
			v.forbidden("spec", "field is immutable: start a new build instead")
		}
	}
	return v.errs
}

// sameJSON compares by serialised form, so that a nil and an empty list
// (which a round trip through JSON does not tell apart) count as equal.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

package api

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Bounds enforced by Validate. Each one is there so that a mistake or an
// abuse fails at apply time with a clear message instead of failing later
// inside a controller, the runtime or the kernel.
const (
	// MaxNameLength: names are DNS labels (RFC 1123).
	MaxNameLength = 63
	// MaxAppNameLength: pod names are <app>-<revision>-<5 chars> and must
	// still be a DNS label; 40 leaves 16 digits for the revision number.
	MaxAppNameLength = 40
	// MaxAnnotationsBytes bounds the total size of an object's annotations
	// (Kubernetes' figure).
	MaxAnnotationsBytes = 256 << 10
	// MaxReplicas bounds spec.replicas of an App or a Revision: every pod is
	// a process on this machine.
	MaxReplicas = 1000
	// MaxEnvStringBytes bounds one NAME=value (and one command or args
	// element): Linux refuses to exec with a single string over
	// MAX_ARG_STRLEN (128 KiB).
	MaxEnvStringBytes = 128 << 10
	// MaxContainerArgBytes bounds command+args+env of one container, well
	// inside the kernel's ARG_MAX budget.
	MaxContainerArgBytes = 1 << 20
	// MaxSecretBytes bounds the keys and values of a Secret.
	MaxSecretBytes = 1 << 20
	// MaxEventMessageBytes bounds Event.message; writers should truncate.
	MaxEventMessageBytes = 4096
	// MaxAlternateBackends is OpenShift's limit on a route's alternateBackends.
	MaxAlternateBackends = 3
	// MaxRetryAttempts bounds a route's retries.attempts.
	MaxRetryAttempts = 5
	// MinMemoryLimit is the smallest memory limit a process can start under.
	MinMemoryLimit = 4 << 20
	// MaxPortNameLength is IANA's limit on a service name (port name).
	MaxPortNameLength = 15
	// MaxRegexLength bounds a route match's regular expression.
	MaxRegexLength = 1024
	// MaxWebhookTimeoutSeconds bounds an analysis webhook's timeout.
	MaxWebhookTimeoutSeconds = 300
)

// Validate returns every problem of obj at once, each naming its field path,
// the bad value and the rule. Call SetDefaults first: Validate checks the
// defaulted object, so a zero where a default belongs (a probe's
// periodSeconds) is an error, while an optional pointer left nil (replicas)
// is taken to mean its default. Status is not validated: only controllers
// write it.
func Validate(obj Object) FieldErrors {
	v := &validator{}
	if obj == nil {
		v.required("kind", "")
		return v.errs
	}
	tm := obj.GetTypeMeta()
	if tm.APIVersion != Version {
		v.unsupported("apiVersion", tm.APIVersion, Version)
	}
	kind := KindOf(obj)
	if tm.Kind != kind {
		v.invalid("kind", tm.Kind, fmt.Sprintf("must be %q for this object", kind))
	}
	switch o := obj.(type) {
	case *Project:
		v.meta(&o.Metadata, kind, false)
		v.maxLen("spec.displayName", o.Spec.DisplayName, 256)
		v.maxLen("spec.description", o.Spec.Description, 4096)
	case *App:
		v.meta(&o.Metadata, kind, true)
		v.appSpec("spec", &o.Spec)
	case *Revision:
		v.meta(&o.Metadata, kind, true)
		v.revisionSpec("spec", &o.Spec)
	case *Pod:
		v.meta(&o.Metadata, kind, true)
		v.podSpec("spec", &o.Spec)
	case *Service:
		v.meta(&o.Metadata, kind, true)
		v.serviceSpec("spec", &o.Spec)
	case *Endpoints:
		v.meta(&o.Metadata, kind, true)
		v.endpoints(o)
	case *Route:
		v.meta(&o.Metadata, kind, true)
		v.routeSpec("spec", &o.Spec, &o.Metadata)
	case *Secret:
		v.meta(&o.Metadata, kind, true)
		v.secret(o)
	case *Event:
		v.meta(&o.Metadata, kind, true)
		v.event(o)
	case *ConfigMap:
		v.meta(&o.Metadata, kind, true)
		v.configMap(o)
	case *PersistentVolumeClaim:
		v.meta(&o.Metadata, kind, true)
		v.persistentVolumeClaim(o)
	case *Build:
		v.meta(&o.Metadata, kind, true)
		v.build(o)
	case *ImageStream:
		v.meta(&o.Metadata, kind, true)
		v.imageStream(o)
	case *Template, *TemplateInstance:
		v.meta(obj.GetMeta(), kind, true)
	default:
		v.unsupported("kind", tm.Kind, kindNames()...)
	}
	return v.errs
}

// ValidateUpdate validates newObj (as Validate does) and checks that it
// changes no immutable field of oldObj. metadata.uid and
// metadata.creationTimestamp are immutable when newObj sets them; the
// server copies them from oldObj when a manifest leaves them out.
func ValidateUpdate(oldObj, newObj Object) FieldErrors {
	errs := Validate(newObj)
	if oldObj == nil || newObj == nil {
		return errs
	}
	v := &validator{errs: errs}
	if ok, nk := KindOf(oldObj), KindOf(newObj); ok != nk {
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
		v.add(FieldInvalid, "metadata.creationTimestamp", nm.CreationTimestamp, "field is immutable")
	}
	switch o := oldObj.(type) {
	case *Revision:
		n := newObj.(*Revision)
		v.immutable("spec.app", o.Spec.App, n.Spec.App)
		v.immutable("spec.number", o.Spec.Number, n.Spec.Number)
		v.immutable("spec.templateHash", o.Spec.TemplateHash, n.Spec.TemplateHash)
		if !sameJSON(o.Spec.Template, n.Spec.Template) {
			v.forbidden("spec.template", "field is immutable: a changed template is a new revision")
		}
	case *Pod:
		// A record written before restartPolicy existed means Always.
		was, now := o.Spec, newObj.(*Pod).Spec
		was.RestartPolicy, now.RestartPolicy = was.Restarts(), now.Restarts()
		if !sameJSON(was, now) {
			v.forbidden("spec", "field is immutable: a pod is replaced, never changed")
		}
	case *PersistentVolumeClaim:
		n := newObj.(*PersistentVolumeClaim)
		if !sameJSON(o.Spec.AccessModes, n.Spec.AccessModes) {
			v.forbidden("spec.accessModes", "field is immutable after creation")
		}
		// A claim may grow, never shrink: its data would no longer fit.
		if was, err1 := o.Spec.Resources.Requests[ResourceStorage].Value(); err1 == nil {
			if now, err2 := n.Spec.Resources.Requests[ResourceStorage].Value(); err2 == nil && now < was {
				v.forbidden(key("spec.resources.requests", ResourceStorage), fmt.Sprintf("may not be less than the previous value %s: a claim may grow, never shrink", o.Spec.Resources.Requests[ResourceStorage]))
			}
		}
	case *Build:
		if !sameJSON(o.Spec, newObj.(*Build).Spec) {
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

func kindNames() []string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Kind
	}
	return names
}

// validator accumulates field errors.
type validator struct {
	errs FieldErrors
}

func (v *validator) add(typ, field string, bad any, detail string) {
	v.errs = append(v.errs, &FieldError{Type: typ, Field: field, BadValue: bad, Detail: detail})
}

func (v *validator) invalid(field string, bad any, detail string) {
	v.add(FieldInvalid, field, bad, detail)
}

func (v *validator) required(field, detail string) {
	v.add(FieldRequired, field, nil, detail)
}

func (v *validator) forbidden(field, detail string) {
	v.add(FieldForbidden, field, nil, detail)
}

func (v *validator) duplicate(field string, bad any) {
	v.add(FieldDuplicate, field, bad, "")
}

func (v *validator) tooLong(field string, max int, why string) {
	d := fmt.Sprintf("may not be longer than %d", max)
	if why != "" {
		d += " (" + why + ")"
	}
	v.add(FieldTooLong, field, nil, d)
}

// unsupported reports a value outside a closed set, listing the set.
func (v *validator) unsupported(field, bad string, supported ...string) {
	q := make([]string, len(supported))
	for i, s := range supported {
		q[i] = strconv.Quote(s)
	}
	v.add(FieldUnsupported, field, bad, "supported values: "+strings.Join(q, ", "))
}

// oneOf reports an Unsupported value unless s is one of allowed.
func (v *validator) oneOf(field, s string, allowed ...string) bool {
	if slices.Contains(allowed, s) {
		return true
	}
	if s == "" {
		v.required(field, "supported values: "+quoteAll(allowed))
		return false
	}
	v.unsupported(field, s, allowed...)
	return false
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

func (v *validator) immutable(field string, old, new any) {
	if old != new {
		v.invalid(field, new, "field is immutable")
	}
}

func (v *validator) min(field string, n, min int64) {
	if n < min {
		v.invalid(field, n, fmt.Sprintf("must be greater than or equal to %d", min))
	}
}

func (v *validator) max(field string, n, max int64) {
	if n > max {
		v.invalid(field, n, fmt.Sprintf("must be less than or equal to %d", max))
	}
}

func (v *validator) rangeOf(field string, n, min, max int64) {
	if n < min || n > max {
		v.invalid(field, n, fmt.Sprintf("must be between %d and %d, inclusive", min, max))
	}
}

func (v *validator) maxLen(field, s string, max int) {
	if len(s) > max {
		v.tooLong(field, max, "")
	}
}

// Path builders. Paths read as in Kubernetes, with map keys quoted so that
// keys holding dots stay unambiguous: metadata.labels["app.kubernetes.io/name"].
func child(p string, names ...string) string {
	for _, n := range names {
		if p == "" {
			p = n
		} else {
			p += "." + n
		}
	}
	return p
}

func index(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

func key(p, k string) string { return p + "[" + strconv.Quote(k) + "]" }

// Names and labels, with Kubernetes' rules and wording.

var (
	dns1123LabelRe     = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	dns1035LabelRe     = regexp.MustCompile(`^[a-z]([-a-z0-9]*[a-z0-9])?$`)
	qualifiedNameRe    = regexp.MustCompile(`^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$`)
	labelValueRe       = regexp.MustCompile(`^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$`)
	envVarNameRe       = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	secretKeyRe        = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)
	ianaSvcNameCharsRe = regexp.MustCompile(`^[-a-z0-9]+$`)
	ianaSvcNameLetter  = regexp.MustCompile(`[a-z]`)
	httpTokenRe        = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

const (
	dns1123LabelMsg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')"
	dns1035LabelMsg = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123')"
	subdomainMsg    = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
	qualifiedMsg    = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc')"
	labelValueMsg   = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345')"
	envVarNameMsg   = "a valid environment variable name must consist of alphabetic characters, digits, '_', '-' or '.', and must not start with a digit or '-' or '.' (e.g. 'MY_VAR' or 'my.var')"
	secretKeyMsg    = "a valid secret key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')"
	httpTokenMsg    = "must be a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
)

// label checks a DNS-1123 label such as an object name; max may be shorter
// than 63 (App names), why says why.
func (v *validator) label(field, s string, max int, why string) bool {
	switch {
	case s == "":
		v.required(field, "")
		return false
	case len(s) > max:
		v.tooLong(field, max, why)
		return false
	case !dns1123LabelRe.MatchString(s):
		v.invalid(field, s, dns1123LabelMsg)
		return false
	}
	return true
}

// serviceName checks a DNS-1035 label: service names become environment
// variable names (<NAME>_SERVICE_HOST), which may not start with a digit.
func (v *validator) serviceName(field, s string) bool {
	switch {
	case s == "":
		v.required(field, "")
		return false
	case len(s) > MaxNameLength:
		v.tooLong(field, MaxNameLength, "")
		return false
	case !dns1035LabelRe.MatchString(s):
		v.invalid(field, s, dns1035LabelMsg)
		return false
	}
	return true
}

func isDNS1123Subdomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if len(part) > 63 || !dns1123LabelRe.MatchString(part) {
			return false
		}
	}
	return true
}

func (v *validator) subdomain(field, s string) bool {
	if len(s) > 253 {
		v.tooLong(field, 253, "")
		return false
	}
	if !isDNS1123Subdomain(s) {
		v.invalid(field, s, subdomainMsg)
		return false
	}
	return true
}

// qualifiedName checks a label or annotation key: [prefix/]name.
func qualifiedNameErrs(k string) []string {
	var errs []string
	name := k
	if prefix, n, ok := strings.Cut(k, "/"); ok {
		name = n
		switch {
		case prefix == "":
			errs = append(errs, "prefix part must be non-empty")
		case !isDNS1123Subdomain(prefix):
			errs = append(errs, "prefix part "+subdomainMsg)
		}
	}
	switch {
	case name == "":
		errs = append(errs, "name part must be non-empty")
	case len(name) > 63:
		errs = append(errs, "name part must be no more than 63 characters")
	case !qualifiedNameRe.MatchString(name):
		errs = append(errs, qualifiedMsg)
	}
	return errs
}

func (v *validator) labels(field string, labels map[string]string) {
	for _, k := range sortedKeys(labels) {
		for _, msg := range qualifiedNameErrs(k) {
			v.invalid(key(field, k), k, "key: "+msg)
		}
		val := labels[k]
		switch {
		case len(val) > 63:
			v.invalid(key(field, k), val, "must be no more than 63 characters")
		case !labelValueRe.MatchString(val):
			v.invalid(key(field, k), val, labelValueMsg)
		}
	}
}

func (v *validator) annotations(field string, ann map[string]string) {
	total := 0
	for _, k := range sortedKeys(ann) {
		for _, msg := range qualifiedNameErrs(strings.ToLower(k)) {
			v.invalid(key(field, k), k, "key: "+msg)
		}
		total += len(k) + len(ann[k])
	}
	if total > MaxAnnotationsBytes {
		v.add(FieldTooLong, field, nil, fmt.Sprintf("may not be longer than %d bytes in total", MaxAnnotationsBytes))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// meta validates metadata; inProject says whether the kind lives in a project.
func (v *validator) meta(m *ObjectMeta, kind string, inProject bool) {
	switch kind {
	case "App":
		v.label("metadata.name", m.Name, MaxAppNameLength,
			"pod names are <app>-<revision>-<5 random characters> and must fit in 63")
	case "Service":
		v.serviceName("metadata.name", m.Name)
	case "Event":
		// Events are named <object>.<unique suffix>, as in Kubernetes.
		if m.Name == "" {
			v.required("metadata.name", "")
		} else {
			v.subdomain("metadata.name", m.Name)
		}
	default:
		v.label("metadata.name", m.Name, MaxNameLength, "")
	}
	if inProject {
		v.label("metadata.project", m.Project, MaxNameLength, "")
	} else if m.Project != "" {
		v.forbidden("metadata.project", "a project does not belong to a project")
	}
	v.labels("metadata.labels", m.Labels)
	v.annotations("metadata.annotations", m.Annotations)
	v.min("metadata.resourceVersion", m.ResourceVersion, 0)
	v.min("metadata.generation", m.Generation, 0)
}

func (v *validator) secret(s *Secret) {
	v.maxLen("type", s.Type, 253)
	total := 0
	for _, k := range sortedKeys(s.Data) {
		switch {
		case len(k) > 253:
			v.tooLong(key("data", k[:32]+"..."), 253, "")
		case !secretKeyRe.MatchString(k):
			v.invalid(key("data", k), k, "key: "+secretKeyMsg)
		}
		total += len(k) + len(s.Data[k])
	}
	// Never the values themselves, in no message: only their total size.
	if total > MaxSecretBytes {
		v.add(FieldTooLong, "data", nil, fmt.Sprintf("may not be longer than %d bytes in total (keys and values)", MaxSecretBytes))
	}
}

func (v *validator) event(e *Event) {
	ref := e.InvolvedObject
	if ref.Kind == "" {
		v.required("involvedObject.kind", "")
	} else {
		v.oneOf("involvedObject.kind", ref.Kind, kindNames()...)
	}
	if ref.Name == "" {
		v.required("involvedObject.name", "")
	}
	if ref.Project != "" {
		v.label("involvedObject.project", ref.Project, MaxNameLength, "")
	}
	if e.Type != "" {
		v.oneOf("type", e.Type, EventNormal, EventWarning)
	}
	v.maxLen("reason", e.Reason, 128)
	v.maxLen("message", e.Message, MaxEventMessageBytes)
	v.maxLen("source", e.Source, 253)
	v.min("count", int64(e.Count), 0)
}

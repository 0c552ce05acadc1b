package validation

import (
	"fmt"
	"regexp"
	"strings"

	"slipway.dev/slipway/internal/api"
)

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
	case len(s) > api.MaxNameLength:
		v.tooLong(field, api.MaxNameLength, "")
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
	if total > api.MaxAnnotationsBytes {
		v.add(api.FieldTooLong, field, nil, fmt.Sprintf("may not be longer than %d bytes in total", api.MaxAnnotationsBytes))
	}
}

// meta validates metadata; inProject says whether the kind lives in a project.
func (v *validator) meta(m *api.ObjectMeta, kind string, inProject bool) {
	switch kind {
	case "App":
		v.label("metadata.name", m.Name, api.MaxAppNameLength,
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
		v.label("metadata.name", m.Name, api.MaxNameLength, "")
	}
	if inProject {
		v.label("metadata.project", m.Project, api.MaxNameLength, "")
	} else if m.Project != "" {
		v.forbidden("metadata.project", "a project does not belong to a project")
	}
	v.labels("metadata.labels", m.Labels)
	v.annotations("metadata.annotations", m.Annotations)
	v.min("metadata.resourceVersion", m.ResourceVersion, 0)
	v.min("metadata.generation", m.Generation, 0)
}

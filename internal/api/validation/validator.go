package validation

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// validator accumulates field errors.
type validator struct {
	errs api.FieldErrors
}

func (v *validator) add(typ, field string, bad any, detail string) {
	v.errs = append(v.errs, &api.FieldError{Type: typ, Field: field, BadValue: bad, Detail: detail})
}

func (v *validator) invalid(field string, bad any, detail string) {
	v.add(api.FieldInvalid, field, bad, detail)
}

func (v *validator) required(field, detail string) {
	v.add(api.FieldRequired, field, nil, detail)
}

func (v *validator) forbidden(field, detail string) {
	v.add(api.FieldForbidden, field, nil, detail)
}

func (v *validator) duplicate(field string, bad any) {
	v.add(api.FieldDuplicate, field, bad, "")
}

func (v *validator) tooLong(field string, max int, why string) {
	d := fmt.Sprintf("may not be longer than %d", max)
	if why != "" {
		d += " (" + why + ")"
	}
	v.add(api.FieldTooLong, field, nil, d)
}

// unsupported reports a value outside a closed set, listing the set.
func (v *validator) unsupported(field, bad string, supported ...string) {
	q := make([]string, len(supported))
	for i, s := range supported {
		q[i] = strconv.Quote(s)
	}
	v.add(api.FieldUnsupported, field, bad, "supported values: "+strings.Join(q, ", "))
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

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

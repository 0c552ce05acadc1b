// Package template processes Templates as OpenShift v3 does: parameters
// get their values (given, kept from a previous apply, the template's
// default, or generated from an expression with a cryptographic random
// source), ${NAME} is replaced inside strings and a string that is exactly
// ${{NAME}} by the value itself (an integer replicas from a parameter), and
// the template's labels go on every object. It is pure: a template and
// options in, objects (as JSON, for the API's strict decoding) out, every
// problem reported at once.
package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// Bounds of processing.
const (
	// MaxBytes bounds a template's objects as written: what a manifest may
	// hold (manifest.MaxBytes).
	MaxBytes = 4 << 20
	// MaxOutputBytes bounds the processed objects: what one apply takes
	// (the API's apply body).
	MaxOutputBytes = 8 << 20
)

// Options are the inputs of processing besides the template.
type Options struct {
	// Project is where the objects are made; an object naming another
	// project is an error.
	Project string
	// Params are the values given (-p K=V, a parameter file).
	Params map[string]string
	// Kept are the values of a previous apply (the instance's Secret):
	// they win over defaults and generators, so that a password is never
	// generated twice for one instance.
	Kept map[string]string
	// Rand is the random source of generators; crypto/rand's Reader when
	// nil.
	Rand io.Reader
}

// Result is a processed template.
type Result struct {
	// Objects are the objects to apply, in the template's order.
	Objects []json.RawMessage
	// Values are the parameters' values, in the template's order.
	Values []Value
	// Message is the template's message with parameters substituted.
	Message string
}

// Kinds a template may make: what a user writes in a project. The others
// are made by Slipway itself (Pods, Revisions, Endpoints, Events) or are
// about templates (a TemplateInstance).
var Kinds = []string{"Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "App", "Route", "ImageStream", "Template"}

// Process processes t with o. Every problem (unknown -p names, a required
// parameter without value, a bad generator, a loop between parameters, an
// object that is not an object, has no kind or a kind Slipway lacks, a
// substitution too large) is in one Invalid *api.Error naming the field
// of each.
func Process(t *api.Template, o Options) (*Result, error) {
	var errs api.FieldErrors
	add := func(typ, field string, bad any, detail string) {
		errs = append(errs, &api.FieldError{Type: typ, Field: field, BadValue: bad, Detail: detail})
	}
	size := 0
	for _, raw := range t.Objects {
		size += len(raw)
	}
	if size > MaxBytes {
		add(api.FieldTooLong, "objects", nil, fmt.Sprintf("the objects are %.1f MiB, larger than the %d MiB a manifest may hold",
			float64(size)/(1<<20), MaxBytes>>20))
		return nil, errs.ToError("Template", t.Metadata.Name)
	}
	if len(t.Objects) == 0 {
		add(api.FieldRequired, "objects", nil, "a template makes at least one object")
	}
	values := resolve(t, o, &errs)
	index := map[string]int{}
	for i, v := range values {
		if v.Name != "" {
			if _, dup := index[v.Name]; !dup {
				index[v.Name] = i
			}
		}
	}
	s := &substituter{values: values, index: index, budget: MaxOutputBytes}
	res := &Result{Values: values, Message: s.str(t.Message)}
	for i, raw := range t.Objects {
		f := fmt.Sprintf("objects[%d]", i)
		obj, err := decodeObject(raw)
		if err != nil {
			add(api.FieldForbidden, f, nil, err.Error())
			continue
		}
		kind, _ := obj["kind"].(string)
		switch {
		case obj["kind"] == nil:
			add(api.FieldRequired, f+".kind", nil, "one of "+strings.Join(Kinds, ", "))
			continue
		case kind == "":
			add(api.FieldInvalid, f+".kind", obj["kind"], "must be a string: one of "+strings.Join(Kinds, ", "))
			continue
		case !slices.Contains(Kinds, kind):
			add(api.FieldUnsupported, f+".kind", kind, "Slipway has no such kind a template can make; it makes "+strings.Join(Kinds, ", "))
			continue
		}
		out := s.value(obj).(map[string]any)
		if s.budget < 0 {
			add(api.FieldTooLong, f, nil, fmt.Sprintf("processed objects would be larger than %d MiB (a parameter substituted too often?)", MaxOutputBytes>>20))
			return nil, errs.ToError("Template", t.Metadata.Name)
		}
		if fe := finish(out, t.Labels, s, o.Project); fe != nil {
			fe.Field = f + "." + fe.Field
			errs = append(errs, fe)
			continue
		}
		if out["apiVersion"] == nil {
			out["apiVersion"] = api.Version
		}
		b, err := json.Marshal(out)
		if err != nil {
			add(api.FieldInvalid, f, nil, err.Error())
			continue
		}
		res.Objects = append(res.Objects, b)
	}
	if len(errs) > 0 {
		return nil, errs.ToError("Template", t.Metadata.Name)
	}
	return res, nil
}

// decodeObject reads one object, numbers kept as written.
func decodeObject(raw json.RawMessage) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, fmt.Errorf("is not JSON: %v", err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("must be an object (a mapping with kind, metadata, ...)")
	}
	return m, nil
}

// finish puts the object in the project and gives it the template's
// labels (the object's own labels win on a clash).
func finish(obj map[string]any, labels map[string]string, s *substituter, project string) *api.FieldError {
	meta, ok := obj["metadata"].(map[string]any)
	if obj["metadata"] == nil {
		meta, ok = map[string]any{}, true
		obj["metadata"] = meta
	}
	if !ok {
		return &api.FieldError{Type: api.FieldForbidden, Field: "metadata", Detail: "must be a mapping"}
	}
	if p, set := meta["project"]; set && project != "" && p != project {
		return &api.FieldError{Type: api.FieldInvalid, Field: "metadata.project", BadValue: p,
			Detail: fmt.Sprintf("a template makes its objects in the project it is processed for (%s)", project)}
	}
	if project != "" {
		meta["project"] = project
	}
	if len(labels) == 0 {
		return nil
	}
	l, ok := meta["labels"].(map[string]any)
	if meta["labels"] == nil {
		l, ok = map[string]any{}, true
	}
	if !ok {
		return &api.FieldError{Type: api.FieldForbidden, Field: "metadata.labels", Detail: "must be a mapping"}
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if _, own := l[k]; !own {
			l[k] = s.str(labels[k])
		}
	}
	meta["labels"] = l
	return nil
}

// substituter replaces parameters in decoded JSON values, counting what
// it writes against budget.
type substituter struct {
	values []Value
	index  map[string]int
	budget int
}

func (s *substituter) value(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = s.value(e)
			s.budget -= len(k)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = s.value(e)
		}
		return x
	case string:
		if whole := wholeRef(x); whole != "" {
			if i, ok := s.index[whole]; ok {
				return s.literal(s.values[i].Value)
			}
		}
		return s.str(x)
	default:
		s.budget -= 8
		return v
	}
}

// str substitutes inside a string, unless the result would be past the
// budget (then it costs the budget and gives "").
func (s *substituter) str(x string) string {
	n := len(x)
	if strings.Contains(x, "${") {
		for _, m := range refPattern.FindAllStringSubmatchIndex(x, -1) {
			var name string
			if m[2] >= 0 {
				name = x[m[2]:m[3]]
			} else {
				name = x[m[4]:m[5]]
			}
			if i, ok := s.index[name]; ok {
				n += len(s.values[i].Value) - (m[1] - m[0])
			}
		}
	}
	s.budget -= n
	if s.budget < 0 {
		return ""
	}
	return substitute(x, s.values, s.index)
}

// literal is the value of ${{NAME}}: the parameter's value read as JSON
// (2 is a number, true a boolean, {"a":1} an object) or, when it is not
// JSON, the string itself.
func (s *substituter) literal(v string) any {
	s.budget -= len(v)
	d := json.NewDecoder(strings.NewReader(v))
	d.UseNumber()
	var out any
	if err := d.Decode(&out); err != nil || d.More() {
		return v
	}
	if _, err := d.Token(); err != io.EOF {
		return v
	}
	return out
}

// wholeRef returns NAME when s is exactly ${{NAME}}.
func wholeRef(s string) string {
	if !strings.HasPrefix(s, "${{") || !strings.HasSuffix(s, "}}") {
		return ""
	}
	n := s[3 : len(s)-2]
	if !paramName.MatchString(n) {
		return ""
	}
	return n
}

package registry

import (
	"fmt"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// Selector matches labels. The zero Selector matches everything.
type Selector struct {
	reqs []requirement
}

type operator int

const (
	opEquals operator = iota
	opNotEquals
	opIn
	opNotIn
	opExists
	opNotExists
)

type requirement struct {
	key    string
	op     operator
	values []string
}

func (q requirement) matches(labels map[string]string) bool {
	v, has := labels[q.key]
	switch q.op {
	case opEquals:
		return has && v == q.values[0]
	case opNotEquals:
		return !has || v != q.values[0]
	case opIn:
		return has && slices.Contains(q.values, v)
	case opNotIn:
		return !has || !slices.Contains(q.values, v)
	case opExists:
		return has
	case opNotExists:
		return !has
	}
	return false
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, q := range s.reqs {
		if !q.matches(labels) {
			return false
		}
	}
	return true
}

// Empty reports whether the selector matches everything.
func (s Selector) Empty() bool { return len(s.reqs) == 0 }

// FormatSelector renders a map of labels as an equality selector, keys sorted.
func FormatSelector(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + labels[k]
	}
	return strings.Join(parts, ",")
}

// ParseSelector reads a label selector in Kubernetes' syntax:
// comma-separated requirements, each one of `key=value` (or `==`),
// `key!=value`, `key in (a,b)`, `key notin (a,b)`, `key` (exists) and
// `!key` (does not exist). The error is BadRequest and names the part.
func ParseSelector(s string) (Selector, error) {
	var sel Selector
	for _, part := range splitTopLevel(s) {
		part = strings.TrimSpace(part)
		if part == "" {
			if strings.TrimSpace(s) == "" {
				return sel, nil
			}
			return Selector{}, badSelector(s, "empty requirement")
		}
		q, err := parseRequirement(part)
		if err != nil {
			return Selector{}, badSelector(s, err.Error())
		}
		sel.reqs = append(sel.reqs, q)
	}
	return sel, nil
}

func badSelector(s, why string) error {
	return api.Errorf(api.ReasonBadRequest, "invalid label selector %q: %s", s, why)
}

// splitTopLevel splits on commas outside parentheses.
func splitTopLevel(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseRequirement(p string) (requirement, error) {
	if k, ok := strings.CutPrefix(p, "!"); ok {
		k = strings.TrimSpace(k)
		return requirement{key: k, op: opNotExists}, checkLabelKey(k)
	}
	if k, v, ok := strings.Cut(p, "!="); ok {
		return equality(k, v, opNotEquals)
	}
	if k, v, ok := strings.Cut(p, "=="); ok {
		return equality(k, v, opEquals)
	}
	if k, v, ok := strings.Cut(p, "="); ok {
		return equality(k, v, opEquals)
	}
	if fields := strings.Fields(p); len(fields) >= 2 && (fields[1] == "in" || fields[1] == "notin") {
		k, word := fields[0], fields[1]
		op := opIn
		if word == "notin" {
			op = opNotIn
		}
		rest := strings.TrimSpace(p)
		rest = strings.TrimSpace(rest[len(k):])
		rest = strings.TrimSpace(rest[len(word):])
		if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
			return requirement{}, fmt.Errorf("%q: the values of %s must be in parentheses", p, word)
		}
		var vals []string
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			v = strings.TrimSpace(v)
			if err := checkLabelValue(v); err != nil {
				return requirement{}, err
			}
			vals = append(vals, v)
		}
		return requirement{key: k, op: op, values: vals}, checkLabelKey(k)
	}
	k := strings.TrimSpace(p)
	return requirement{key: k, op: opExists}, checkLabelKey(k)
}

func equality(k, v string, op operator) (requirement, error) {
	k, v = strings.TrimSpace(k), strings.TrimSpace(v)
	if err := checkLabelKey(k); err != nil {
		return requirement{}, err
	}
	if err := checkLabelValue(v); err != nil {
		return requirement{}, err
	}
	return requirement{key: k, op: op, values: []string{v}}, nil
}

func checkLabelKey(k string) error {
	if k == "" {
		return fmt.Errorf("a requirement has no key")
	}
	if len(k) > 253 || strings.ContainsAny(k, " \t=!(),") {
		return fmt.Errorf("invalid label key %q", k)
	}
	return nil
}

func checkLabelValue(v string) error {
	if len(v) > 63 || strings.ContainsAny(v, " \t=!(),") {
		return fmt.Errorf("invalid label value %q", v)
	}
	return nil
}

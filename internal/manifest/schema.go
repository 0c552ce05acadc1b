package manifest

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
)

// The schema walk checks a YAML node tree against a Go type through its
// json tags, so the YAML and JSON forms share one schema. It turns the tree
// into plain JSON values (map[string]any, []any, strings, numbers, bools)
// that encoding/json then decodes into the typed object, and on the way it
// records the line of every field and reports, with full path and line,
// every unknown field, wrong type and duplicate key. Fields in error are
// left out of the result so the rest can still be validated.

const (
	tagNull      = "!!null"
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagTimestamp = "!!timestamp"
	tagMerge     = "!!merge"
)

var (
	timeType        = reflect.TypeFor[time.Time]()
	intOrStringType = reflect.TypeFor[api.IntOrString]()
	quantityType    = reflect.TypeFor[api.Quantity]()
	rawType         = reflect.TypeFor[json.RawMessage]()
)

// literal is a bad value printed as written (a number, a kind of node).
type literal string

// walkError is one schema problem.
type walkError struct {
	line int
	err  *api.FieldError
}

type walker struct {
	// lines maps each field path seen to the line it is on.
	lines map[string]int
	errs  []walkError
	// redact is the path under which values are never printed (a Secret's data).
	redact string
	// aliasNodes counts nodes reached through aliases, against maxAliasNodes.
	aliasNodes    int
	maxAliasNodes int
	aliasReported bool
}

func newWalker(redact string, maxAliasNodes int) *walker {
	return &walker{lines: map[string]int{}, redact: redact, maxAliasNodes: maxAliasNodes}
}

// secret reports whether values at path are never to be printed.
func (w *walker) secret(path string) bool {
	return w.redact != "" && (path == w.redact || strings.HasPrefix(path, w.redact+"["))
}

func (w *walker) fail(n *yaml.Node, typ, path string, bad any, detail string) {
	if w.secret(path) && bad != nil {
		bad = literal("<redacted>")
	}
	w.errs = append(w.errs, walkError{line: n.Line, err: &api.FieldError{Type: typ, Field: path, BadValue: bad, Detail: detail}})
}

// badValue describes a node for a wrong-type message: a scalar as written,
// anything else by its kind.
func badValue(n *yaml.Node) any {
	switch n.Kind {
	case yaml.MappingNode:
		return literal("a mapping")
	case yaml.SequenceNode:
		return literal("a list")
	case yaml.ScalarNode:
		if n.Tag == tagStr {
			return n.Value
		}
		v := n.Value
		if len(v) > 64 {
			v = v[:64] + "..."
		}
		return literal(v)
	}
	return literal("a node")
}

// value converts n to a JSON value for type t. ok is false when the field
// is to be left out (null, or in error).
func (w *walker) value(n *yaml.Node, t reflect.Type, path string, aliased bool) (v any, ok bool) {
	n, aliased, ok = w.deref(n, path, aliased)
	if !ok {
		return nil, false
	}
	if n.Kind == yaml.ScalarNode && n.Tag == tagNull {
		return nil, false
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return w.timestamp(n, path)
	case t == intOrStringType:
		return w.intOrString(n, path)
	case t == rawType:
		return w.raw(n, path, aliased)
	case t == quantityType:
		if n.Kind == yaml.ScalarNode && (n.Tag == tagStr || n.Tag == tagInt || n.Tag == tagFloat) {
			return n.Value, true
		}
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be a quantity such as 500m, 0.5, 2, 256Mi or 1G")
		return nil, false
	}
	switch t.Kind() {
	case reflect.Struct:
		return w.object(n, t, path, aliased)
	case reflect.Map:
		return w.mapping(n, t, path, aliased)
	case reflect.Slice, reflect.Array:
		return w.list(n, t, path, aliased)
	case reflect.String:
		if n.Kind == yaml.ScalarNode && (n.Tag == tagStr || n.Tag == tagTimestamp) {
			return n.Value, true
		}
		detail := "must be a string"
		if n.Kind == yaml.ScalarNode && !w.secret(path) {
			detail += fmt.Sprintf(" (quote it: %q)", n.Value)
		} else if n.Kind == yaml.ScalarNode {
			detail += " (quote it)"
		}
		w.fail(n, api.FieldInvalid, path, badValue(n), detail)
	case reflect.Bool:
		var b bool
		if n.Kind == yaml.ScalarNode && n.Tag == tagBool && n.Decode(&b) == nil {
			return b, true
		}
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be a boolean (true or false)")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return w.integer(n, path, t.Bits())
	case reflect.Float32, reflect.Float64:
		var f float64
		if n.Kind == yaml.ScalarNode && (n.Tag == tagInt || n.Tag == tagFloat) && n.Decode(&f) == nil &&
			!math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be a finite number")
	default:
		w.fail(n, api.FieldInvalid, path, badValue(n), "is of a type manifests cannot hold")
	}
	return nil, false
}

// raw converts any node to a JSON value, as written: a template's objects,
// whose fields may hold "${{NAME}}" where their kind wants an integer, are
// checked against their kind's schema only once processed.
func (w *walker) raw(n *yaml.Node, path string, aliased bool) (v any, ok bool) {
	n, aliased, ok = w.deref(n, path, aliased)
	if !ok {
		return nil, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		pairs, ok := w.pairs(n, path, aliased, true)
		if !ok {
			return nil, false
		}
		out := make(map[string]any, len(pairs))
		for _, kv := range pairs {
			k := kv.key
			if k.Kind != yaml.ScalarNode || (k.Tag != tagStr && k.Tag != tagTimestamp && k.Tag != tagInt) {
				w.fail(k, api.FieldInvalid, path, badValue(k), "keys must be strings (quote them)")
				continue
			}
			p := childPath(path, k.Value)
			w.lines[p] = k.Line
			if v, ok := w.raw(kv.value, p, aliased || kv.aliased); ok {
				out[k.Value] = v
			}
		}
		return out, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			p := indexPath(path, i)
			w.lines[p] = item.Line
			v, _ := w.raw(item, p, aliased)
			out = append(out, v)
		}
		return out, true
	case yaml.ScalarNode:
		switch n.Tag {
		case tagNull:
			return nil, true
		case tagBool:
			var b bool
			if n.Decode(&b) == nil {
				return b, true
			}
		case tagInt:
			var i int64
			if n.Decode(&i) == nil {
				return i, true
			}
		case tagFloat:
			var f float64
			if n.Decode(&f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
		default:
			return n.Value, true
		}
	}
	w.fail(n, api.FieldInvalid, path, badValue(n), "is a value JSON cannot hold")
	return nil, false
}

func (w *walker) integer(n *yaml.Node, path string, bits int) (any, bool) {
	var i int64
	if n.Kind != yaml.ScalarNode || n.Tag != tagInt || n.Decode(&i) != nil {
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be an integer")
		return nil, false
	}
	if lim := int64(1) << (bits - 1); bits < 64 && (i < -lim || i >= lim) {
		w.fail(n, api.FieldInvalid, path, literal(n.Value), fmt.Sprintf("must be an integer between %d and %d", -lim, lim-1))
		return nil, false
	}
	return i, true
}

func (w *walker) intOrString(n *yaml.Node, path string) (any, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == tagStr {
		return n.Value, true
	}
	if n.Kind == yaml.ScalarNode && n.Tag == tagInt {
		return w.integer(n, path, 32)
	}
	w.fail(n, api.FieldInvalid, path, badValue(n), "must be an integer or a string")
	return nil, false
}

func (w *walker) timestamp(n *yaml.Node, path string) (any, bool) {
	if n.Kind == yaml.ScalarNode && (n.Tag == tagStr || n.Tag == tagTimestamp) {
		if _, err := time.Parse(time.RFC3339Nano, n.Value); err == nil {
			return n.Value, true
		}
	}
	w.fail(n, api.FieldInvalid, path, badValue(n), "must be a timestamp such as 2024-05-01T12:00:00Z (RFC 3339)")
	return nil, false
}

func (w *walker) list(n *yaml.Node, t reflect.Type, path string, aliased bool) (any, bool) {
	if n.Kind != yaml.SequenceNode {
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be a list")
		return nil, false
	}
	if t.Kind() == reflect.Array && len(n.Content) > t.Len() {
		// A fixed-size list (status counters that get -o yaml prints).
		w.fail(n, api.FieldInvalid, path, badValue(n), fmt.Sprintf("must be a list of at most %d items", t.Len()))
		return nil, false
	}
	out := make([]any, 0, len(n.Content))
	for i, item := range n.Content {
		p := indexPath(path, i)
		w.lines[p] = item.Line
		if isNull(item) {
			w.fail(item, api.FieldInvalid, p, nil, "must not be null")
			continue
		}
		if v, ok := w.value(item, t.Elem(), p, aliased); ok {
			out = append(out, v)
		} else {
			// Keep the indexes of the items after it true to the file.
			out = append(out, reflect.Zero(t.Elem()).Interface())
		}
	}
	return out, true
}

func isNull(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n.Kind == yaml.ScalarNode && n.Tag == tagNull
}

func (w *walker) mapping(n *yaml.Node, t reflect.Type, path string, aliased bool) (any, bool) {
	pairs, ok := w.pairs(n, path, aliased, true)
	if !ok {
		return nil, false
	}
	out := make(map[string]any, len(pairs))
	for _, kv := range pairs {
		k := kv.key
		if k.Kind != yaml.ScalarNode || (k.Tag != tagStr && k.Tag != tagTimestamp) {
			w.fail(k, api.FieldInvalid, path, badValue(k), "keys must be strings (quote them)")
			continue
		}
		p := keyPath(path, k.Value)
		w.lines[p] = k.Line
		if isNull(kv.value) {
			w.fail(kv.value, api.FieldInvalid, p, nil, "must not be null")
			continue
		}
		if v, ok := w.value(kv.value, t.Elem(), p, aliased || kv.aliased); ok {
			out[k.Value] = v
		}
	}
	return out, true
}

func (w *walker) object(n *yaml.Node, t reflect.Type, path string, aliased bool) (any, bool) {
	pairs, ok := w.pairs(n, path, aliased, false)
	if !ok {
		return nil, false
	}
	fields := fieldsOf(t)
	out := make(map[string]any, len(pairs))
	for _, kv := range pairs {
		k := kv.key
		if k.Kind != yaml.ScalarNode {
			w.fail(k, api.FieldInvalid, path, badValue(k), "keys must be field names")
			continue
		}
		name := k.Value
		f, known := fields.byName[name]
		if !known {
			p := childPath(path, name)
			w.lines[p] = k.Line
			w.fail(k, api.FieldUnknown, p, nil, fields.suggest(name))
			continue
		}
		p := childPath(path, name)
		w.lines[p] = k.Line
		if v, ok := w.value(kv.value, f, p, aliased || kv.aliased); ok {
			out[name] = v
		}
	}
	return out, true
}

type pair struct {
	key, value *yaml.Node
	aliased    bool
}

// pairs returns the key/value pairs of a mapping, with merge keys (<<)
// expanded: explicit keys win over merged ones. A key given twice
// explicitly is an error (encoding/json would silently keep the last).
func (w *walker) pairs(n *yaml.Node, path string, aliased, keyed bool) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		w.fail(n, api.FieldInvalid, path, badValue(n), "must be a mapping (key: value)")
		return nil, false
	}
	var out []pair
	seen := map[string]int{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == tagMerge {
			merges = append(merges, v)
			continue
		}
		if k.Kind == yaml.ScalarNode {
			if first, dup := seen[k.Value]; dup {
				p := childPath(path, k.Value)
				if keyed {
					p = keyPath(path, k.Value)
				}
				w.fail(k, api.FieldDuplicate, p, k.Value, fmt.Sprintf("key already given on line %d", first))
				continue
			}
			seen[k.Value] = k.Line
		}
		out = append(out, pair{key: k, value: v, aliased: aliased})
	}
	for _, m := range merges {
		out = w.merge(out, seen, m, path, 0)
	}
	return out, true
}

// merge adds the pairs of a merged mapping (or list of mappings) that are
// not already present. depth guards against an alias cycle.
func (w *walker) merge(out []pair, seen map[string]int, m *yaml.Node, path string, depth int) []pair {
	if depth > 8 {
		w.fail(m, api.FieldInvalid, path, nil, "merge keys (<<) nested too deeply")
		return out
	}
	if m.Kind == yaml.AliasNode && m.Alias != nil {
		m = m.Alias
	}
	switch m.Kind {
	case yaml.SequenceNode:
		for _, item := range m.Content {
			out = w.merge(out, seen, item, path, depth+1)
		}
	case yaml.MappingNode:
		var nested []*yaml.Node
		for i := 0; i+1 < len(m.Content); i += 2 {
			k, v := m.Content[i], m.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == tagMerge {
				nested = append(nested, v)
				continue
			}
			if _, dup := seen[k.Value]; dup {
				continue
			}
			w.aliasNodes++
			seen[k.Value] = k.Line
			out = append(out, pair{key: k, value: v, aliased: true})
		}
		for _, n := range nested {
			out = w.merge(out, seen, n, path, depth+1)
		}
	default:
		w.fail(m, api.FieldInvalid, path, badValue(m), "a merge key (<<) must refer to a mapping or a list of mappings")
	}
	return out
}

// fieldSet is the JSON shape of a struct type.
type fieldSet struct {
	byName map[string]reflect.Type
	names  []string
}

var fieldCache sync.Map // reflect.Type → *fieldSet; derived from types, never changes

func fieldsOf(t reflect.Type) *fieldSet {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{byName: map[string]reflect.Type{}}
	collectFields(t, fs)
	fieldCache.Store(t, fs)
	return fs
}

func collectFields(t reflect.Type, fs *fieldSet) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			collectFields(f.Type, fs)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fs.byName[name] = f.Type
		fs.names = append(fs.names, name)
	}
}

// suggest names the field the user probably meant, or lists the fields.
func (fs *fieldSet) suggest(name string) string {
	best, bestDist := "", 3
	for _, n := range fs.names {
		if strings.EqualFold(n, name) {
			return fmt.Sprintf("did you mean %q?", n)
		}
		if d := editDistance(strings.ToLower(n), strings.ToLower(name)); d < bestDist {
			best, bestDist = n, d
		}
	}
	if best != "" {
		return fmt.Sprintf("did you mean %q?", best)
	}
	names := slices.Clone(fs.names)
	return "known fields are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance, bounded for long inputs.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Paths as api's validation writes them, so that a validation error's
// field finds its line.
func childPath(p, name string) string {
	if p == "" {
		return name
	}
	return p + "." + name
}

func indexPath(p string, i int) string { return p + "[" + strconv.Itoa(i) + "]" }

func keyPath(p, k string) string { return p + "[" + strconv.Quote(k) + "]" }

// deref follows an alias and counts the nodes aliases expand to, against
// the bound on alias bombs (reported once); ok is false past it, or for
// an alias to nothing.
func (w *walker) deref(n *yaml.Node, path string, aliased bool) (*yaml.Node, bool, bool) {
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return n, aliased, false
		}
		n, aliased = n.Alias, true
	}
	if aliased {
		w.aliasNodes++
		if w.aliasNodes > w.maxAliasNodes {
			if !w.aliasReported {
				w.aliasReported = true
				w.fail(n, api.FieldForbidden, path, nil, fmt.Sprintf(
					"aliases expand to more than %d nodes (a YAML alias bomb?)", w.maxAliasNodes))
			}
			return n, aliased, false
		}
	}
	return n, aliased, true
}

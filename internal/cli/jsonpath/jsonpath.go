// Package jsonpath is the subset of kubectl's JSONPath templates that
// `slipway get -o jsonpath=…`, `-o custom-columns=…` and `--sort-by` take,
// evaluated over an object's JSON form (as encoding/json decodes it, with
// UseNumber). It is written here rather than taken from client-go, whose
// jsonpath drags in much of Kubernetes.
//
// The subset:
//
//	text{expr}text      literal text around expressions (no escapes: use {"\n"})
//	{"text"} {'text'}   a string literal, with Go's escapes (\n, \t, \")
//	{.a.b} {$.a.b}      fields; a leading $ or @ is the current object
//	{.a['b.c']}         a field by a quoted name (names with dots or dashes)
//	{.a[0]} {.a[-1]}    an array element, negative from the end
//	{.a[1:3]}           a slice (either bound may be left out)
//	{.a[*]} {.a.*}      every element of an array, or value of a map (by key)
//	{.a[?(@.b=="x")]}   elements for which a filter holds: ==, !=, <, <=, >,
//	                    >= against a quoted string, a number, true, false or
//	                    null; [?(@.b)] keeps those that have b
//	{range .a[*]}…{end} the body once per result, with it as the object
//
// Not supported: recursive descent (..), unions ([0,1]), and functions.
// A path that matches nothing prints nothing (kubectl's default,
// --allow-missing-template-keys=true). Several results of one expression
// are printed separated by spaces; maps and arrays print as JSON.
package jsonpath

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// maxDepth bounds nested ranges and filters, so that no input recurses
// without end.
const maxDepth = 32

// Template is a parsed template.
type Template struct {
	nodes []node
}

type node struct {
	text  string // a literal, unless expr or isRng
	expr  bool   // path is an expression to print
	path  []step // the expression, or what a range ranges over
	body  []node // a range's body
	isRng bool
}

type stepKind int

const (
	stepField stepKind = iota
	stepIndex
	stepSlice
	stepWildcard
	stepFilter
)

type step struct {
	kind       stepKind
	name       string
	index      int
	start, end *int
	filter     *filter
}

type filter struct {
	path  []step
	op    string // "" for "has the field"
	value any    // string, json.Number, bool or nil
}

// Parse reads a template such as `{.metadata.name}` or
// `{range .items[*]}{.metadata.name}{"\n"}{end}`.
func Parse(tmpl string) (*Template, error) {
	p := &parser{}
	nodes, err := p.template(tmpl)
	if err != nil {
		return nil, fmt.Errorf("jsonpath %q: %w", tmpl, err)
	}
	return &Template{nodes: nodes}, nil
}

// ParseExpr reads one expression, with or without braces: `.status.phase`
// or `{.status.phase}`, as custom-columns and --sort-by take them.
func ParseExpr(expr string) (*Template, error) {
	e := strings.TrimSpace(expr)
	if strings.HasPrefix(e, "{") && strings.HasSuffix(e, "}") {
		e = e[1 : len(e)-1]
	}
	path, err := parsePath(e, 0)
	if err != nil {
		return nil, fmt.Errorf("jsonpath %q: %w", expr, err)
	}
	return &Template{nodes: []node{{expr: true, path: path}}}, nil
}

type parser struct {
	depth int
}

// template splits text and {expressions}, nesting ranges up to their end.
func (p *parser) template(s string) ([]node, error) {
	type frame struct {
		nodes []node
		path  []step
	}
	stack := []frame{{}}
	for len(s) > 0 {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			stack[len(stack)-1].nodes = append(stack[len(stack)-1].nodes, node{text: s})
			break
		}
		if i > 0 {
			stack[len(stack)-1].nodes = append(stack[len(stack)-1].nodes, node{text: s[:i]})
		}
		j, err := closingBrace(s, i)
		if err != nil {
			return nil, err
		}
		expr := strings.TrimSpace(s[i+1 : j])
		s = s[j+1:]
		switch {
		case expr == "end":
			if len(stack) == 1 {
				return nil, fmt.Errorf("{end} without a {range}")
			}
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			top := &stack[len(stack)-1]
			top.nodes = append(top.nodes, node{path: f.path, body: f.nodes, isRng: true})
		case strings.HasPrefix(expr, "range ") || strings.HasPrefix(expr, "range\t"):
			if len(stack) > maxDepth {
				return nil, fmt.Errorf("ranges nested deeper than %d", maxDepth)
			}
			path, err := parsePath(strings.TrimSpace(expr[len("range"):]), 0)
			if err != nil {
				return nil, err
			}
			stack = append(stack, frame{path: path})
		case strings.HasPrefix(expr, `"`) || strings.HasPrefix(expr, "'"):
			lit, err := unquote(expr)
			if err != nil {
				return nil, err
			}
			stack[len(stack)-1].nodes = append(stack[len(stack)-1].nodes, node{text: lit})
		default:
			path, err := parsePath(expr, 0)
			if err != nil {
				return nil, err
			}
			stack[len(stack)-1].nodes = append(stack[len(stack)-1].nodes, node{expr: true, path: path})
		}
	}
	if len(stack) != 1 {
		return nil, fmt.Errorf("{range} without an {end}")
	}
	return stack[0].nodes, nil
}

// outsideQuotes calls f with the index of each byte of s from start on
// that is not quoted text (nor a quote), until f says stop; it returns
// that index, or -1.
func outsideQuotes(s string, start int, f func(j int) (stop bool)) int {
	var quote byte
	for j := start; j < len(s); j++ {
		c := s[j]
		switch {
		case quote != 0 && c == '\\':
			j++
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
		case c == '"' || c == '\'':
			quote = c
		case f(j):
			return j
		}
	}
	return -1
}

// closingBrace finds the } that closes the { at i, skipping quoted text.
func closingBrace(s string, i int) (int, error) {
	j := outsideQuotes(s, i+1, func(j int) bool { return s[j] == '{' || s[j] == '}' })
	switch {
	case j < 0:
		return 0, fmt.Errorf("unclosed { at offset %d", i)
	case s[j] == '{':
		return 0, fmt.Errorf("unexpected { inside an expression at offset %d", j)
	}
	return j, nil
}

func unquote(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != s[0] {
		return "", fmt.Errorf("unterminated string %s", s)
	}
	if s[0] == '\'' {
		// Go's single quotes are runes: swap to double quotes for Unquote.
		inner := strings.ReplaceAll(s[1:len(s)-1], `"`, `\"`)
		inner = strings.ReplaceAll(inner, `\'`, `'`)
		s = `"` + inner + `"`
	}
	out, err := strconv.Unquote(s)
	if err != nil {
		return "", fmt.Errorf("bad string %s", s)
	}
	return out, nil
}

// parsePath reads `$.a.b[0]['c'][*][?(@.d=="e")]` and friends.
func parsePath(s string, depth int) ([]step, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("filters nested deeper than %d", maxDepth)
	}
	if s == "" {
		return nil, fmt.Errorf("empty expression")
	}
	if s[0] == '$' || s[0] == '@' {
		s = s[1:]
	} else if s[0] != '.' && s[0] != '[' {
		s = "." + s // kubectl takes {metadata.name} too
	}
	var steps []step
	for len(s) > 0 {
		switch s[0] {
		case '.':
			if strings.HasPrefix(s, "..") {
				return nil, fmt.Errorf("recursive descent (..) is not supported")
			}
			s = s[1:]
			if strings.HasPrefix(s, "*") {
				steps, s = append(steps, step{kind: stepWildcard}), s[1:]
				continue
			}
			n := 0
			for n < len(s) && isNameByte(s[n]) {
				n++
			}
			if n == 0 {
				if s == "" && len(steps) == 0 {
					return steps, nil // {.} or {$.}: the object itself
				}
				return nil, fmt.Errorf("missing field name after . in %q", s)
			}
			steps, s = append(steps, step{kind: stepField, name: s[:n]}), s[n:]
		case '[':
			st, rest, err := bracket(s, depth)
			if err != nil {
				return nil, err
			}
			steps, s = append(steps, st), rest
		default:
			return nil, fmt.Errorf("unexpected %q", s)
		}
	}
	return steps, nil
}

func isNameByte(c byte) bool {
	return c == '_' || c == '-' || c == '/' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// bracket reads one [...] step at the start of s.
func bracket(s string, depth int) (step, string, error) {
	if strings.HasPrefix(s, "[?(") {
		j, err := closingBracket(s)
		if err != nil {
			return step{}, "", err
		}
		inner := s[3:j]
		if !strings.HasSuffix(inner, ")") {
			return step{}, "", fmt.Errorf("filter %q must end with )]", s[:j+1])
		}
		f, err := parseFilter(strings.TrimSpace(inner[:len(inner)-1]), depth)
		if err != nil {
			return step{}, "", err
		}
		return step{kind: stepFilter, filter: f}, s[j+1:], nil
	}
	j, err := closingBracket(s)
	if err != nil {
		return step{}, "", err
	}
	inner, rest := strings.TrimSpace(s[1:j]), s[j+1:]
	switch {
	case inner == "*":
		return step{kind: stepWildcard}, rest, nil
	case strings.HasPrefix(inner, `"`) || strings.HasPrefix(inner, "'"):
		name, err := unquote(inner)
		if err != nil {
			return step{}, "", err
		}
		return step{kind: stepField, name: name}, rest, nil
	case strings.Contains(inner, ":"):
		a, b, _ := strings.Cut(inner, ":")
		if strings.Contains(b, ":") {
			return step{}, "", fmt.Errorf("slice steps ([a:b:c]) are not supported")
		}
		st := step{kind: stepSlice}
		for _, x := range []struct {
			text string
			dst  **int
		}{{a, &st.start}, {b, &st.end}} {
			if t := strings.TrimSpace(x.text); t != "" {
				n, err := strconv.Atoi(t)
				if err != nil {
					return step{}, "", fmt.Errorf("bad slice bound %q", t)
				}
				*x.dst = &n
			}
		}
		return st, rest, nil
	case strings.Contains(inner, ","):
		return step{}, "", fmt.Errorf("unions ([a,b]) are not supported")
	}
	n, err := strconv.Atoi(inner)
	if err != nil {
		return step{}, "", fmt.Errorf("bad index [%s]: use a number, *, a quoted name or ?(filter)", inner)
	}
	return step{kind: stepIndex, index: n}, rest, nil
}

// closingBracket finds the ] closing the [ at s[0], skipping quoted text
// and nested brackets (a filter's own path).
func closingBracket(s string) (int, error) {
	depth := 0
	j := outsideQuotes(s, 0, func(j int) bool {
		switch s[j] {
		case '[':
			depth++
		case ']':
			depth--
		}
		return depth == 0
	})
	if j < 0 {
		return 0, fmt.Errorf("unclosed [ in %q", s)
	}
	return j, nil
}

var ops = []string{"==", "!=", "<=", ">=", "<", ">"}

// parseFilter reads `@.a.b == "x"` or `@.a`.
func parseFilter(s string, depth int) (*filter, error) {
	if !strings.HasPrefix(s, "@") {
		return nil, fmt.Errorf("a filter must start with @: %q", s)
	}
	// The operator is the first one outside quotes and brackets.
	nest := 0
	var op string
	i := outsideQuotes(s, 0, func(j int) bool {
		switch s[j] {
		case '[':
			nest++
		case ']':
			nest--
		}
		if nest != 0 {
			return false
		}
		for _, o := range ops {
			if strings.HasPrefix(s[j:], o) {
				op = o
				return true
			}
		}
		return false
	})
	if i >= 0 {
		path, err := parsePath(strings.TrimSpace(s[:i]), depth+1)
		if err != nil {
			return nil, err
		}
		v, err := literal(strings.TrimSpace(s[i+len(op):]))
		if err != nil {
			return nil, err
		}
		return &filter{path: path, op: op, value: v}, nil
	}
	path, err := parsePath(s, depth+1)
	if err != nil {
		return nil, err
	}
	return &filter{path: path}, nil
}

func literal(s string) (any, error) {
	switch {
	case s == "true":
		return true, nil
	case s == "false":
		return false, nil
	case s == "null":
		return nil, nil
	case strings.HasPrefix(s, `"`) || strings.HasPrefix(s, "'"):
		return unquote(s)
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return nil, fmt.Errorf("bad value %q in a filter: use a quoted string, a number, true, false or null", s)
	}
	return json.Number(s), nil
}

// Execute writes the template applied to data.
func (t *Template) Execute(w io.Writer, data any) error {
	var b bytes.Buffer
	if err := execute(&b, t.nodes, data); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

func execute(b *bytes.Buffer, nodes []node, data any) error {
	for _, n := range nodes {
		switch {
		case n.isRng:
			for _, v := range eval(n.path, []any{data}) {
				if err := execute(b, n.body, v); err != nil {
					return err
				}
			}
		case n.expr:
			for i, v := range eval(n.path, []any{data}) {
				if i > 0 {
					b.WriteByte(' ')
				}
				if err := format(b, v); err != nil {
					return err
				}
			}
		default:
			b.WriteString(n.text)
		}
	}
	return nil
}

// Values evaluates a template of one expression (ParseExpr's) and returns
// its results.
func (t *Template) Values(data any) []any {
	if len(t.nodes) != 1 {
		return nil
	}
	return eval(t.nodes[0].path, []any{data})
}

// Text is one value as the template prints it.
func Text(v any) string {
	var b bytes.Buffer
	if err := format(&b, v); err != nil {
		return ""
	}
	return b.String()
}

func format(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
	case string:
		b.WriteString(x)
	case json.Number:
		b.WriteString(x.String())
	case bool:
		b.WriteString(strconv.FormatBool(x))
	default:
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			return err
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
	return nil
}

func eval(steps []step, cur []any) []any {
	for _, st := range steps {
		var next []any
		for _, v := range cur {
			next = apply(st, v, next)
		}
		cur = next
	}
	return cur
}

func apply(st step, v any, out []any) []any {
	switch st.kind {
	case stepField:
		if m, ok := v.(map[string]any); ok {
			if x, ok := m[st.name]; ok {
				out = append(out, x)
			}
		}
	case stepIndex:
		if a, ok := v.([]any); ok {
			i := st.index
			if i < 0 {
				i += len(a)
			}
			if i >= 0 && i < len(a) {
				out = append(out, a[i])
			}
		}
	case stepSlice:
		if a, ok := v.([]any); ok {
			lo, hi := bound(st.start, 0, len(a)), bound(st.end, len(a), len(a))
			if lo < hi {
				out = append(out, a[lo:hi]...)
			}
		}
	case stepWildcard:
		switch x := v.(type) {
		case []any:
			out = append(out, x...)
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(x)) {
				out = append(out, x[k])
			}
		}
	case stepFilter:
		if a, ok := v.([]any); ok {
			for _, e := range a {
				if st.filter.holds(e) {
					out = append(out, e)
				}
			}
		}
	}
	return out
}

func bound(p *int, def, n int) int {
	if p == nil {
		return def
	}
	i := *p
	if i < 0 {
		i += n
	}
	return min(max(i, 0), n)
}

func (f *filter) holds(v any) bool {
	got := eval(f.path, []any{v})
	if f.op == "" {
		return len(got) > 0 && got[0] != nil
	}
	if len(got) == 0 {
		return f.op == "!="
	}
	c, ok := compare(got[0], f.value)
	switch f.op {
	case "==":
		return ok && c == 0
	case "!=":
		return !ok || c != 0
	case "<":
		return ok && c < 0
	case "<=":
		return ok && c <= 0
	case ">":
		return ok && c > 0
	case ">=":
		return ok && c >= 0
	}
	return false
}

// Compare orders two values: numbers as numbers, strings as strings, false
// before true, nil before anything; ok is false for values of different
// kinds (or maps and arrays), which --sort-by then orders by their text.
func Compare(a, b any) (c int, ok bool) { return compare(a, b) }

func compare(a, b any) (int, bool) {
	switch x := a.(type) {
	case nil:
		if b == nil {
			return 0, true
		}
		return -1, false
	case string:
		if y, ok := b.(string); ok {
			return strings.Compare(x, y), true
		}
	case json.Number:
		if y, ok := b.(json.Number); ok {
			fx, ex := x.Float64()
			fy, ey := y.Float64()
			if ex != nil || ey != nil {
				return strings.Compare(x.String(), y.String()), true
			}
			switch {
			case fx < fy:
				return -1, true
			case fx > fy:
				return 1, true
			}
			return 0, true
		}
	case bool:
		if y, ok := b.(bool); ok {
			switch {
			case x == y:
				return 0, true
			case !x:
				return -1, true
			}
			return 1, true
		}
	}
	return 0, false
}

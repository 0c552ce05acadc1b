// Package manifest reads Slipway objects from YAML and JSON manifests and
// writes them back. Reading is strict (unknown fields, wrong types and
// duplicate keys are errors), bounded (size, documents, nesting, aliases) and
// thorough: every problem of every document is reported at once, each with
// its file, line, object, field path, bad value and rule.
package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
)

// Limits on a manifest file. They keep a hostile or mistaken input from
// costing more than a moment and a few megabytes.
const (
	// MaxBytes bounds the size of one manifest file.
	MaxBytes = 4 << 20
	// MaxDocuments bounds the number of documents (and List items) of a file.
	MaxDocuments = 10000
	// MaxDepth bounds the nesting of mappings and lists; real manifests stay
	// under 20.
	MaxDepth = 64
	// MaxAliasNodes bounds the nodes reached through YAML aliases in a file,
	// which is what defuses "billion laughs" alias bombs.
	MaxAliasNodes = 100000
	// MaxProblems bounds the problems reported for one file, so that a
	// hostile file cannot make its error message the attack.
	MaxProblems = 1000
)

// Document is one object read from a manifest.
type Document struct {
	Object api.Object
	// Index is the 0-based index of the document in the file; the items
	// of a List share the index of their List.
	Index int
	// Line is the first line of the object.
	Line int
	// Source is the file name given to Decode.
	Source string
}

// Options changes how Decode fills objects.
type Options struct {
	// Project is given to objects whose metadata names none; empty means
	// api.DefaultProject. (The CLI's --project.)
	Project string
}

// Decode reads every object of a manifest, applies defaults and validates
// them. filename is used in messages only. If anything is wrong with any
// document, Decode returns no documents and an *Error listing every problem.
func Decode(filename string, data []byte) ([]Document, error) {
	return Options{}.Decode(filename, data)
}

// Decode is Decode with options.
func (o Options) Decode(filename string, data []byte) ([]Document, error) {
	d := &decoder{file: filename, opts: o}
	if len(data) > MaxBytes {
		d.problem(Problem{Message: fmt.Sprintf("manifest is %s, larger than the %d MiB limit", mib(len(data)), MaxBytes>>20)})
		return nil, d.err()
	}
	docs, serr := parse(filename, data)
	for i, doc := range docs {
		d.document(i, doc)
	}
	if serr != nil {
		var se *syntaxError
		line := 0
		msg := serr.Error()
		if errors.As(serr, &se) {
			line = se.line
		}
		d.problem(Problem{Line: line, Doc: len(docs), Message: msg})
	}
	if len(d.problems) > 0 {
		// Schema problems are found before validation ones; read in file order.
		sort.SliceStable(d.problems, func(i, j int) bool {
			a, b := d.problems[i], d.problems[j]
			if a.Doc != b.Doc {
				return a.Doc < b.Doc
			}
			return a.Line < b.Line
		})
		if d.dropped > 0 {
			d.problems = append(d.problems, Problem{File: d.file, Doc: -1,
				Message: fmt.Sprintf("%d more problems not shown (the first %d are above)", d.dropped, MaxProblems)})
		}
		return nil, d.err()
	}
	return d.docs, nil
}

func mib(n int) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// parse splits a file into document nodes; a syntax error stops it, after
// the documents before it.
func parse(filename string, data []byte) ([]*yaml.Node, error) {
	if isJSON(filename, data) {
		// encoding/json refuses a byte order mark; it holds no newline,
		// so lines stay true without it.
		return jsonDocs(bytes.TrimPrefix(data, utf8BOM), MaxDepth, MaxDocuments)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return docs, yamlError(err)
		}
		if len(docs) == MaxDocuments {
			return docs, &syntaxError{line: n.Line, msg: fmt.Sprintf("more than %d documents", MaxDocuments)}
		}
		if line, ok := tooDeep(&n, 0); ok {
			return docs, &syntaxError{line: line, msg: fmt.Sprintf("nesting deeper than %d levels", MaxDepth)}
		}
		docs = append(docs, &n)
	}
}

var utf8BOM = []byte("\xef\xbb\xbf")

// isJSON says whether to read data as JSON: a .json file, or content that
// is one valid JSON value starting with '{'.
func isJSON(filename string, data []byte) bool {
	if strings.HasSuffix(strings.ToLower(filename), ".json") {
		return true
	}
	t := bytes.TrimLeft(bytes.TrimPrefix(data, utf8BOM), " \t\r\n")
	return len(t) > 0 && t[0] == '{' && json.Valid(data)
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its
// scanner), whose "line N" is 0-based where the scanner's is 1-based.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %YAML directive":        true,
	"found duplicate %TAG directive":         true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// yamlError turns the parser's "yaml: line 4: did not find..." into a line
// and a message.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, err := fmt.Sscanf(n, "%d", &line); err == nil {
				msg = after
			}
		}
	}
	if parserProblems[msg] {
		line++
	}
	return &syntaxError{line: line, msg: "invalid YAML: " + msg}
}

// tooDeep finds a node nested deeper than MaxDepth, without following aliases.
func tooDeep(n *yaml.Node, depth int) (int, bool) {
	if depth > MaxDepth {
		return n.Line, true
	}
	for _, c := range n.Content {
		if line, ok := tooDeep(c, depth+1); ok {
			return line, true
		}
	}
	return 0, false
}

type decoder struct {
	file     string
	opts     Options
	docs     []Document
	problems []Problem
	// aliasNodes is shared by the documents of the file.
	aliasNodes int
	objects    int
	dropped    int // problems beyond MaxProblems
}

func (d *decoder) problem(p Problem) {
	if len(d.problems) >= MaxProblems {
		d.dropped++
		return
	}
	p.File = d.file
	d.problems = append(d.problems, p)
}

func (d *decoder) err() error { return &Error{Problems: d.problems} }

func (d *decoder) document(index int, doc *yaml.Node) {
	if len(doc.Content) == 0 || isNull(doc.Content[0]) {
		return // an empty document, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.AliasNode && root.Alias != nil {
		root = root.Alias
	}
	if root.Kind != yaml.MappingNode {
		d.problem(Problem{Line: root.Line, Doc: index, Message: "a document must be an object (a mapping with apiVersion, kind, metadata...), not " + describe(root)})
		return
	}
	if kind := scalarField(root, "kind"); kind == "List" {
		d.list(index, root)
		return
	}
	d.object(index, root, false)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list (use kind: List with items, or separate YAML documents with ---)"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %q", truncate(n.Value, 40))
	}
	return "this"
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// scalarField returns the value of a scalar field of a mapping, or "".
func scalarField(m *yaml.Node, name string) string {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k, v := m.Content[i], m.Content[i+1]; k.Value == name && v.Kind == yaml.ScalarNode {
			return v.Value
		}
	}
	return ""
}

// list reads a `kind: List` of objects, as kubectl writes them.
func (d *decoder) list(index int, root *yaml.Node) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "kind", "metadata":
		case "apiVersion":
			if v.Value != "v1" && v.Value != api.Version {
				d.problem(Problem{Line: k.Line, Doc: index, Kind: "List", Field: "apiVersion",
					Message: fmt.Sprintf("Unsupported value: %q: supported values: \"v1\", %q", v.Value, api.Version)})
			}
		case "items":
			if v.Kind != yaml.SequenceNode {
				d.problem(Problem{Line: k.Line, Doc: index, Kind: "List", Field: "items", Message: "Invalid value: must be a list of objects"})
				continue
			}
			for _, item := range v.Content {
				if item.Kind == yaml.AliasNode && item.Alias != nil {
					item = item.Alias
				}
				if item.Kind != yaml.MappingNode {
					d.problem(Problem{Line: item.Line, Doc: index, Message: "a List item must be an object, not " + describe(item)})
					continue
				}
				d.object(index, item, true)
			}
		default:
			d.problem(Problem{Line: k.Line, Doc: index, Kind: "List", Field: k.Value,
				Message: "Unknown field: a List has apiVersion, kind, metadata and items"})
		}
	}
}

func (d *decoder) object(index int, root *yaml.Node, inList bool) {
	d.objects++
	if d.objects > MaxDocuments {
		if d.objects == MaxDocuments+1 {
			d.problem(Problem{Line: root.Line, Doc: index, Message: fmt.Sprintf("more than %d objects", MaxDocuments)})
		}
		return
	}
	name := ""
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "metadata" && root.Content[i+1].Kind == yaml.MappingNode {
			name = scalarField(root.Content[i+1], "name")
		}
	}
	kindName := scalarField(root, "kind")
	info, ok := kindByName(kindName)
	if !ok {
		p := Problem{Line: root.Line, Doc: index, Name: name, Field: "kind"}
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "kind" {
				p.Line = root.Content[i].Line
			}
		}
		supported := make([]string, len(api.Kinds))
		for i, k := range api.Kinds {
			supported[i] = fmt.Sprintf("%q", k.Kind)
		}
		switch {
		case kindName == "":
			p.Message = "Required value: one of " + strings.Join(supported, ", ")
		case kindName == "List" && inList:
			p.Message = "Invalid value: \"List\": a List may not contain a List"
		default:
			p.Message = fmt.Sprintf("Unsupported value: %q: supported values: %s", kindName, strings.Join(supported, ", "))
			if k, ok := api.LookupKind(kindName); ok {
				p.Message += fmt.Sprintf(" (did you mean %q?)", k.Kind)
			}
		}
		d.problem(p)
		return
	}

	obj := info.NewObject()
	redact := ""
	if info.Kind == "Secret" {
		redact = "data"
	}
	w := newWalker(redact, MaxAliasNodes-d.aliasNodes)
	val, _ := w.value(root, reflect.TypeOf(obj).Elem(), "", false)
	d.aliasNodes += w.aliasNodes

	at := func(field string, line int) Problem {
		if line == 0 {
			line = lineOf(w.lines, field, root.Line)
		}
		return Problem{Line: line, Doc: index, Kind: info.Kind, Name: name, Field: field}
	}
	var failed []string
	for _, we := range w.errs {
		p := at(we.err.Field, we.line)
		p.Message = strings.TrimPrefix(we.err.Error(), we.err.Field+": ")
		d.problem(p)
		failed = append(failed, we.err.Field)
	}

	b, err := json.Marshal(val)
	if err == nil {
		jd := json.NewDecoder(bytes.NewReader(b))
		jd.DisallowUnknownFields()
		err = jd.Decode(obj)
	}
	if err != nil {
		// The walk should have caught it; say what encoding/json saw.
		p := at("", root.Line)
		p.Message = "cannot decode: " + strings.TrimPrefix(err.Error(), "json: ")
		d.problem(p)
		return
	}
	if name == "" {
		name = obj.GetMeta().Name
	}
	if m := obj.GetMeta(); m.Project == "" && info.Projects && d.opts.Project != "" {
		m.Project = d.opts.Project
	}
	api.SetDefaults(obj)
	for _, fe := range validation.Validate(obj) {
		if under(fe.Field, failed) {
			continue // already reported, as a wrong type or unknown field
		}
		p := at(fe.Field, 0)
		p.Message = strings.TrimPrefix(fe.Error(), fe.Field+": ")
		d.problem(p)
	}
	if len(d.problems) == 0 {
		d.docs = append(d.docs, Document{Object: obj, Index: index, Line: root.Line, Source: d.file})
	}
}

// kindByName finds a kind by its exact name: manifests spell kinds as the
// API does (App, not app).
func kindByName(name string) (api.KindInfo, bool) {
	for _, k := range api.Kinds {
		if k.Kind == name {
			return k, true
		}
	}
	return api.KindInfo{}, false
}

// lineOf finds the line of a field, else of its nearest ancestor that has
// one (a missing required field is reported on its parent's line).
func lineOf(lines map[string]int, field string, fallback int) int {
	for p := field; p != ""; {
		if l, ok := lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return fallback
}

// under reports whether field is one of paths or inside one of them.
func under(field string, paths []string) bool {
	for _, p := range paths {
		if field == p || strings.HasPrefix(field, p+".") || strings.HasPrefix(field, p+"[") {
			return true
		}
	}
	return false
}

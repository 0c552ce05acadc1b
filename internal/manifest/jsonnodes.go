package manifest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// JSON is read with encoding/json rather than the YAML parser: YAML 1.2 is
// not quite a superset of JSON as parsers implement it (yaml.v3 refuses the
// `\/` escape, for one). The tokens become yaml.Nodes with their lines so
// that the schema walk and the error lines work the same for both forms.

// lineIndex turns byte offsets into 1-based line numbers.
type lineIndex []int // offsets at which each line starts

func newLineIndex(data []byte) lineIndex {
	idx := lineIndex{0}
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

func (l lineIndex) line(offset int64) int {
	return sort.Search(len(l), func(i int) bool { return int64(l[i]) > offset })
}

// jsonDocs parses a stream of JSON values into document nodes.
func jsonDocs(data []byte, maxDepth, maxDocs int) ([]*yaml.Node, error) {
	b := &jsonBuilder{dec: json.NewDecoder(bytes.NewReader(data)), lines: newLineIndex(data), maxDepth: maxDepth}
	b.dec.UseNumber()
	var docs []*yaml.Node
	for {
		n, err := b.node(0)
		if err == io.EOF {
			return docs, nil
		}
		if err != nil {
			return docs, b.explain(err)
		}
		if len(docs) == maxDocs {
			return docs, &syntaxError{line: n.Line, msg: fmt.Sprintf("more than %d documents", maxDocs)}
		}
		docs = append(docs, &yaml.Node{Kind: yaml.DocumentNode, Line: n.Line, Column: 1, Content: []*yaml.Node{n}})
	}
}

// syntaxError is a problem that stops the reading of a file at a line.
type syntaxError struct {
	line int
	msg  string
}

func (e *syntaxError) Error() string { return e.msg }

type jsonBuilder struct {
	dec      *json.Decoder
	lines    lineIndex
	maxDepth int
}

func (b *jsonBuilder) explain(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return se
	}
	line := b.lines.line(b.dec.InputOffset())
	var jerr *json.SyntaxError
	if errors.As(err, &jerr) {
		line = b.lines.line(jerr.Offset)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if err == io.ErrUnexpectedEOF {
		msg = "unexpected end of JSON input"
	}
	return &syntaxError{line: line, msg: "invalid JSON: " + msg}
}

func (b *jsonBuilder) node(depth int) (*yaml.Node, error) {
	tok, err := b.dec.Token()
	if err == io.EOF && depth > 0 {
		return nil, io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, err
	}
	// Tokens never span lines (JSON strings hold no raw newline), so the
	// offset just past one is on its line.
	line := b.lines.line(max(b.dec.InputOffset()-1, 0))
	n := &yaml.Node{Line: line, Column: 1}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= b.maxDepth {
			return nil, &syntaxError{line: line, msg: fmt.Sprintf("nesting deeper than %d levels", b.maxDepth)}
		}
		if t == '{' {
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
		} else {
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
		}
		for b.dec.More() {
			if t == '{' {
				k, err := b.node(depth + 1) // a string key
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, k)
			}
			v, err := b.node(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Content = append(n.Content, v)
		}
		if _, err := b.dec.Token(); err != nil { // the closing delimiter
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	case string:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, tagStr, t
	case json.Number:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, tagInt, string(t)
		if strings.ContainsAny(string(t), ".eE") {
			n.Tag = tagFloat
		}
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, tagBool, fmt.Sprint(t)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, tagNull, "null"
	}
	return n, nil
}

package manifest

import (
	"strconv"
	"strings"
)

// Error is every problem found in a manifest file: syntax, schema and
// validation problems of all its documents.
type Error struct {
	Problems []Problem
}

// Error renders one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Problem is one thing wrong with a manifest, located as precisely as known.
type Problem struct {
	File string
	// Line is the 1-based line of the offending field when known, else of
	// its document; 0 for problems of the whole file (its size).
	Line int
	// Doc is the 0-based index of the document in the file (-1 on the
	// closing note that problems beyond MaxProblems were left out).
	Doc int
	// Kind and Name identify the object when they could be read.
	Kind string
	Name string
	// Field is the path of the offending field, such as spec.replicas;
	// empty for syntax problems.
	Field string
	// Message is the rest: `Invalid value: -1: must be greater than or equal to 0`.
	Message string
}

// String renders `app.yaml:7: App "hello": spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Kind != "" {
		b.WriteString(p.Kind)
		if p.Name != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(p.Name))
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

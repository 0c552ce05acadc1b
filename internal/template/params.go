package template

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// Value is the value a parameter got and where it came from (one of the
// api.Param* sources).
type Value struct {
	Name   string
	Value  string
	Source string
	// Generator is the expression of a generated parameter.
	Generator string
}

var paramName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// MaxValueBytes bounds a parameter's value.
const MaxValueBytes = 64 << 10

// refs lists the parameters a string names with ${NAME} or ${{NAME}}, in
// order, each once, keeping only the names in known.
func refs(s string, known map[string]int) []string {
	var out []string
	for _, m := range refPattern.FindAllStringSubmatch(s, -1) {
		n := m[1]
		if n == "" {
			n = m[2]
		}
		if _, ok := known[n]; ok && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// refPattern matches ${NAME} and ${{NAME}}.
var refPattern = regexp.MustCompile(`\$\{\{([A-Za-z_][A-Za-z0-9_]*)\}\}|\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// resolve gives every parameter its value: given (-p), kept (from a
// previous apply), the template's value (in which ${OTHER} is
// substituted), or generated. Every problem is added to errs.
func resolve(t *api.Template, o Options, errs *api.FieldErrors) []Value {
	add := func(typ, field string, bad any, detail string) {
		*errs = append(*errs, &api.FieldError{Type: typ, Field: field, BadValue: bad, Detail: detail})
	}
	index := map[string]int{}
	exprs := map[string]*Expression{}
	for i, p := range t.Parameters {
		f := fmt.Sprintf("parameters[%d]", i)
		switch {
		case p.Name == "":
			add(api.FieldRequired, f+".name", nil, "")
			continue
		case !paramName.MatchString(p.Name):
			add(api.FieldInvalid, f+".name", p.Name, "must be letters, digits and _, not starting with a digit")
			continue
		}
		if j, dup := index[p.Name]; dup {
			add(api.FieldDuplicate, f+".name", p.Name, fmt.Sprintf("parameters[%d] has the same name", j))
			continue
		}
		index[p.Name] = i
		switch p.Generate {
		case "":
		case api.GenerateExpression:
			e, err := ParseExpression(p.From)
			if err != nil {
				add(api.FieldInvalid, f+".from", p.From, err.Error())
				continue
			}
			exprs[p.Name] = e
		default:
			add(api.FieldUnsupported, f+".generate", p.Generate, `"expression"`)
		}
		if len(p.Value) > MaxValueBytes {
			add(api.FieldTooLong, f+".value", nil, fmt.Sprintf("may not be longer than %d bytes", MaxValueBytes))
		}
	}

	var unknown []string
	for n, v := range o.Params {
		if _, ok := index[n]; !ok {
			unknown = append(unknown, n)
		}
		if len(v) > MaxValueBytes {
			add(api.FieldTooLong, "parameters "+n, nil, fmt.Sprintf("a value may not be longer than %d bytes", MaxValueBytes))
		}
	}
	sort.Strings(unknown)
	for _, n := range unknown {
		add(api.FieldNotFound, "parameters "+n, n, "the template has no such parameter; "+knownParams(t, n))
	}

	values := make([]Value, len(t.Parameters))
	state := make([]int, len(t.Parameters)) // 0 unvisited, 1 resolving, 2 done
	var visit func(i int, path []string)
	visit = func(i int, path []string) {
		p := t.Parameters[i]
		switch state[i] {
		case 2:
			return
		case 1:
			loop := append(path[slices.Index(path, p.Name):], p.Name)
			add(api.FieldInvalid, fmt.Sprintf("parameters[%d].value", i), p.Value,
				"parameters refer to each other in a loop: "+strings.Join(loop, " → "))
			return
		}
		state[i] = 1
		v := Value{Name: p.Name, Generator: p.From}
		if exprs[p.Name] == nil {
			v.Generator = ""
		}
		if given, ok := o.Params[p.Name]; ok {
			v.Value, v.Source = given, api.ParamGiven
		} else if kept, ok := o.Kept[p.Name]; ok {
			v.Value, v.Source = kept, api.ParamKept
		} else if p.Value != "" {
			// A default may refer to other parameters: "${NAME}-db".
			for _, r := range refs(p.Value, index) {
				visit(index[r], append(path, p.Name))
			}
			v.Value, v.Source = substitute(p.Value, values, index), api.ParamDefault
		} else if e := exprs[p.Name]; e != nil {
			g, err := e.Generate(o.Rand)
			if err != nil {
				add(api.FieldInvalid, fmt.Sprintf("parameters[%d].from", i), p.From, err.Error())
			}
			v.Value, v.Source = g, api.ParamGenerated
		}
		if p.Required && v.Value == "" {
			add(api.FieldRequired, fmt.Sprintf("parameters[%d].value", i), nil,
				fmt.Sprintf("parameter %s is required and has no value: give it with -p %s=…", p.Name, p.Name))
		}
		values[i] = v
		state[i] = 2
	}
	for i, p := range t.Parameters {
		if _, ok := index[p.Name]; ok && index[p.Name] == i {
			visit(i, nil)
		}
	}
	return values
}

// knownParams names the parameter n was probably meant to be, or lists them.
func knownParams(t *api.Template, n string) string {
	var names []string
	for _, p := range t.Parameters {
		if strings.EqualFold(p.Name, n) {
			return fmt.Sprintf("did you mean %s?", p.Name)
		}
		names = append(names, p.Name)
	}
	if len(names) == 0 {
		return "it takes none"
	}
	return "its parameters are " + strings.Join(names, ", ")
}

// substitute replaces ${NAME} and ${{NAME}} of known parameters inside s;
// other references (a shell's ${HOME}) stay as written.
func substitute(s string, values []Value, index map[string]int) string {
	if !strings.Contains(s, "${") {
		return s
	}
	return refPattern.ReplaceAllStringFunc(s, func(m string) string {
		n := strings.Trim(m, "${}")
		if i, ok := index[n]; ok {
			return values[i].Value
		}
		return m
	})
}

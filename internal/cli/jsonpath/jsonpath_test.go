package jsonpath

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const sample = `{
  "kind": "List",
  "items": [
    {"metadata": {"name": "hello", "labels": {"app": "hello", "slipway.dev/tier": "web"}},
     "spec": {"replicas": 2},
     "status": {"phase": "Healthy", "conditions": [{"type": "Ready", "status": "True"}, {"type": "Progressing", "status": "False"}]}},
    {"metadata": {"name": "worker"},
     "spec": {"replicas": 10, "paused": true},
     "status": {"phase": "Paused"}}
  ]
}`

func decode(t testing.TB, s string) any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestExecute(t *testing.T) {
	data := decode(t, sample)
	cases := []struct{ tmpl, want string }{
		{`{.kind}`, "List"},
		{`{$.kind}`, "List"},
		{`kind={.kind}!`, "kind=List!"},
		{`{.items[*].metadata.name}`, "hello worker"},
		{`{.items[0].metadata.name}`, "hello"},
		{`{.items[-1].metadata.name}`, "worker"},
		{`{.items[5].metadata.name}`, ""},
		{`{.items[0:1].metadata.name}`, "hello"},
		{`{.items[1:].spec.replicas}`, "10"},
		{`{.items[*].spec.paused}`, "true"},
		{`{.items[0].metadata.labels['slipway.dev/tier']}`, "web"},
		{`{.items[0].metadata.labels["app"]}`, "hello"},
		{`{.items[0].metadata.labels.*}`, "hello web"},
		{`{.items[0].spec}`, `{"replicas":2}`},
		{`{.items[0].status.conditions[?(@.type=="Ready")].status}`, "True"},
		{`{.items[0].status.conditions[?(@.type != 'Ready')].type}`, "Progressing"},
		{`{.items[?(@.spec.replicas > 5)].metadata.name}`, "worker"},
		{`{.items[?(@.spec.replicas<=2)].metadata.name}`, "hello"},
		{`{.items[?(@.spec.paused)].metadata.name}`, "worker"},
		{`{.items[?(@.spec.paused==true)].metadata.name}`, "worker"},
		{`{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}`, "hello\tHealthy\nworker\tPaused\n"},
		{`{range .items[*]}[{range .status.conditions[*]}{.type},{end}]{end}`, "[Ready,Progressing,][]"},
		{`{.missing.field}`, ""},
		{`{"a}b"}`, "a}b"},
	}
	for _, c := range cases {
		tm, err := Parse(c.tmpl)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.tmpl, err)
			continue
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, data); err != nil {
			t.Errorf("Execute(%q): %v", c.tmpl, err)
			continue
		}
		if b.String() != c.want {
			t.Errorf("%s = %q, want %q", c.tmpl, b.String(), c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tmpl := range []string{
		`{`, `{.a`, `{.a[}`, `{.a[0}`, `{..a}`, `{.a[0,1]}`, `{.a[x]}`, `{end}`, `{range .a}`, `{.a.}`,
		`{.a[?(@.b=="x"]}`, `{.a[?(b=="x")]}`, `{.a[?(@.b==x)]}`, `{"abc}`, `{.a[1:2:3]}`, `{.a{b}}`,
	} {
		if _, err := Parse(tmpl); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", tmpl)
		}
	}
}

func TestParseExpr(t *testing.T) {
	data := decode(t, sample)
	for _, expr := range []string{".items[1].metadata.name", "{.items[1].metadata.name}", "items[1].metadata.name"} {
		tm, err := ParseExpr(expr)
		if err != nil {
			t.Fatalf("ParseExpr(%q): %v", expr, err)
		}
		if v := tm.Values(data); len(v) != 1 || Text(v[0]) != "worker" {
			t.Errorf("ParseExpr(%q).Values = %v", expr, v)
		}
	}
	if c, ok := Compare(json.Number("9"), json.Number("10")); !ok || c >= 0 {
		t.Errorf("9 vs 10: %d %v; numbers compare as numbers", c, ok)
	}
}

// FuzzParse runs any template over a sample: parsing and executing never
// panic, and what parses executes.
func FuzzParse(f *testing.F) {
	for _, s := range []string{`{.kind}`, `{range .items[*]}{.metadata.name}{"\n"}{end}`, `{.items[?(@.spec.replicas>=2)].metadata.labels['app']}`,
		`x{.a[1:-1]}y`, `{.items[*].status.conditions[?(@.type=="Ready")].status}`, `{'a'}{"\t"}`, `{$}`, `{.}`} {
		f.Add(s)
	}
	data := decode(f, sample)
	f.Fuzz(func(t *testing.T, tmpl string) {
		tm, err := Parse(tmpl)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := tm.Execute(&b, data); err != nil {
			t.Fatalf("Execute(%q): %v", tmpl, err)
		}
	})
}

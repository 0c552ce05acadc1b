package manifest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func problems(t *testing.T, err error) []Problem {
	t.Helper()
	var merr *Error
	if !errors.As(err, &merr) {
		t.Fatalf("error %v (%T), want *manifest.Error", err, err)
	}
	return merr.Problems
}

func TestAllErrorsOfADocumentAtOnce(t *testing.T) {
	in := `apiVersion: slipway.dev/v1
kind: App
metadata:
  name: hello
spec:
  replicas: -1
  template:
    containers:
    - name: web
      command: [./hello]
      ports:
      - port: 0
  strategy:
    type: Blue
`
	docs, err := Decode("app.yaml", []byte(in))
	if docs != nil {
		t.Errorf("documents returned with errors: %v", docs)
	}
	want := []Problem{
		{File: "app.yaml", Line: 6, Doc: 0, Kind: "App", Name: "hello", Field: "spec.replicas", Message: "Invalid value: -1: must be greater than or equal to 0"},
		{File: "app.yaml", Line: 12, Doc: 0, Kind: "App", Name: "hello", Field: "spec.template.containers[0].ports[0].port", Message: "Invalid value: 0: must be between 1 and 65535, inclusive"},
		{File: "app.yaml", Line: 14, Doc: 0, Kind: "App", Name: "hello", Field: "spec.strategy.type", Message: `Unsupported value: "Blue": supported values: "Rolling", "Recreate", "BlueGreen", "Canary"`},
	}
	if diff := cmp.Diff(want, problems(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 3 {
		t.Errorf("error has %d lines, want 3:\n%v", n, err)
	}
}

// TestInvalidSecondDocument: one bad document makes the whole file fail,
// naming that document, and no document is returned (apply writes none).
func TestInvalidSecondDocument(t *testing.T) {
	in := `apiVersion: slipway.dev/v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: slipway.dev/v1
kind: App
metadata: {name: web}
spec:
  replicas: 2
  template: {containers: [{name: web}]}
---
apiVersion: slipway.dev/v1
kind: Route
metadata: {name: web}
spec: {to: {service: web}}
`
	docs, err := Decode("all.yaml", []byte(in))
	if docs != nil {
		t.Errorf("got %d documents, want none", len(docs))
	}
	want := []Problem{{File: "all.yaml", Line: 11, Doc: 1, Kind: "App", Name: "web", Field: "spec.template.containers[0].command",
		Message: "Required value: command is required by the process runtime (or image, by the Docker runtime)"}}
	if diff := cmp.Diff(want, problems(t, err)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestProblemsOfSeveralDocuments(t *testing.T) {
	in := "kind: Project\nmetadata: {name: A}\n---\nkind: Project\nmetadata: {name: ok}\n---\nkind: Project\nmetadata: {name: b_}\n---\nkind: Project\nmetadata: {name: [\n"
	_, err := Decode("p.yaml", []byte(in))
	want := `p.yaml:2: Project "A": metadata.name: Invalid value: "A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')
p.yaml:8: Project "b_": metadata.name: Invalid value: "b_": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')
p.yaml:12: invalid YAML: did not find expected node content`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	ps := problems(t, err)
	if got := []int{ps[0].Doc, ps[1].Doc, ps[2].Doc}; !cmp.Equal(got, []int{0, 2, 3}) {
		t.Errorf("problem documents = %v, want [0 2 3]", got)
	}
}

func TestDocumentPositions(t *testing.T) {
	data, err := os.ReadFile("testdata/good/multi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := Decode("multi.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct {
		Kind, Name, Source string
		Index, Line        int
	}
	var got []pos
	for _, d := range docs {
		got = append(got, pos{d.Object.GetTypeMeta().Kind, d.Object.GetMeta().Name, d.Source, d.Index, d.Line})
	}
	// The comment-only document between App and Service counts as one.
	want := []pos{
		{"App", "hello", "multi.yaml", 0, 3},
		{"Service", "hello", "multi.yaml", 2, 15},
		{"Route", "hello", "multi.yaml", 3, 22},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("documents (-want +got):\n%s", diff)
	}
}

func TestLists(t *testing.T) {
	yamlList := `apiVersion: v1
kind: List
items:
- apiVersion: slipway.dev/v1
  kind: Project
  metadata: {name: a}
- kind: Secret
  metadata: {name: s, project: a}
  data: {k: v}
`
	jsonList := `{"kind": "List", "items": [
  {"kind": "Project", "metadata": {"name": "a"}},
  {"kind": "Secret", "metadata": {"name": "s", "project": "a"}, "data": {"k": "v"}}]}`
	for _, tc := range []struct {
		file, in string
		lines    []int
	}{{"list.yaml", yamlList, []int{4, 7}}, {"list.json", jsonList, []int{2, 3}}, {"list", jsonList, []int{2, 3}}} {
		docs, err := Decode(tc.file, []byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		want := []api.Object{
			&api.Project{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Project"}, Metadata: api.ObjectMeta{Name: "a"}},
			&api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Secret"}, Metadata: api.ObjectMeta{Name: "s", Project: "a"}, Type: "Opaque", Data: map[string]string{"k": "v"}},
		}
		if diff := cmp.Diff(want, objects(docs)); diff != "" {
			t.Errorf("%s: objects (-want +got):\n%s", tc.file, diff)
		}
		if got := []int{docs[0].Line, docs[1].Line}; !cmp.Equal(got, tc.lines) || docs[0].Index != 0 || docs[1].Index != 0 {
			t.Errorf("%s: lines %v indexes %d,%d; want lines %v, both index 0", tc.file, got, docs[0].Index, docs[1].Index, tc.lines)
		}
	}
}

func TestJSONInputs(t *testing.T) {
	// A JSON stream of two objects, tabs, and the \/ escape that YAML
	// parsers refuse.
	in := "{\n\t\"kind\": \"Project\",\n\t\"metadata\": {\"name\": \"a\", \"annotations\": {\"u\": \"http:\\/\\/x\"}}\n}\n{\"kind\": \"Project\", \"metadata\": {\"name\": \"b\"}}\n"
	docs, err := Decode("stream.json", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 || docs[0].Object.GetMeta().Annotations["u"] != "http://x" || docs[1].Object.GetMeta().Name != "b" || docs[1].Index != 1 || docs[1].Line != 5 {
		t.Errorf("decoded %d documents: %+v", len(docs), docs)
	}

	// Without a .json name, a JSON object is still read as JSON.
	docs, err = Decode("-", []byte(`{"kind": "Project", "metadata": {"name": "c"}, "spec": {"description": "a\/b"}}`))
	if err != nil || docs[0].Object.(*api.Project).Spec.Description != "a/b" {
		t.Errorf("stdin JSON: %v %+v", err, docs)
	}

	_, err = Decode("x.json", []byte(`{"kind": "Project", "metadata": {"name": "c"`))
	if err == nil || err.Error() != "x.json:1: invalid JSON: unexpected end of JSON input" {
		t.Errorf("truncated JSON: %v", err)
	}
}

func TestDefaultProjectOption(t *testing.T) {
	in := "kind: Secret\nmetadata: {name: a}\n---\nkind: Secret\nmetadata: {name: b, project: mine}\n---\nkind: Project\nmetadata: {name: p}\n"
	docs, err := Options{Project: "team"}.Decode("s.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range docs {
		got = append(got, d.Object.GetMeta().Project)
	}
	if want := []string{"team", "mine", ""}; !cmp.Equal(got, want) {
		t.Errorf("projects = %q, want %q", got, want)
	}
	docs, err = Decode("s.yaml", []byte(in))
	if err != nil || docs[0].Object.GetMeta().Project != "default" {
		t.Errorf("default project: %v %v", err, docs)
	}
}

func TestEmptyInputs(t *testing.T) {
	for _, in := range []string{"", "\n", "# only a comment\n", "---\n---\n", "---\n# c\n...\n", "~\n", "null"} {
		docs, err := Decode("e.yaml", []byte(in))
		if err != nil || len(docs) != 0 {
			t.Errorf("%q: %d documents, %v; want none and no error", in, len(docs), err)
		}
	}
}

func TestSizeLimit(t *testing.T) {
	big := make([]byte, 10<<20)
	_, err := Decode("app.yaml", big)
	if err == nil || err.Error() != "app.yaml: manifest is 10.0 MiB, larger than the 4 MiB limit" {
		t.Errorf("10 MiB manifest: %v", err)
	}
	// At the limit the size is fine (the content is then judged).
	atLimit := []byte("kind: Project\nmetadata: {name: p}\n" + strings.Repeat("#", MaxBytes-35) + "\n")
	if len(atLimit) != MaxBytes {
		t.Fatalf("test input is %d bytes", len(atLimit))
	}
	if _, err := Decode("app.yaml", atLimit); err != nil {
		t.Errorf("manifest of exactly %d bytes: %v", MaxBytes, err)
	}
}

func TestDocumentLimit(t *testing.T) {
	in := strings.Repeat("---\nkind: Project\nmetadata: {name: p}\n", MaxDocuments+1)
	_, err := Decode("many.yaml", []byte(in))
	ps := problems(t, err)
	want := []Problem{{File: "many.yaml", Line: 3*MaxDocuments + 1, Doc: MaxDocuments, Message: fmt.Sprintf("more than %d documents", MaxDocuments)}}
	if diff := cmp.Diff(want, ps); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}

	items := strings.Repeat(`{"kind":"Project","metadata":{"name":"p"}},`, MaxDocuments)
	_, err = Decode("many.json", []byte(`{"kind":"List","items":[`+items+`{"kind":"Project","metadata":{"name":"p"}}]}`))
	if ps := problems(t, err); len(ps) != 1 || ps[0].Message != fmt.Sprintf("more than %d objects", MaxDocuments) {
		t.Errorf("List of %d items: %v", MaxDocuments+1, err)
	}
}

func TestDepthLimit(t *testing.T) {
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	for _, tc := range []struct{ file, in, want string }{
		{"deep.yaml", "kind: Project\nmetadata: {name: p}\nx: " + deep + "\n", "deep.yaml:3: nesting deeper than 64 levels"},
		{"deep.json", `{"kind": "Project", "x": ` + deep + `}`, "deep.json:1: nesting deeper than 64 levels"},
		{"deeper.yaml", strings.Repeat("[", 20000), "deeper.yaml: invalid YAML: exceeded max depth of 10000"},
	} {
		_, err := Decode(tc.file, []byte(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: %v, want %s", tc.file, err, tc.want)
		}
	}
}

// TestAliasBomb: aliases multiply what a small file holds ("billion
// laughs"); expansion stops after MaxAliasNodes nodes.
func TestAliasBomb(t *testing.T) {
	// 100 aliases of a container whose command has 2,000 elements: 200,000
	// nodes from a 10 KB file.
	bomb := "kind: App\nmetadata: {name: p}\nspec:\n  template:\n    containers:\n    - &c\n      name: web\n      command: [" +
		strings.Repeat("x, ", 1999) + "x]\n" + strings.Repeat("    - *c\n", 100)
	_, err := Decode("bomb.yaml", []byte(bomb))
	ps := problems(t, err)
	var found bool
	for _, p := range ps {
		found = found || strings.HasPrefix(p.Field, "spec.template.containers[50].command[") &&
			p.Message == "Forbidden: aliases expand to more than 100000 nodes (a YAML alias bomb?)"
	}
	if !found {
		t.Errorf("alias bomb not refused at containers[50]")
	}

	// The classic bomb, under fields the schema does not have, is refused
	// as unknown fields without being expanded.
	var b strings.Builder
	b.WriteString("kind: Project\nmetadata: {name: p}\nspec:\n  x0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "  x%d: &x%d [*x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d, *x%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
	}
	_, err = Decode("laughs.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), `laughs.yaml:13: Project "p": spec.x9: Unknown field`) {
		t.Errorf("billion laughs: %.500v", err)
	}
}

// TestOddInputs: nothing makes Decode panic, and every failure is an *Error.
func TestOddInputs(t *testing.T) {
	for _, in := range []string{
		"\x00\x01\x02", "\xff\xfe", "*a", "&a *a", "a: &a [*a]", "kind: App\nspec: &s {template: *s}",
		"kind: App\n<<: {metadata: {name: x}}", "kind: App\nspec:\n  <<: [*nope]", "kind: App\nspec: {<<: 1}",
		"kind: App\nspec: &a {<<: *a}", "kind: !!binary aGVsbG8=", "kind: App\nmetadata: !!map {name: x}",
		"kind: App\nspec: {replicas: 1e400}", "kind: App\nspec: {replicas: .nan}", "kind: App\nmetadata: {? [a]: b}",
		"kind: App\n? [a]\n: b", "{\"kind\": 1e999}", "[", "]", "{", "}", "--- |\n  text", "%YAML 1.1\n---\nkind: App",
		"kind: List\nitems: *x", "kind: List\nitems: [{kind: List}]", "kind: [App]", "kind: App\nmetadata: {name: [x]}",
		"kind: Secret\ndata: {a: [1, 2]}", "kind: App\nspec: {template: {containers: [{name: web, ports: [{port: {a: 1}}]}]}}",
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%q: panic: %v", in, r)
				}
			}()
			_, err := Decode("odd.yaml", []byte(in))
			var merr *Error
			if err != nil && !errors.As(err, &merr) {
				t.Errorf("%q: error %T, want *manifest.Error", in, err)
			}
		}()
	}
}

func TestProblemLimit(t *testing.T) {
	in := strings.Repeat("---\nkind: Project\nmetadata: {name: P}\n", MaxProblems+5)
	_, err := Decode("many.yaml", []byte(in))
	ps := problems(t, err)
	if len(ps) != MaxProblems+1 {
		t.Fatalf("%d problems, want %d", len(ps), MaxProblems+1)
	}
	want := Problem{File: "many.yaml", Doc: -1, Message: "5 more problems not shown (the first 1000 are above)"}
	if diff := cmp.Diff(want, ps[MaxProblems]); diff != "" {
		t.Errorf("last problem (-want +got):\n%s", diff)
	}
}

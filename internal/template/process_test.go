package template

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func tmpl(params []api.TemplateParameter, objects ...string) *api.Template {
	t := &api.Template{Metadata: api.ObjectMeta{Name: "t", Project: "catalog"}, Parameters: params}
	for _, o := range objects {
		t.Objects = append(t.Objects, json.RawMessage(o))
	}
	return t
}

func objectsOf(t *testing.T, r *Result) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, raw := range r.Objects {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func TestProcess(t *testing.T) {
	tests := []struct {
		name    string
		params  []api.TemplateParameter
		objects []string
		labels  map[string]string
		opts    Options
		want    []string // the objects as JSON
		values  map[string]string
		sources map[string]string
	}{{
		name:    "string substitution and a whole integer field",
		params:  []api.TemplateParameter{{Name: "NAME", Value: "web"}, {Name: "REPLICAS", Value: "2"}},
		objects: []string{`{"kind":"App","metadata":{"name":"${NAME}"},"spec":{"replicas":"${{REPLICAS}}","template":{"containers":[{"name":"c","command":["sh","-c","echo ${NAME} at ${HOME} $${NAME}"]}]}}}`},
		opts:    Options{Project: "shop", Params: map[string]string{"REPLICAS": "3"}},
		want:    []string{`{"apiVersion":"slipway.dev/v1","kind":"App","metadata":{"name":"web","project":"shop"},"spec":{"replicas":3,"template":{"containers":[{"command":["sh","-c","echo web at ${HOME} $web"],"name":"c"}]}}}`},
		values:  map[string]string{"NAME": "web", "REPLICAS": "3"},
		sources: map[string]string{"NAME": api.ParamDefault, "REPLICAS": api.ParamGiven},
	}, {
		name:    "${{}} of a value that is not JSON is the string, of JSON the value",
		params:  []api.TemplateParameter{{Name: "S", Value: "abc"}, {Name: "B", Value: "true"}, {Name: "O", Value: `{"a":[1,2]}`}, {Name: "Z", Value: "007"}},
		objects: []string{`{"kind":"ConfigMap","metadata":{"name":"x","labels":{"s":"${{S}}"}},"data":{"b":"${{B}}","o":"${{O}}","z":"${{Z}}","in":"a-${{S}}"}}`},
		want:    []string{`{"apiVersion":"slipway.dev/v1","kind":"ConfigMap","metadata":{"labels":{"s":"abc"},"name":"x"},"data":{"b":true,"in":"a-abc","o":{"a":[1,2]},"z":"007"}}`},
	}, {
		name:    "labels on every object, the object's own win",
		params:  []api.TemplateParameter{{Name: "NAME", Value: "db"}},
		labels:  map[string]string{"template": "mariadb", "app": "${NAME}"},
		objects: []string{`{"kind":"Service","metadata":{"name":"a","labels":{"app":"mine"}}}`, `{"apiVersion":"slipway.dev/v1","kind":"Secret","metadata":{"name":"b"}}`},
		want: []string{
			`{"apiVersion":"slipway.dev/v1","kind":"Service","metadata":{"labels":{"app":"mine","template":"mariadb"},"name":"a"}}`,
			`{"apiVersion":"slipway.dev/v1","kind":"Secret","metadata":{"labels":{"app":"db","template":"mariadb"},"name":"b"}}`,
		},
	}, {
		name: "given, kept, default (referring to another), generated",
		params: []api.TemplateParameter{
			{Name: "GIVEN", Value: "d", Generate: "expression", From: "[a-z]{8}"},
			{Name: "KEPT", Generate: "expression", From: "[a-z]{8}"},
			{Name: "SERVICE", Value: "${NAME}-db"},
			{Name: "NAME", Value: "shop"},
			{Name: "GEN", Generate: "expression", From: "[0-9]{6}"},
		},
		objects: []string{`{"kind":"Secret","metadata":{"name":"${SERVICE}"}}`},
		opts:    Options{Params: map[string]string{"GIVEN": "g"}, Kept: map[string]string{"KEPT": "k", "GEN": "x"}, Rand: fixed()},
		want:    []string{`{"apiVersion":"slipway.dev/v1","kind":"Secret","metadata":{"name":"shop-db"}}`},
		values:  map[string]string{"GIVEN": "g", "KEPT": "k", "SERVICE": "shop-db", "NAME": "shop", "GEN": "x"},
		sources: map[string]string{"GIVEN": api.ParamGiven, "KEPT": api.ParamKept, "SERVICE": api.ParamDefault, "NAME": api.ParamDefault, "GEN": api.ParamKept},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp := tmpl(tt.params, tt.objects...)
			tp.Labels = tt.labels
			res, err := Process(tp, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range res.Objects {
				got = append(got, string(o))
			}
			var want []string
			for _, w := range tt.want { // compare in encoding/json's order
				var m map[string]any
				if err := json.Unmarshal([]byte(w), &m); err != nil {
					t.Fatal(err)
				}
				b, _ := json.Marshal(m)
				want = append(want, string(b))
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("objects (-want +got):\n%s", diff)
			}
			for _, v := range res.Values {
				if w, ok := tt.values[v.Name]; ok && v.Value != w {
					t.Errorf("%s = %q, want %q", v.Name, v.Value, w)
				}
				if w, ok := tt.sources[v.Name]; ok && v.Source != w {
					t.Errorf("%s came from %s, want %s", v.Name, v.Source, w)
				}
			}
		})
	}
}

// A generated value is drawn once per processing from the source, and an
// instance's kept value is never drawn again.
func TestProcessGeneratesOnceAndKeeps(t *testing.T) {
	tp := tmpl([]api.TemplateParameter{{Name: "PASSWORD", Generate: "expression", From: "[a-zA-Z0-9]{16}"}},
		`{"kind":"Secret","metadata":{"name":"s"},"data":{"a":"${PASSWORD}","b":"${PASSWORD}"}}`)
	first, err := Process(tp, Options{Rand: fixed()})
	if err != nil {
		t.Fatal(err)
	}
	pw := first.Values[0].Value
	if len(pw) != 16 || first.Values[0].Source != api.ParamGenerated || first.Values[0].Generator != "[a-zA-Z0-9]{16}" {
		t.Fatalf("value %+v", first.Values[0])
	}
	data := objectsOf(t, first)[0]["data"].(map[string]any)
	if data["a"] != pw || data["b"] != pw {
		t.Fatalf("data %v, want both %q", data, pw)
	}
	again, err := Process(tp, Options{Kept: map[string]string{"PASSWORD": pw}, Rand: strings.NewReader("")})
	if err != nil {
		t.Fatalf("with the value kept, processing read the random source: %v", err)
	}
	if again.Values[0].Value != pw {
		t.Fatalf("re-processing with the kept value gave %q, want %q", again.Values[0].Value, pw)
	}
}

func TestProcessErrors(t *testing.T) {
	tests := []struct {
		name    string
		params  []api.TemplateParameter
		objects []string
		opts    Options
		want    []string // the causes, every one
	}{{
		name:    "every problem at once",
		params:  []api.TemplateParameter{{Name: "NAME", Required: true}, {Name: "PW", Generate: "expression", From: "[a-z]{0}"}, {Name: "X", Generate: "random"}},
		objects: []string{`{"kind":"App","metadata":{"name":"${NAME}"}}`, `{"kind":"DeploymentConfig","metadata":{"name":"a"}}`, `{"metadata":{"name":"b"}}`, `[1]`, `{"kind":7}`},
		opts:    Options{Params: map[string]string{"NAEM": "x", "name": "y"}},
		want: []string{
			`parameters[1].from: Invalid value: "[a-z]{0}": has the count {0} at offset 5: a count is a number from 1 to 255`,
			`parameters[2].generate: Unsupported value: "random": "expression"`,
			`parameters NAEM: Not found: "NAEM": the template has no such parameter; its parameters are NAME, PW, X`,
			`parameters name: Not found: "name": the template has no such parameter; did you mean NAME?`,
			`parameters[0].value: Required value: parameter NAME is required and has no value: give it with -p NAME=…`,
			`objects[1].kind: Unsupported value: "DeploymentConfig": Slipway has no such kind a template can make; it makes Secret, ConfigMap, PersistentVolumeClaim, Service, App, Route, ImageStream, Template`,
			`objects[2].kind: Required value: one of Secret, ConfigMap, PersistentVolumeClaim, Service, App, Route, ImageStream, Template`,
			`objects[3]: Forbidden: must be an object (a mapping with kind, metadata, ...)`,
			`objects[4].kind: Invalid value: 7: must be a string: one of Secret, ConfigMap, PersistentVolumeClaim, Service, App, Route, ImageStream, Template`,
		},
	}, {
		name:    "a loop between parameters",
		params:  []api.TemplateParameter{{Name: "A", Value: "${B}"}, {Name: "B", Value: "x${C}"}, {Name: "C", Value: "${{A}}"}, {Name: "D", Value: "${D}"}},
		objects: []string{`{"kind":"Secret","metadata":{"name":"s"}}`},
		want: []string{
			`parameters[0].value: Invalid value: "${B}": parameters refer to each other in a loop: A → B → C → A`,
			`parameters[3].value: Invalid value: "${D}": parameters refer to each other in a loop: D → D`,
		},
	}, {
		name:    "bad names, duplicates, another project, no objects",
		params:  []api.TemplateParameter{{Name: ""}, {Name: "1X"}, {Name: "A"}, {Name: "A"}},
		objects: []string{`{"kind":"Secret","metadata":{"name":"s","project":"other"}}`, `{"kind":"Secret","metadata":"m"}`},
		opts:    Options{Project: "shop"},
		want: []string{
			`parameters[0].name: Required value`,
			`parameters[1].name: Invalid value: "1X": must be letters, digits and _, not starting with a digit`,
			`parameters[3].name: Duplicate value: "A": parameters[2] has the same name`,
			`objects[0].metadata.project: Invalid value: "other": a template makes its objects in the project it is processed for (shop)`,
			`objects[1].metadata: Forbidden: must be a mapping`,
		},
	}, {
		name: "no objects",
		want: []string{`objects: Required value: a template makes at least one object`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Process(tmpl(tt.params, tt.objects...), tt.opts)
			var ae *api.Error
			if err == nil || !asAPIError(err, &ae) || ae.Reason != api.ReasonInvalid {
				t.Fatalf("err = %v, want an Invalid api.Error", err)
			}
			var got []string
			for _, c := range ae.Causes {
				got = append(got, c.Field+": "+c.Message)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("causes (-want +got):\n%s", diff)
			}
		})
	}
}

// A template larger than a manifest may be is refused as a manifest is,
// and so is a substitution that blows the objects up past an apply's size.
func TestProcessSizes(t *testing.T) {
	big := `{"kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"` + strings.Repeat("x", 10<<20) + `"}}`
	_, err := Process(tmpl(nil, big), Options{})
	if err == nil || !strings.Contains(err.Error(), "objects: Too long: the objects are 10.0 MiB, larger than the 4 MiB a manifest may hold") {
		t.Fatalf("10 MB template: %v", err)
	}
	refs := strings.Repeat("${V}", 1<<16) // 256 KiB of references
	bomb := tmpl([]api.TemplateParameter{{Name: "V", Value: strings.Repeat("y", 1<<10)}},
		`{"kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"`+refs+`"}}`)
	_, err = Process(bomb, Options{})
	if err == nil || !strings.Contains(err.Error(), "processed objects would be larger than 8 MiB") {
		t.Fatalf("64 MiB of substitutions: %v", err)
	}
	_, err = Process(tmpl([]api.TemplateParameter{{Name: "V"}}, `{"kind":"Secret","metadata":{"name":"s"}}`),
		Options{Params: map[string]string{"V": strings.Repeat("z", MaxValueBytes+1)}})
	if err == nil || !strings.Contains(err.Error(), "parameters V: Too long") {
		t.Fatalf("a value over the bound: %v", err)
	}
}

func asAPIError(err error, ae **api.Error) bool {
	e, ok := err.(*api.Error)
	*ae = e
	return ok
}

package template

import (
	"encoding/json"
	"testing"

	"slipway.dev/slipway/internal/api"
)

// FuzzProcess: any template and parameters are processed or refused with
// an Invalid error, never a panic, and what is processed is JSON objects
// of kinds a template makes.
func FuzzProcess(f *testing.F) {
	f.Add(`{"kind":"App","metadata":{"name":"${NAME}"},"spec":{"replicas":"${{N}}"}}`, "NAME", "${N}", "N", "[0-9]{2}", "x")
	f.Add(`{"kind":"Secret"}`, "A", "${B}", "B", `\w{8}`, "${A}")
	f.Add(`[]`, "", "", "1", "[z-a]", "")
	f.Fuzz(func(t *testing.T, obj, n1, v1, n2, from, given string) {
		tp := &api.Template{
			Metadata:   api.ObjectMeta{Name: "f"},
			Parameters: []api.TemplateParameter{{Name: n1, Value: v1}, {Name: n2, Generate: api.GenerateExpression, From: from}},
			Objects:    []json.RawMessage{json.RawMessage(obj)},
		}
		res, err := Process(tp, Options{Project: "p", Params: map[string]string{n1: given}, Rand: fixed()})
		if err != nil {
			if !api.IsInvalid(err) {
				t.Fatalf("error %v is not Invalid", err)
			}
			return
		}
		for _, o := range res.Objects {
			var m map[string]any
			if err := json.Unmarshal(o, &m); err != nil {
				t.Fatalf("processed object is not JSON: %v", err)
			}
			if _, ok := m["kind"].(string); !ok {
				t.Fatalf("processed object without kind: %s", o)
			}
		}
	})
}

package manifest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

func TestEncodeSeveralObjectsAsList(t *testing.T) {
	objs := []api.Object{
		&api.Project{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Project"}, Metadata: api.ObjectMeta{Name: "a"}},
		&api.Secret{TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Secret"}, Metadata: api.ObjectMeta{Name: "s", Project: "a"}, Data: map[string]string{"port": "8080", "on": "yes"}},
	}
	y, err := EncodeYAML(objs...)
	if err != nil {
		t.Fatal(err)
	}
	// Strings that YAML would read as numbers or booleans are quoted.
	wantYAML := `apiVersion: slipway.dev/v1
kind: List
items:
  - apiVersion: slipway.dev/v1
    kind: Project
    metadata:
      name: a
  - apiVersion: slipway.dev/v1
    kind: Secret
    metadata:
      name: s
      project: a
    data:
      "on": "yes"
      port: "8080"
`
	if diff := cmp.Diff(wantYAML, string(y)); diff != "" {
		t.Errorf("YAML (-want +got):\n%s", diff)
	}
	j, err := EncodeJSON(objs[0])
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{
  "apiVersion": "slipway.dev/v1",
  "kind": "Project",
  "metadata": {
    "name": "a"
  }
}
`
	if diff := cmp.Diff(wantJSON, string(j)); diff != "" {
		t.Errorf("JSON (-want +got):\n%s", diff)
	}
	j, err = EncodeJSON()
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\n  \"apiVersion\": \"slipway.dev/v1\",\n  \"kind\": \"List\",\n  \"items\": []\n}\n"; string(j) != want {
		t.Errorf("empty list: %s", j)
	}
	docs, err := Decode("list.yaml", y)
	if err != nil {
		t.Fatal(err)
	}
	if got := objects(docs); len(got) != 2 || got[1].(*api.Secret).Data["on"] != "yes" {
		t.Errorf("decoded back: %+v", got)
	}
}

func TestRedactSecrets(t *testing.T) {
	s := &api.Secret{Metadata: api.ObjectMeta{Name: "db", Labels: map[string]string{"a": "b"}}, Data: map[string]string{"password": "hunter2", "empty": ""}}
	r := RedactSecrets(s).(*api.Secret)
	want := map[string]string{"password": "<redacted: 7 bytes>", "empty": "<redacted: 0 bytes>"}
	if diff := cmp.Diff(want, r.Data); diff != "" {
		t.Errorf("redacted data (-want +got):\n%s", diff)
	}
	if s.Data["password"] != "hunter2" {
		t.Errorf("RedactSecrets changed its argument: %v", s.Data)
	}
	r.Metadata.Labels["a"] = "changed"
	if s.Metadata.Labels["a"] != "b" {
		t.Errorf("the copy shares labels with the original")
	}
	app := &api.App{}
	if got := RedactSecrets(app); got != app {
		t.Errorf("a non-secret object was not returned as is")
	}
	var nilSecret *api.Secret
	if got := RedactSecrets(nilSecret); got != api.Object(nilSecret) {
		t.Errorf("nil secret: %v", got)
	}
}

package apply

import (
	"os"
	"path/filepath"
	"testing"
)

// TestApplyErrorsAtLines: what the server finds wrong in one document of
// several is reported as the manifests' own errors are, file:line first,
// each once.
func TestApplyErrorsAtLines(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	f := filepath.Join(t.TempDir(), "two.yaml")
	doc := `apiVersion: slipway.dev/v1
kind: App
metadata: {name: one}
spec:
  template: {containers: [{name: web, command: [x]}]}
---
apiVersion: slipway.dev/v1
kind: App
metadata: {name: two, project: nosuch}
spec:
  template: {containers: [{name: web, command: [x]}]}
`
	if err := os.WriteFile(f, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := a.RunOut(t, "apply", "-f", f)
	want := "error: " + f + `:7: App "two": metadata.project: Invalid value: "nosuch": project "nosuch" not found (and this apply does not create it)` + "\n"
	if code != 1 || errOut != want {
		t.Errorf("code %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
	_, errOut, code = a.RunOut(t, "apply", "-f", f, "-p", "default")
	want = "error: " + f + `:7: App "two": metadata.project is "nosuch" but the command works in project "default" (-p or SLIPWAY_PROJECT); remove one of them` + "\n"
	if code != 1 || errOut != want {
		t.Errorf("with -p: code %d, stderr:\n%s\nwant:\n%s", code, errOut, want)
	}
}

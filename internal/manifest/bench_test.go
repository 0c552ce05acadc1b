package manifest

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func BenchmarkDecodeApp(b *testing.B) {
	data, err := os.ReadFile("testdata/good/app-canary.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode("app.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecode1000Apps reads one file of 1,000 small Apps, as an apply
// of a large project would.
func BenchmarkDecode1000Apps(b *testing.B) {
	var sb strings.Builder
	for i := range 1000 {
		sb.WriteString("---\napiVersion: slipway.dev/v1\nkind: App\nmetadata:\n  name: app-")
		sb.WriteString(strconv.Itoa(i))
		sb.WriteString("\nspec:\n  replicas: 2\n  template:\n    containers:\n    - name: web\n      command: [./web]\n      ports: [{name: http, port: 8080}]\n      readinessProbe: {httpGet: {path: /ready, port: http}}\n")
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode("apps.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeYAMLApp(b *testing.B) {
	data, err := os.ReadFile("testdata/good/app-canary.yaml")
	if err != nil {
		b.Fatal(err)
	}
	docs, err := Decode("app.yaml", data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := EncodeYAML(docs[0].Object); err != nil {
			b.Fatal(err)
		}
	}
}

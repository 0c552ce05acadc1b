package manifest

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

func objects(docs []Document) []api.Object {
	objs := make([]api.Object, len(docs))
	for i, d := range docs {
		objs[i] = d.Object
	}
	return objs
}

// TestGoodRoundTrip decodes every good manifest, writes it back as YAML
// (compared with a golden file of the normalised form), and decodes that
// again to the same objects; the JSON form must round-trip too.
func TestGoodRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/good/*")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good manifests: %v", err)
	}
	kinds := map[string]bool{}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			docs, err := Decode(name, data)
			if err != nil {
				t.Fatalf("decode:\n%v", err)
			}
			objs := objects(docs)
			for _, o := range objs {
				kinds[o.GetTypeMeta().Kind] = true
			}

			out, err := EncodeYAML(objs...)
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(out)); diff != "" {
				t.Errorf("normalised YAML differs from %s (-want +got):\n%s", golden, diff)
			}

			again, err := Decode("golden.yaml", out)
			if err != nil {
				t.Fatalf("re-decoding own YAML:\n%v\n%s", err, out)
			}
			if diff := cmp.Diff(objs, objects(again), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("YAML round trip changed the objects (-first +second):\n%s", diff)
			}

			js, err := EncodeJSON(objs...)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := Decode("out.json", js)
			if err != nil {
				t.Fatalf("re-decoding own JSON:\n%v\n%s", err, js)
			}
			if diff := cmp.Diff(objs, objects(fromJSON), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("JSON round trip changed the objects (-first +second):\n%s", diff)
			}
		})
	}
	for _, k := range api.Kinds {
		if !kinds[k.Kind] {
			t.Errorf("no good manifest of kind %s under testdata/good", k.Kind)
		}
	}
}

package manifest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecode: Decode never panics, fails only with an *Error and no
// documents, and whatever it accepts survives a round trip through
// EncodeYAML and EncodeJSON unchanged (an empty list or map and an absent
// one are the same: both are omitted when written). Seeds:
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := Decode("fuzz.yaml", data)
		if err != nil {
			var merr *Error
			if !errors.As(err, &merr) || len(merr.Problems) == 0 {
				t.Fatalf("error %v (%T), want *Error with problems", err, err)
			}
			if docs != nil {
				t.Fatalf("%d documents returned with an error", len(docs))
			}
			return
		}
		objs := objects(docs)
		if len(objs) == 0 {
			return
		}
		y, err := EncodeYAML(objs...)
		if err != nil {
			t.Fatalf("EncodeYAML: %v", err)
		}
		again, err := Decode("again.yaml", y)
		if err != nil {
			t.Fatalf("re-decoding own YAML: %v\n%s", err, y)
		}
		if diff := cmp.Diff(objs, objects(again), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("YAML round trip changed objects (-first +second):\n%s\n%s", diff, y)
		}
		j, err := EncodeJSON(objs...)
		if err != nil {
			t.Fatalf("EncodeJSON: %v", err)
		}
		again, err = Decode("again.json", j)
		if err != nil {
			t.Fatalf("re-decoding own JSON: %v\n%s", err, j)
		}
		if diff := cmp.Diff(objs, objects(again), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("JSON round trip changed objects (-first +second):\n%s\n%s", diff, j)
		}
	})
}

package rollout

import (
	"strings"
	"testing"

	"slipway.dev/slipway/internal/api"
)

func rev(n int64) *api.Revision {
	return &api.Revision{Spec: api.RevisionSpec{Number: n}}
}

func TestUndoTarget(t *testing.T) {
	revs := []*api.Revision{rev(1), rev(2), rev(4)}
	cases := []struct {
		to      int64
		want    int64
		wantErr string
	}{
		{0, 2, ""},
		{1, 1, ""},
		{4, 4, ""},
		{3, 0, "no revision 3: the kept revisions are 1, 2, 4"},
		{-1, 0, "must be a revision number"},
	}
	for _, c := range cases {
		got, err := undoTarget(revs, c.to)
		switch {
		case c.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("undoTarget(to %d) error %v, want %q", c.to, err, c.wantErr)
			}
		case err != nil || got.Spec.Number != c.want:
			t.Errorf("undoTarget(to %d) = %v, %v; want revision %d", c.to, got, err, c.want)
		}
	}
	if _, err := undoTarget(revs[:1], 0); err == nil || !strings.Contains(err.Error(), "no earlier revision") {
		t.Errorf("undo with one revision: %v", err)
	}
}

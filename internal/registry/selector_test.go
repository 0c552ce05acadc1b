package registry_test

import (
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

func TestParseSelector(t *testing.T) {
	labels := map[string]string{"app": "hello", "tier": "web"}
	for _, tc := range []struct {
		sel   string
		match bool
	}{
		{"", true},
		{"app=hello", true},
		{"app==hello", true},
		{"app=other", false},
		{"app!=other", true},
		{"missing!=x", true},
		{"app=hello,tier=db", false},
		{" app = hello , tier = web ", true},
		{"tier in (db, web)", true},
		{"tier notin (db,web)", false},
		{"app", true},
		{"!app", false},
		{"!missing", true},
	} {
		s, err := registry.ParseSelector(tc.sel)
		if err != nil {
			t.Errorf("ParseSelector(%q): %v", tc.sel, err)
			continue
		}
		if got := s.Matches(labels); got != tc.match {
			t.Errorf("%q matches %v = %v, want %v", tc.sel, labels, got, tc.match)
		}
	}
	for _, bad := range []string{"a=b,", "=b", "a in (b", "a in b", "a=b=c", "a b"} {
		_, err := registry.ParseSelector(bad)
		if api.ReasonOf(err) != api.ReasonBadRequest {
			t.Errorf("ParseSelector(%q) error = %v, want BadRequest", bad, err)
		}
	}
	if got := registry.FormatSelector(map[string]string{"revision": "2", "app": "x"}); got != "app=x,revision=2" {
		t.Errorf("FormatSelector = %q", got)
	}
}

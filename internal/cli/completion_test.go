package cli

import (
	"strings"
	"testing"

	"slipway.dev/slipway/internal/cli/clitest"
)

func TestCompletion(t *testing.T) {
	a := clitest.Start(t, nil, nil, newRoot)
	a.Create(t, clitest.NewApp("hello", 1))
	a.Create(t, clitest.NewApp("help-desk", 1))
	a.Create(t, clitest.NewService("hello", nil))
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"get", "ap"}, []string{"apps"}},
		{[]string{"get", "a"}, []string{"all", "apps"}},
		{[]string{"get", "apps", "hel"}, []string{"hello", "help-desk"}},
		{[]string{"get", "apps", "hello", "hel"}, []string{"help-desk"}},
		{[]string{"get", "svc/"}, []string{"svc/hello"}},
		{[]string{"describe", "app/help"}, []string{"app/help-desk"}},
		{[]string{"rollout", "status", ""}, []string{"app/hello", "app/help-desk"}},
		{[]string{"scale", "app/hello"}, []string{"app/hello"}},
		{[]string{"logs", "app/"}, []string{"app/hello", "app/help-desk"}},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, append([]string{"__complete"}, tc.args...)...)
		if code != 0 {
			t.Errorf("%q: code %d, stderr %q", tc.args, code, errOut)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		got, directive := lines[:len(lines)-1], lines[len(lines)-1]
		if strings.Join(got, " ") != strings.Join(tc.want, " ") || directive != ":4" {
			t.Errorf("complete %q = %q %s, want %q :4 (no file completion)", tc.args, got, directive, tc.want)
		}
	}
	out, _, code := a.RunOut(t, "completion", "bash")
	if code != 0 || !strings.Contains(out, "__start_slipway") {
		t.Errorf("completion bash: %d, %d bytes", code, len(out))
	}
}

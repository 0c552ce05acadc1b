package apply

import (
	"testing"

	"slipway.dev/slipway/internal/cli/clitest"
)

// TestDeleteSelector: delete -l deletes what the selector matches, and a
// selector matching nothing is an error.
func TestDeleteSelector(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	hello := clitest.NewApp("hello", 2)
	hello.Metadata.Labels = map[string]string{"team": "web"}
	a.Create(t, hello)
	a.Create(t, clitest.NewApp("worker", 10))

	if out, _, code := a.RunOut(t, "delete", "apps", "-l", "team=web"); code != 0 || out != "app/hello deleted\n" {
		t.Errorf("delete -l: %d %q", code, out)
	}
	if _, errOut, code := a.RunOut(t, "delete", "apps", "-l", "team=web"); code != 1 || errOut != "error: no apps match the selector \"team=web\"\n" {
		t.Errorf("delete -l matching nothing: %d %q", code, errOut)
	}
}

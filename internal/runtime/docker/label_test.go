package docker

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/runtime"
)

// The config label keeps env names, never values (they may be secrets);
// the values come back from the container's environment, where the
// config's own override the image's.
func TestConfigLabelKeepsNoEnvValues(t *testing.T) {
	c := runtime.ContainerConfig{
		Name: "web", Image: "app:1", Command: []string{"/app"}, Args: []string{"-v"},
		Env: []string{"PORT=8080", "DB_PASSWORD=hunter2", "EMPTY=", "PATH=/opt/bin"}, WorkingDir: "/srv",
		Limits: runtime.Limits{MemoryBytes: 64 << 20, CPUMillis: 500},
	}
	label := configLabel(c)
	if strings.Contains(label, "hunter2") || strings.Contains(label, "8080") {
		t.Fatalf("the label holds env values: %s", label)
	}
	env := []string{"PATH=/opt/bin", "HOME=/", "PORT=8080", "DB_PASSWORD=hunter2", "EMPTY="} // as the engine merges it
	got, err := configFromLabel(label, env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(c, got); diff != "" {
		t.Errorf("config from its label and the container's env (-want +got):\n%s", diff)
	}
	if _, err := configFromLabel("{", env); err == nil {
		t.Errorf("an unreadable label gave no error")
	}
}

package process_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/runtime"
)

// TestArtifactImage: a container whose image names a build artifact runs
// that artifact's program, in the artifact's directory, ahead of PATH.
func TestArtifactImage(t *testing.T) {
	o := testOptions(t.TempDir())
	o.ArtifactDir = t.TempDir()
	art := filepath.Join(o.ArtifactDir, "shop", "web", "7")
	if err := os.MkdirAll(filepath.Join(art, "conf"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The program has the name of a command on PATH: the artifact's wins.
	script := "#!/bin/sh\npwd > \"$OUT\"\necho artifact >> \"$OUT\"\n"
	if err := os.WriteFile(filepath.Join(art, "true"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, o)
	f.sandbox("pod-art")
	out := filepath.Join(t.TempDir(), "out")
	env := []string{"OUT=" + out, "PATH=/usr/bin:/bin"}
	for _, tc := range []struct{ workingDir, wantDir string }{{"", art}, {"conf", filepath.Join(art, "conf")}} {
		os.Remove(out)
		_, err := f.d.StartContainer(context.Background(), "pod-art", runtime.ContainerConfig{
			Name: "web", Image: "shop/web:7", Command: []string{"true"}, Env: env, WorkingDir: tc.workingDir,
		})
		if err != nil {
			t.Fatal(err)
		}
		ev := f.nextExit()
		if ev.Status.ExitCode != 0 {
			t.Fatalf("exit %+v", ev.Status)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(b), tc.wantDir+"\nartifact\n"; got != want {
			t.Errorf("workingDir %q: the container wrote %q, want %q", tc.workingDir, got, want)
		}
	}

	// A reference of the artifact form without its directory is an error
	// naming it; any other image is ignored, as before.
	_, err := f.d.StartContainer(context.Background(), "pod-art", runtime.ContainerConfig{Name: "gone", Image: "shop/web:8", Command: []string{"true"}, Env: env})
	want := `container "gone": image "shop/web:8": no build artifact at ` + filepath.Join(o.ArtifactDir, "shop", "web", "8") + " (build it with slipway build app/web)"
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want %q", err, want)
	}
	if _, err := f.d.StartContainer(context.Background(), "pod-art", runtime.ContainerConfig{Name: "other", Image: "nginx:1.27", Command: []string{"true"}, Env: env}); err != nil {
		t.Fatalf("a plain image: %v", err)
	}
	if ev := f.nextExit(); ev.Name != "other" || ev.Status.ExitCode != 0 {
		t.Fatalf("PATH's true: %+v", ev)
	}
}

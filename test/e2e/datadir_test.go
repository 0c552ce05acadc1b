package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `slipway up` creates its data dir 0700, and refuses one that exists
// open to group or others, saying which, why and what to run, without
// touching it.
func TestUpDataDirMode(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home) // creates home/data
	if st, err := os.Stat(p.dataDir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("created data dir: %v, mode %o; want 0700", err, st.Mode().Perm())
	}
	p.stop()

	wide := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(wide, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(wide, 0o755)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "up", "--data-dir", wide, "--api-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--https-addr", "")
	cmd.Env = p.env()
	out, err := cmd.CombinedOutput()
	want := "error: refusing to start: data dir " + wide + " has mode 0755, but it holds the admin token and the store with every Secret and must be 0700"
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), want) || !strings.Contains(string(out), "chmod 700 "+wide) {
		t.Errorf("slipway up with a 0755 data dir: %v\n%s\nwant exit 1 and %q", err, out, want)
	}
	if entries, _ := os.ReadDir(wide); len(entries) != 0 {
		t.Errorf("the refused start wrote %d entries into the data dir", len(entries))
	}
}

package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data dir Slipway creates is 0700; an existing one open to group or
// others, or a secret file in it readable by them, makes `slipway up`
// refuse to start, saying which, why and what to run, and change nothing.
func TestDataDirMode(t *testing.T) {
	t.Run("created", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "new", "data")
		if err := prepareDataDir(dir); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Fatalf("created data dir: %v, mode %o; want 0700", err, st.Mode().Perm())
		}
	})
	t.Run("existing 0700", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, TokenFileName), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := prepareDataDir(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("existing 0755", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755) // whatever the umask
		// Through Run, as `slipway up` gets it: refused before anything
		// is opened or bound.
		err := Run(context.Background(), Config{DataDir: dir, APIAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"})
		want := "refusing to start: data dir " + dir + " has mode 0755, but it holds the admin token and the store with every Secret and must be 0700"
		if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "chmod 700 "+dir) {
			t.Fatalf("Run with a 0755 data dir: %v; want an error starting %q and naming the chmod", err, want)
		}
		st, _ := os.Stat(dir)
		entries, _ := os.ReadDir(dir)
		if st.Mode().Perm() != 0o755 || len(entries) != 0 {
			t.Errorf("a refused start changed the data dir: mode %o, %d entries", st.Mode().Perm(), len(entries))
		}
	})
	t.Run("token file 0644", func(t *testing.T) {
		dir := t.TempDir()
		os.Chmod(dir, 0o700)
		tok := filepath.Join(dir, TokenFileName)
		if err := os.WriteFile(tok, []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(tok, 0o644)
		err := prepareDataDir(dir)
		if err == nil || !strings.Contains(err.Error(), tok+" has mode 0644, but it holds secrets and must be 0600") {
			t.Fatalf("a 0644 admin token: %v", err)
		}
	})
	t.Run("not a directory", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "file")
		os.WriteFile(f, nil, 0o600)
		if err := prepareDataDir(f); err == nil {
			t.Fatal("a file as the data dir was accepted")
		}
	})
}

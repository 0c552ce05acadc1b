package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// storeFileName is the store's file in the data dir (mode 0600).
const storeFileName = "slipway.db"

// prepareDataDir creates the data dir (0700) or checks the one that
// exists. The data dir holds the admin token and the store, with every
// Secret, so like ssh with ~/.ssh it refuses a dir that group or others
// may enter, or a file of those two that they may read, rather than
// quietly tightening it: if others could read them, the admin must know,
// to rotate the token and the Secrets.
func prepareDataDir(dir string) error {
	if dir == "" {
		return errors.New("--data-dir is empty")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("--data-dir %s is not a directory", dir)
	}
	if mode := st.Mode().Perm(); mode&0o077 != 0 {
		return fmt.Errorf("refusing to start: data dir %s has mode %04o, but it holds the admin token and the store with every Secret and must be 0700 (no access for group or others): "+
			"run `chmod 700 %s` and start again; if others could read it, also rotate the admin token (delete %s) and the Secrets", dir, mode, dir, filepath.Join(dir, TokenFileName))
	}
	for _, name := range []string{storeFileName, TokenFileName} {
		p := filepath.Join(dir, name)
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("data dir: %w", err)
		}
		if mode := st.Mode().Perm(); mode&0o077 != 0 {
			return fmt.Errorf("refusing to start: %s has mode %04o, but it holds secrets and must be 0600 (no access for group or others): run `chmod 600 %s` and start again", p, mode, p)
		}
	}
	return nil
}

package runtime

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// ReplaceFiles makes dir hold exactly files, for drivers that keep a files
// volume in a directory of the machine: each file is written to a
// temporary name and renamed over the old one (a reader sees the old or
// the new file, whole), then what is no longer listed is removed.
func ReplaceFiles(dir string, files []File) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, f := range files {
		if err := CheckRelative("file path", f.Path); err != nil {
			return err
		}
		p := filepath.Join(dir, filepath.FromSlash(f.Path))
		want[p] = true
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(filepath.Dir(p), ".slipway-"+filepath.Base(p)+".tmp")
		if err := os.WriteFile(tmp, f.Data, 0o600); err != nil {
			return err
		}
		mode := f.Mode.Perm()
		if mode == 0 {
			mode = 0o400
		}
		if err := os.Chmod(tmp, mode); err != nil {
			return err
		}
		if err := os.Rename(tmp, p); err != nil {
			_ = os.Remove(tmp)
			return err
		}
	}
	return filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || want[p] {
			return err
		}
		return os.Remove(p)
	})
}

// DirUsage is the apparent size of the regular files under dir; a missing
// dir (or one removed while walked) counts what was seen.
func DirUsage(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

package up

import (
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/cli/cmdutil"
)

// defaultDataDir returns $XDG_DATA_HOME/slipway, i.e. ~/.local/share/slipway.
func defaultDataDir(env func(string) string) string {
	if d := env("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "slipway")
	}
	if home := env("HOME"); home != "" {
		return filepath.Join(home, ".local", "share", "slipway")
	}
	return ".slipway"
}

// writeConfig writes c atomically with mode 0600.
func writeConfig(path string, c cmdutil.FileConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b, 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

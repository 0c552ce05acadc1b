package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// fileConfig is ~/.config/slipway/config.yaml: where the CLI finds the API.
// It holds a token, so it is written 0600.
type fileConfig struct {
	Server  string `yaml:"server"`
	Token   string `yaml:"token"`
	Project string `yaml:"project,omitempty"`
}

// configPath returns $XDG_CONFIG_HOME/slipway/config.yaml, falling back to
// ~/.config as the XDG spec says.
func configPath(env func(string) string) (string, error) {
	if p := env("SLIPWAY_CONFIG"); p != "" {
		return p, nil
	}
	dir := env("XDG_CONFIG_HOME")
	if dir == "" {
		home := env("HOME")
		if home == "" {
			return "", errors.New("cannot find the config file: neither XDG_CONFIG_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "slipway", "config.yaml"), nil
}

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

func readConfig(path string) (fileConfig, error) {
	var c fileConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && len(b) > 0 {
		return c, fmt.Errorf("%s: %v", path, err)
	}
	return c, nil
}

// writeConfig writes c atomically with mode 0600.
func writeConfig(path string, c fileConfig) error {
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

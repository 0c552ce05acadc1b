package cmdutil

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"
)

// FileConfig is ~/.config/slipway/config.yaml: where the CLI finds the API.
// It holds a token, so it is written 0600.
type FileConfig struct {
	Server  string `yaml:"server"`
	Token   string `yaml:"token"`
	Project string `yaml:"project,omitempty"`
}

// ConfigPath returns $XDG_CONFIG_HOME/slipway/config.yaml, falling back to
// ~/.config as the XDG spec says.
func ConfigPath(env func(string) string) (string, error) {
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

// ReadConfig reads the config file at path; a file that does not exist
// is an empty config.
func ReadConfig(path string) (FileConfig, error) {
	var c FileConfig
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

package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenAccessLog(t *testing.T) {
	if l, closeLog, err := openAccessLog("", nil); l != nil || err != nil {
		t.Fatalf(`openAccessLog("") = %v, %v; want off`, l, err)
	} else {
		closeLog()
	}
	path := filepath.Join(t.TempDir(), "access.log")
	l, closeLog, err := openAccessLog(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("request", "status", 200)
	closeLog()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 (client addresses are personal data)", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil || m["status"] != 200.0 || m["msg"] != "request" {
		t.Errorf("record %q: %v", b, err)
	}
	var sb strings.Builder
	l, _, _ = openAccessLog("-", &sb)
	l.Info("request")
	if !strings.Contains(sb.String(), `"msg":"request"`) {
		t.Errorf("- wrote %q to stderr", sb.String())
	}
	if _, _, err := openAccessLog(filepath.Join(t.TempDir(), "no", "such", "dir"), nil); err == nil || !strings.HasPrefix(err.Error(), "--access-log ") {
		t.Errorf("unwritable path: %v, want an error naming --access-log", err)
	}
}

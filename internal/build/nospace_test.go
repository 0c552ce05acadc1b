package build_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build"
	"slipway.dev/slipway/internal/store/storetest"
)

// An upload the disk has no room for is the server's trouble: 507
// InsufficientStorage saying so (not 400), and nothing is left behind.
func TestStageOnAFullDiskIsInsufficientStorage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fs")
	storetest.MountTmpfs(t, dir, 1<<20)
	storetest.FillDisk(t, filepath.Join(dir, "filler"))
	src := &build.Sources{Dir: filepath.Join(dir, "builds"), MaxBytes: 8 << 20}
	_, err := src.Stage(context.Background(), bytes.NewReader(make([]byte, 512<<10)))
	if api.ReasonOf(err) != api.ReasonInsufficientStorage || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("Stage on a full disk: %v; want InsufficientStorage saying no space left on device", err)
	}
	left, _ := os.ReadDir(filepath.Join(dir, "builds", ".uploads"))
	if len(left) != 0 {
		t.Errorf("a refused upload left %d files behind", len(left))
	}
}

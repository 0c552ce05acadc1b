//go:build !linux

package storetest

import (
	"os"
	"testing"
)

// RequireTmpfsVar, set to 1 (CI), makes MountTmpfs fail a test where it
// cannot mount instead of skipping it.
const RequireTmpfsVar = "SLIPWAY_REQUIRE_TMPFS"

// MountTmpfs skips the test: full-disk tests mount a tmpfs, on Linux only.
func MountTmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if os.Getenv(RequireTmpfsVar) == "1" {
		t.Fatalf("full-disk tests mount a tmpfs, which needs Linux, and %s=1", RequireTmpfsVar)
	}
	t.Skip("skipping: full-disk tests mount a tmpfs, which needs Linux")
}

// FillDisk is not reached: MountTmpfs skipped the test.
func FillDisk(t testing.TB, path string) int64 {
	t.Helper()
	t.Skip("skipping: full-disk tests need Linux")
	return 0
}

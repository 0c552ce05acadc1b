package storetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// RequireTmpfsVar, set to 1 (CI), makes MountTmpfs fail a test where it
// cannot mount instead of skipping it.
const RequireTmpfsVar = "SLIPWAY_REQUIRE_TMPFS"

// MountTmpfs mounts a tmpfs of size bytes on dir (created if missing) for
// the test's life: full-disk tests fill it. It needs root (or
// CAP_SYS_ADMIN): without it the test is skipped, or failed when
// SLIPWAY_REQUIRE_TMPFS=1. The mount is undone when the test ends.
func MountTmpfs(t testing.TB, dir string, size int64) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0700", size))
	if err != nil {
		msg := fmt.Sprintf("cannot mount a %d-byte tmpfs on %s for a full-disk test: %v (needs root or CAP_SYS_ADMIN)", size, dir, err)
		if os.Getenv(RequireTmpfsVar) == "1" {
			t.Fatalf("%s, and %s=1", msg, RequireTmpfsVar)
		}
		t.Skipf("skipping: %s; set %s=1 to make this a failure", msg, RequireTmpfsVar)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			// Something still holds it open: detach it so it goes when
			// the last user does, and say so.
			t.Errorf("unmounting the tmpfs on %s: %v", dir, err)
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
}

// FillDisk writes the file path until its file system refuses with ENOSPC
// and returns how many bytes it wrote. Removing the file frees them.
func FillDisk(t testing.TB, path string) int64 {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	var n int64
	for len(buf) > 0 {
		m, err := f.Write(buf)
		n += int64(m)
		switch {
		case errors.Is(err, syscall.ENOSPC):
			buf = buf[:len(buf)/2] // the last pages, smaller
		case err != nil:
			t.Fatalf("filling %s: %v", filepath.Dir(path), err)
		}
	}
	return n
}

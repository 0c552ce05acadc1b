package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/storetest"
)

// On a full disk a write is refused with store.ErrNoSpace and changes
// nothing, reads go on, CheckWritable says why, and once space is freed
// writes succeed again; the file then holds exactly the acknowledged
// writes. The refused writes are large values, so each must move bbolt's
// high-water mark: bbolt remaps the file larger and grows it (a sparse
// truncate, which tmpfs grants), and the pages written past the old end
// are what the disk refuses: bbolt's mmap/grow path failing on ENOSPC,
// after which the file must stay usable. (A truncate refused with ENOSPC,
// which no file system here produces, is the classifier's case in
// TestIsNoSpace.)
func TestFullDiskRefusesWritesAndRecovers(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fs")
	storetest.MountTmpfs(t, dir, 4<<20)
	path := filepath.Join(dir, "slipway.db")
	ctx := context.Background()
	s := openTest(t, path, Options{})

	acked := map[string][]byte{}
	for i := range 20 {
		k, v := fmt.Sprintf("/k/%02d", i), bytes.Repeat([]byte{byte('a' + i)}, 1000)
		if _, err := s.Create(ctx, k, v); err != nil {
			t.Fatal(err)
		}
		acked[k] = v
	}
	filler := filepath.Join(dir, "filler")
	storetest.FillDisk(t, filler)

	before := fileSize(t, path)
	_, err := s.Create(ctx, "/big/0", bytes.Repeat([]byte("x"), 256<<10))
	if after := fileSize(t, path); after < before+256<<10 {
		t.Errorf("the refused write did not grow the file (%d to %d bytes): bbolt's grow path was not taken", before, after)
	}
	if !errors.Is(err, store.ErrNoSpace) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("a 256 KiB create on a full disk: %v; want store.ErrNoSpace saying no space left on device", err)
	}
	// Writers at once share a transaction; the refused ones must not take
	// the others with them, and each call learns its own fate.
	var mu sync.Mutex
	var wg sync.WaitGroup
	refused := map[string]bool{"/big/0": true}
	for i := range 8 {
		wg.Go(func() {
			k, v := fmt.Sprintf("/c/%d", i), bytes.Repeat([]byte{byte('0' + i)}, 64<<10)
			_, err := s.Create(ctx, k, v)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				acked[k] = v
			case errors.Is(err, store.ErrNoSpace):
				refused[k] = true
			default:
				t.Errorf("create %s on a full disk: %v; want nil or store.ErrNoSpace", k, err)
			}
		})
	}
	wg.Wait()
	if err := s.CheckWritable(ctx); !errors.Is(err, store.ErrNoSpace) || !strings.HasPrefix(err.Error(), "no space left on device: the store has refused writes since ") || strings.Contains(err.Error(), dir) {
		t.Errorf("CheckWritable on a full disk = %v; want store.ErrNoSpace saying since when, without the path", err)
	}
	if kv, err := s.Get(ctx, "/k/03"); err != nil || !bytes.Equal(kv.Value, acked["/k/03"]) {
		t.Errorf("Get on a full disk: %v", err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("the file is inconsistent after refused writes: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "CheckWritable to see the freed space", func() bool { return s.CheckWritable(ctx) == nil })
	for i := range 2 {
		k, v := fmt.Sprintf("/big/%d", i+1), bytes.Repeat([]byte("y"), 256<<10)
		if _, err := s.Create(ctx, k, v); err != nil {
			t.Fatalf("create once space was freed: %v", err)
		}
		acked[k] = v
	}
	if err := s.Check(); err != nil {
		t.Errorf("the file is inconsistent: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, path, Options{})
	res, err := s.List(ctx, "/", store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]byte{}
	for _, kv := range res.KVs {
		got[kv.Key] = kv.Value
		if refused[kv.Key] {
			t.Errorf("refused write %s is in the file", kv.Key)
		}
	}
	if diff := cmp.Diff(acked, got); diff != "" {
		t.Errorf("after reopening, the file differs from the acknowledged writes (-acked +file):\n%s", diff)
	}
	if res.Revision != int64(len(acked)) {
		t.Errorf("revision %d after %d acknowledged writes: a refused write took a revision", res.Revision, len(acked))
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func TestIsNoSpace(t *testing.T) {
	pathErr := func(op string, errno syscall.Errno) error {
		return &os.PathError{Op: op, Path: "/data/slipway.db", Err: errno}
	}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{pathErr("write", syscall.ENOSPC), true},
		{pathErr("write", syscall.EDQUOT), true},
		{fmt.Errorf("history revision 3: %w", pathErr("write", syscall.ENOSPC)), true},
		// bbolt's grow wraps the truncate's error with %s.
		{fmt.Errorf("file resize error: %s", pathErr("truncate", syscall.ENOSPC)), true},
		{fmt.Errorf("file sync error: %s", pathErr("sync", syscall.EDQUOT)), true},
		{pathErr("write", syscall.EIO), false},
		{errors.New("database not open"), false},
	} {
		if got := isNoSpace(tc.err); got != tc.want {
			t.Errorf("isNoSpace(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

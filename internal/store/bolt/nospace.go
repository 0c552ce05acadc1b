package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
)

// A full disk fails a commit and nothing else: bbolt writes a
// transaction's pages before its meta page, so a commit whose page writes
// (or the file's growth) fail is rolled back whole and the file keeps its
// last committed state. The store then answers store.ErrNoSpace for that
// write, keeps reading, remembers the failure for CheckWritable (readiness)
// and forgets it at the next commit that succeeds.

// maxProbe caps the bytes CheckWritable writes to learn whether the write
// that failed would now fit.
const maxProbe = 8 << 20

// probeInterval bounds how often CheckWritable writes to the disk.
const probeInterval = time.Second

var metaProbe = []byte("writeProbe")

// noSpace records a write refused for want of space.
type noSpace struct {
	path  string
	since time.Time
	need  int   // bytes the refused write needed, about
	cause error // the file system's error
}

// noSpaceError is the error of a write refused for want of space: it is
// store.ErrNoSpace for errors.Is and keeps the file system's error.
type noSpaceError struct {
	msg   string
	cause error
}

func (e *noSpaceError) Error() string        { return e.msg }
func (e *noSpaceError) Is(target error) bool { return target == store.ErrNoSpace }
func (e *noSpaceError) Unwrap() error        { return e.cause }

// isNoSpace tells whether err is the file system refusing a write for want
// of space or quota. bbolt wraps some of its errors with %s (growing the
// file: "file resize error: truncate …: no space left on device"), which
// loses the errno, so the message is read too.
func isNoSpace(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// errnoOf words err without the file's path.
func errnoOf(err error) string {
	switch {
	case errors.Is(err, syscall.EDQUOT):
		return syscall.EDQUOT.Error()
	case errors.Is(err, syscall.ENOSPC):
		return syscall.ENOSPC.Error()
	}
	return err.Error()
}

// refusedForSpace records a commit of o refused for want of space and
// returns the caller's error.
func (s *Store) refusedForSpace(o *op, err error) error {
	ns := &noSpace{path: s.path, since: time.Now(), need: 2*(len(o.key)+len(o.value)) + 4096, cause: err}
	if old := s.noSpace.Swap(ns); old == nil {
		s.log.Error("the disk is full: writes are refused until space is freed", "err", err)
	}
	return &noSpaceError{msg: fmt.Sprintf("bolt store: write %q: no space left on device (%v)", o.key, err), cause: err}
}

// committed forgets a recorded lack of space once a commit succeeded.
func (s *Store) committed() {
	if s.noSpace.Swap(nil) != nil {
		s.log.Info("writes succeed again: space was freed")
	}
}

// CheckWritable returns nil unless the last write was refused for want of
// space (store.ErrNoSpace, saying since when and why). In that state it
// tries, at most once per probeInterval, to write as much as the refused
// write needed (then removes it); when that succeeds, space was freed and
// it returns nil. It never touches a key, a revision or history.
func (s *Store) CheckWritable(ctx context.Context) error {
	ns := s.noSpace.Load()
	if ns == nil {
		return nil
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	s.probeMu.Lock()
	defer s.probeMu.Unlock()
	if ns = s.noSpace.Load(); ns == nil {
		return nil
	}
	if time.Since(s.lastProbe) >= probeInterval {
		s.lastProbe = time.Now()
		err := s.db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(metaProbe, make([]byte, min(ns.need, maxProbe)))
		})
		if err == nil {
			// The probe's pages go back to the freelist for the next write.
			_ = s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Delete(metaProbe) })
			s.noSpace.CompareAndSwap(ns, nil)
			s.log.Info("writes should succeed again: space was freed")
			return nil
		}
		if !isNoSpace(err) {
			return fmt.Errorf("bolt store: probing %s for space: %w", s.path, err)
		}
	}
	// No path: /readyz, which answers anyone, says this.
	return &noSpaceError{msg: fmt.Sprintf("no space left on device: the store has refused writes since %s (%s); free space on the file system of the data dir",
		ns.since.UTC().Format(time.RFC3339), errnoOf(ns.cause)), cause: ns.cause}
}

package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// compactChunk bounds the history records one compaction transaction
// deletes, so that compaction never holds the write lock for long.
const compactChunk = 10_000

// compactSlack is how far history may grow past keep before automatic
// compaction runs, so that it runs in chunks rather than after every write.
func compactSlack(keep int64) int64 {
	return max(keep/10, 1)
}

// Compact implements store.Store. Compacting to a revision at or below the
// compacted one is a no-op; a revision beyond the current one is an error.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if rev < 0 {
		return fmt.Errorf("bolt store: compact revision %d is negative", rev)
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	if cur := s.rev.Load(); rev > cur {
		return fmt.Errorf("bolt store: compact revision %d is beyond the current revision %d", rev, cur)
	}
	return s.compact(ctx, rev)
}

func (s *Store) compact(ctx context.Context, rev int64) error {
	for s.compacted.Load() < rev {
		if err := ctx.Err(); err != nil {
			return err
		}
		var done int64
		err := s.db.Update(func(tx *bbolt.Tx) error {
			_, compacted, err := readMeta(tx)
			if err != nil {
				return err
			}
			done = compacted
			history := tx.Bucket(bucketHistory)
			c := history.Cursor()
			n, last := 0, int64(0)
			for k, _ := c.First(); k != nil && n < compactChunk; k, _ = c.First() {
				r, err := fromBE64(k)
				if err != nil {
					return err
				}
				if r > rev {
					break
				}
				if err := c.Delete(); err != nil {
					return err
				}
				n, last = n+1, r
			}
			if n < compactChunk {
				// Nothing is left at or below rev.
				last = rev
			}
			done = max(done, last)
			return tx.Bucket(bucketMeta).Put(metaCompacted, be64(done))
		})
		if err != nil {
			return fmt.Errorf("bolt store: compact to %d: %w", rev, err)
		}
		for {
			old := s.compacted.Load()
			if done <= old || s.compacted.CompareAndSwap(old, done) {
				break
			}
		}
		s.log.Debug("history compacted", "compacted", done, "target", rev)
	}
	return nil
}

// compactor keeps history at about keep revisions, off the write path.
func (s *Store) compactor() {
	defer s.writerWG.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.quit
		cancel()
	}()
	for {
		select {
		case <-s.quit:
			return
		case <-s.compactCh:
			target := s.rev.Load() - s.keep
			if err := s.compact(ctx, target); err != nil && ctx.Err() == nil {
				s.log.Error("automatic compaction failed", "target", target, "err", err)
			}
		}
	}
}

package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"slipway.dev/slipway/internal/store"
)

// Each write is one etcd transaction: the comparison and the change are
// applied together by the leader, and the answer comes after a quorum has
// committed it. A refused comparison writes nothing and uses no revision;
// its Else branch reads the key's revision for the error.
//
// Unlike bolt's, a write that fails with a context or connection error
// may still have been committed: a network store cannot know. The caller's
// next compare-and-swap then sees the new revision and gets ErrConflict.

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte) (int64, error) {
	if err := s.check(ctx, key); err != nil {
		return 0, err
	}
	k := s.etcdKey(key)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, string(value))).
		Commit()
	if err != nil {
		return 0, s.fail(fmt.Sprintf("create %q", key), err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("create %q: %w", key, store.ErrExists)
	}
	s.wrote(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, value []byte, expected int64) (int64, error) {
	if expected <= 0 {
		// mod_revision 0 is etcd's "absent": comparing with it would create.
		return 0, fmt.Errorf("etcd store: update %q: expected revision %d must be positive: %w", key, expected, store.ErrConflict)
	}
	if err := s.check(ctx, key); err != nil {
		return 0, err
	}
	k := s.etcdKey(key)
	resp, err := s.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(k), "=", expected)).
		Then(clientv3.OpPut(k, string(value))).
		Else(clientv3.OpGet(k, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, s.fail(fmt.Sprintf("update %q", key), err)
	}
	if !resp.Succeeded {
		return 0, refused("update", key, expected, resp)
	}
	s.wrote(resp.Header.Revision)
	return resp.Header.Revision, nil
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expected int64) (int64, store.KeyValue, error) {
	if expected < 0 {
		return 0, store.KeyValue{}, fmt.Errorf("etcd store: delete %q: expected revision %d is negative (0 means any)", key, expected)
	}
	if err := s.check(ctx, key); err != nil {
		return 0, store.KeyValue{}, err
	}
	k := s.etcdKey(key)
	cond := clientv3.Compare(clientv3.ModRevision(k), "=", expected)
	if expected == 0 {
		cond = clientv3.Compare(clientv3.CreateRevision(k), ">", 0)
	}
	resp, err := s.cli.Txn(ctx).
		If(cond).
		Then(clientv3.OpDelete(k, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(k, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return 0, store.KeyValue{}, s.fail(fmt.Sprintf("delete %q", key), err)
	}
	if !resp.Succeeded {
		return 0, store.KeyValue{}, refused("delete", key, expected, resp)
	}
	prev := resp.Responses[0].GetResponseDeleteRange().GetPrevKvs()
	if len(prev) != 1 {
		// The comparison held, so the key existed; etcd always returns it.
		return 0, store.KeyValue{}, fmt.Errorf("etcd store: delete %q: etcd returned %d previous values, want 1", key, len(prev))
	}
	s.wrote(resp.Header.Revision)
	return resp.Header.Revision, s.kv(prev[0]), nil
}

func (s *Store) check(ctx context.Context, key string) error {
	if err := validKey(key); err != nil {
		return err
	}
	return s.enter(ctx)
}

// refused turns a failed comparison into ErrNotFound or ErrConflict from
// the Else branch's read of the key.
func refused(what, key string, expected int64, resp *clientv3.TxnResponse) error {
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) == 0 {
		return fmt.Errorf("%s %q: %w", what, key, store.ErrNotFound)
	}
	return fmt.Errorf("%s %q: expected revision %d, key is at %d: %w", what, key, expected, kvs[0].ModRevision, store.ErrConflict)
}

// Compact implements store.Store. It compacts the whole cluster's history
// (etcd has one revision for all keys). Compacting to a revision at or
// below the compacted one is a no-op; beyond the current one, an error.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if rev < 0 {
		return fmt.Errorf("etcd store: compact revision %d is negative", rev)
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	if rev == 0 {
		return nil // etcd's first revision is 1: there is nothing at 0
	}
	_, err := s.cli.Compact(ctx, rev)
	switch {
	case err == nil, errorIs(err, rpctypes.ErrCompacted):
	case errorIs(err, rpctypes.ErrFutureRev):
		return fmt.Errorf("etcd store: compact revision %d is beyond the current revision", rev)
	default:
		return s.fail(fmt.Sprintf("compact to %d", rev), err)
	}
	for {
		old := s.compacted.Load()
		if rev <= old || s.compacted.CompareAndSwap(old, rev) {
			return nil
		}
	}
}

// errorIs compares an error of the client with one of rpctypes' by
// message: the client returns them converted from gRPC statuses.
func errorIs(err, target error) bool {
	return err != nil && rpctypes.ErrorDesc(err) == target.Error()
}

// wrote asks the compactor to run when history has grown keep revisions
// (and a tenth more) past what this process last compacted.
func (s *Store) wrote(rev int64) {
	if s.keep <= 0 || rev-s.compacted.Load() <= s.keep+max(s.keep/10, 1) {
		return
	}
	select {
	case s.compactCh <- rev:
	default:
	}
}

// compactor runs automatic compaction off the write path.
func (s *Store) compactor() {
	defer s.wg.Done()
	for {
		select {
		case <-s.root.Done():
			return
		case rev := <-s.compactCh:
			target := rev - s.keep
			if err := s.Compact(s.root, target); err != nil && s.root.Err() == nil {
				s.log.Error("automatic compaction failed", "target", target, "err", err)
				continue
			}
			s.log.Debug("history compacted", "compacted", target)
		}
	}
}

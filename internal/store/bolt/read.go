package bolt

import (
	"bytes"
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
)

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KeyValue, error) {
	if err := validKey(key); err != nil {
		return store.KeyValue{}, err
	}
	if err := s.enter(ctx); err != nil {
		return store.KeyValue{}, err
	}
	defer s.mu.RUnlock()
	var kv store.KeyValue
	err := s.db.View(func(tx *bbolt.Tx) error {
		rec := tx.Bucket(bucketKeys).Get([]byte(key))
		if rec == nil {
			return fmt.Errorf("get %q: %w", key, store.ErrNotFound)
		}
		var err error
		kv, err = decodeKeyRecord(key, rec)
		return err
	})
	return kv, err
}

// List implements store.Store. The keys and Revision come from one read
// transaction, so they are exactly the state at Revision.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	if opts.Limit < 0 {
		return store.ListResult{}, fmt.Errorf("bolt store: list %q: limit %d is negative", prefix, opts.Limit)
	}
	if err := s.enter(ctx); err != nil {
		return store.ListResult{}, err
	}
	defer s.mu.RUnlock()
	var res store.ListResult
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if res.Revision, _, err = readMeta(tx); err != nil {
			return err
		}
		p := []byte(prefix)
		c := tx.Bucket(bucketKeys).Cursor()
		k, v := c.Seek(p)
		if opts.After != "" && opts.After >= prefix {
			k, v = c.Seek([]byte(opts.After))
			if k != nil && string(k) == opts.After {
				k, v = c.Next()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
			if opts.Limit > 0 && len(res.KVs) == opts.Limit {
				break
			}
			kv, err := decodeKeyRecord(string(k), v)
			if err != nil {
				return err
			}
			res.KVs = append(res.KVs, kv)
		}
		return nil
	})
	if err != nil {
		return store.ListResult{}, fmt.Errorf("bolt store: list %q: %w", prefix, err)
	}
	return res, nil
}

// Revision implements store.Store.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	return s.rev.Load(), nil
}

package bolt

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
)

type opKind int

const (
	opCreate opKind = iota + 1
	opUpdate
	opDelete
)

// op is one queued write. The writer fills res and closes done.
type op struct {
	ctx      context.Context
	kind     opKind
	key      string
	value    []byte
	expected int64

	res  result
	done chan struct{}
}

type result struct {
	rev  int64
	prev store.KeyValue
	err  error
}

// Create implements store.Store.
func (s *Store) Create(ctx context.Context, key string, value []byte) (int64, error) {
	res := s.write(ctx, &op{kind: opCreate, key: key, value: value})
	return res.rev, res.err
}

// Update implements store.Store.
func (s *Store) Update(ctx context.Context, key string, value []byte, expected int64) (int64, error) {
	if expected <= 0 {
		return 0, fmt.Errorf("bolt store: update %q: expected revision %d must be positive: %w", key, expected, store.ErrConflict)
	}
	res := s.write(ctx, &op{kind: opUpdate, key: key, value: value, expected: expected})
	return res.rev, res.err
}

// Delete implements store.Store.
func (s *Store) Delete(ctx context.Context, key string, expected int64) (int64, store.KeyValue, error) {
	if expected < 0 {
		return 0, store.KeyValue{}, fmt.Errorf("bolt store: delete %q: expected revision %d is negative (0 means any)", key, expected)
	}
	res := s.write(ctx, &op{kind: opDelete, key: key, expected: expected})
	return res.rev, res.prev, res.err
}

// write queues o and waits for its commit. An error means nothing was
// written: once queued, a call is not abandoned on ctx, so a caller never
// has to guess whether a write it gave up on landed.
func (s *Store) write(ctx context.Context, o *op) result {
	if err := validKey(o.key); err != nil {
		return result{err: err}
	}
	if err := s.enter(ctx); err != nil {
		return result{err: err}
	}
	o.ctx = ctx
	o.value = clone(o.value) // the caller may reuse its slice once we return
	if o.value == nil {
		o.value = []byte{}
	}
	o.done = make(chan struct{})
	s.ops <- o
	s.mu.RUnlock()
	<-o.done
	return o.res
}

func validKey(key string) error {
	switch {
	case key == "":
		return errors.New("bolt store: key is empty")
	case len(key) > bbolt.MaxKeySize:
		return fmt.Errorf("bolt store: key of %d bytes exceeds the %d-byte limit", len(key), bbolt.MaxKeySize)
	}
	return nil
}

// writer is the only goroutine that writes keys and history. It commits
// whatever is queued as one transaction, then publishes the events in
// revision order, then answers the callers.
func (s *Store) writer() {
	defer s.writerWG.Done()
	batch := make([]*op, 0, defaultMaxBatch)
	for o := range s.ops {
		batch = append(batch[:0], o)
	fill:
		for len(batch) < defaultMaxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *Store) commit(batch []*op) {
	live := batch[:0:0]
	for _, o := range batch {
		if err := o.ctx.Err(); err != nil {
			o.res = result{err: err}
			close(o.done)
			continue
		}
		live = append(live, o)
	}
	if len(live) == 0 {
		return
	}
	var events []store.Event
	var rev int64
	err := s.db.Update(func(tx *bbolt.Tx) error {
		events = events[:0]
		var err error
		if rev, _, err = readMeta(tx); err != nil {
			return err
		}
		keys, history := tx.Bucket(bucketKeys), tx.Bucket(bucketHistory)
		for _, o := range live {
			ev, res, err := apply(keys, o, rev+1)
			if err != nil {
				return err
			}
			o.res = res
			if res.err != nil {
				continue
			}
			rev++
			if err := history.Put(be64(rev), encodeEvent(ev)); err != nil {
				return fmt.Errorf("history revision %d: %w", rev, err)
			}
			events = append(events, ev)
		}
		if len(events) == 0 {
			return nil
		}
		return tx.Bucket(bucketMeta).Put(metaRevision, be64(rev))
	})
	if err != nil {
		if len(live) > 1 {
			// One call's failure must not fail the others: retry each alone.
			for _, o := range live {
				s.commit([]*op{o})
			}
			return
		}
		if isNoSpace(err) {
			live[0].res = result{err: s.refusedForSpace(live[0], err)}
		} else {
			s.log.Error("commit failed", "key", live[0].key, "err", err)
			live[0].res = result{err: fmt.Errorf("bolt store: write %q: %w", live[0].key, err)}
		}
		close(live[0].done)
		return
	}
	if len(events) > 0 {
		s.committed()
		s.rev.Store(rev)
		s.hub.publish(events, rev)
		if s.keep > 0 && rev-s.compacted.Load() > s.keep+compactSlack(s.keep) {
			select {
			case s.compactCh <- struct{}{}:
			default:
			}
		}
	}
	for _, o := range live {
		close(o.done)
	}
}

// apply performs o at revision rev inside the write transaction. A refused
// call (exists, not found, conflict) writes nothing and reports through
// res.err; a returned error is a database failure and aborts the batch.
func apply(keys *bbolt.Bucket, o *op, rev int64) (store.Event, result, error) {
	k := []byte(o.key)
	var cur *store.KeyValue
	if rec := keys.Get(k); rec != nil {
		kv, err := decodeKeyRecord(o.key, rec)
		if err != nil {
			return store.Event{}, result{}, err
		}
		cur = &kv
	}
	var ev store.Event
	switch o.kind {
	case opCreate:
		if cur != nil {
			return ev, result{err: fmt.Errorf("create %q: %w", o.key, store.ErrExists)}, nil
		}
		ev = store.Event{Type: store.EventPut, KV: store.KeyValue{Key: o.key, Value: o.value, CreateRevision: rev, ModRevision: rev}}
	case opUpdate:
		if cur == nil {
			return ev, result{err: fmt.Errorf("update %q: %w", o.key, store.ErrNotFound)}, nil
		}
		if cur.ModRevision != o.expected {
			return ev, result{err: fmt.Errorf("update %q: expected revision %d, key is at %d: %w", o.key, o.expected, cur.ModRevision, store.ErrConflict)}, nil
		}
		ev = store.Event{Type: store.EventPut, KV: store.KeyValue{Key: o.key, Value: o.value, CreateRevision: cur.CreateRevision, ModRevision: rev}, PrevKV: cur}
	case opDelete:
		if cur == nil {
			return ev, result{err: fmt.Errorf("delete %q: %w", o.key, store.ErrNotFound)}, nil
		}
		if o.expected != 0 && cur.ModRevision != o.expected {
			return ev, result{err: fmt.Errorf("delete %q: expected revision %d, key is at %d: %w", o.key, o.expected, cur.ModRevision, store.ErrConflict)}, nil
		}
		ev = store.Event{Type: store.EventDelete, KV: store.KeyValue{Key: o.key, Value: cur.Value, CreateRevision: cur.CreateRevision, ModRevision: rev}, PrevKV: cur}
		if err := keys.Delete(k); err != nil {
			return ev, result{}, fmt.Errorf("delete %q: %w", o.key, err)
		}
		prev := *cur
		prev.Value = clone(cur.Value) // the caller's copy; the event's goes to watchers
		return ev, result{rev: rev, prev: prev}, nil
	}
	if err := keys.Put(k, encodeKeyRecord(ev.KV.CreateRevision, rev, o.value)); err != nil {
		return ev, result{}, fmt.Errorf("put %q: %w", o.key, err)
	}
	return ev, result{rev: rev}, nil
}

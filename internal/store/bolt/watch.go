package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"slipway.dev/slipway/internal/store"
)

// A watcher alternates between two modes:
//
//	replay: read history from the next revision it owes, in short read
//	        transactions (a long one would stall bbolt's remap on growth);
//	live:   take events the writer publishes into a bounded buffer.
//
// To go live it subscribes first and then replays once more up to the end
// of history, which is at or past the subscription point because the
// writer publishes only after commit; live events at or below what it
// replayed are dropped. So nothing is missed and nothing repeats. When the
// writer finds a buffer full it unsubscribes that watcher instead of
// waiting; the watcher delivers what it had buffered and goes back to
// replay. A watcher only fails if compaction overtook it.

// Replay chunk limits: records examined and events kept per read
// transaction.
const (
	replayScan = 4096
	replayKeep = 256
)

var errLagged = errors.New("watcher fell behind")

// sub is a watcher's live subscription. The hub closes ch when it is full.
type sub struct {
	prefix string
	ch     chan store.Event
}

// hub hands committed events to live subscriptions without ever blocking.
type hub struct {
	mu     sync.Mutex
	rev    int64 // last published revision
	subs   map[*sub]struct{}
	lagged int64 // subscriptions dropped for being full; tests read it
}

func (h *hub) publish(evs []store.Event, rev int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.rev = rev
	for s := range h.subs {
		for _, ev := range evs {
			if !strings.HasPrefix(ev.KV.Key, s.prefix) {
				continue
			}
			select {
			case s.ch <- ev:
				continue
			default:
			}
			close(s.ch)
			delete(h.subs, s)
			h.lagged++
			break
		}
	}
}

func (h *hub) attach(prefix string, size int) *sub {
	s := &sub{prefix: prefix, ch: make(chan store.Event, size)}
	h.mu.Lock()
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	return s
}

func (h *hub) detach(s *sub) {
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

func (h *hub) subCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

func (h *hub) laggedCount() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lagged
}

type watcher struct {
	s      *Store
	ctx    context.Context
	prefix string
	store.Stream
}

// Watch implements store.Store.
func (s *Store) Watch(ctx context.Context, prefix string, after int64) (store.Watcher, error) {
	if after < 0 {
		return nil, fmt.Errorf("bolt store: watch %q: after revision %d is negative", prefix, after)
	}
	if err := s.enter(ctx); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	if c := s.compacted.Load(); after < c {
		return nil, fmt.Errorf("bolt store: watch %q after %d: history is compacted up to %d: %w", prefix, after, c, store.ErrCompacted)
	}
	w := &watcher{s: s, ctx: ctx, prefix: prefix, Stream: store.NewStream()}
	s.watchWG.Add(1)
	go w.run(after)
	return w, nil
}

func (w *watcher) run(after int64) {
	defer w.s.watchWG.Done()
	err := w.loop(after + 1)
	if err == errStopped {
		err = nil // the watcher's owner ended it; nothing went wrong
	}
	w.End(err)
}

// loop delivers events from revision next on until it fails or stops.
func (w *watcher) loop(next int64) error {
	for {
		if err := w.replay(&next); err != nil {
			return err
		}
		sub := w.s.hub.attach(w.prefix, w.s.watchBuffer)
		err := w.replay(&next)
		if err == nil {
			err = w.live(sub, &next)
		}
		if err != errLagged {
			w.s.hub.detach(sub)
			return err
		}
	}
}

func (w *watcher) live(sub *sub, next *int64) error {
	for {
		select {
		case ev, ok := <-sub.ch:
			if !ok {
				return errLagged
			}
			if ev.Revision() < *next {
				continue // already replayed
			}
			if err := w.send(copyEvent(ev)); err != nil {
				return err
			}
			*next = ev.Revision() + 1
		case <-w.ctx.Done():
			return errStopped
		case <-w.s.quit:
			return store.ErrClosed
		}
	}
}

// replay delivers history from *next to the end of what is committed.
func (w *watcher) replay(next *int64) error {
	for {
		select {
		case <-w.ctx.Done():
			return errStopped
		case <-w.s.quit:
			return store.ErrClosed
		default:
		}
		evs, last, end, err := w.read(*next)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if err := w.send(ev); err != nil {
				return err
			}
		}
		*next = last + 1
		if end {
			return nil
		}
	}
}

// read returns the matching events of one chunk of history from next on,
// the last revision it examined, and whether that is the end of history.
func (w *watcher) read(next int64) (evs []store.Event, last int64, end bool, err error) {
	last = next - 1
	err = w.s.db.View(func(tx *bbolt.Tx) error {
		rev, compacted, err := readMeta(tx)
		if err != nil {
			return err
		}
		if next-1 < compacted {
			return fmt.Errorf("bolt store: watch %q fell behind to revision %d; history is compacted up to %d: %w", w.prefix, next-1, compacted, store.ErrCompacted)
		}
		p := []byte(w.prefix)
		c := tx.Bucket(bucketHistory).Cursor()
		k, v := c.Seek(be64(next))
		for scanned := 0; k != nil && scanned < replayScan && len(evs) < replayKeep; k, v = c.Next() {
			r, err := fromBE64(k)
			if err != nil {
				return err
			}
			key, err := eventKey(v)
			if err != nil {
				return fmt.Errorf("%w: history revision %d: %v", errCorrupt, r, err)
			}
			if bytes.HasPrefix(key, p) {
				ev, err := decodeEvent(r, v)
				if err != nil {
					return err
				}
				evs = append(evs, ev)
			}
			last = r
			scanned++
		}
		if k == nil {
			end = true
			last = max(last, rev)
		}
		return nil
	})
	return evs, last, end, err
}

// send returns nil once ev is delivered.
func (w *watcher) send(ev store.Event) error {
	select {
	case w.Out() <- ev:
		return nil
	case <-w.ctx.Done():
		return errStopped
	case <-w.s.quit:
		return store.ErrClosed
	}
}

var errStopped = errors.New("watch context ended")

func copyEvent(ev store.Event) store.Event {
	ev.KV.Value = clone(ev.KV.Value)
	if ev.PrevKV != nil {
		prev := *ev.PrevKV
		prev.Value = clone(prev.Value)
		ev.PrevKV = &prev
	}
	return ev
}

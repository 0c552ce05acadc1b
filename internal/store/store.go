// Package store defines Slipway's storage contract: a key-value store with
// etcd's semantics (one global revision, compare-and-swap on a key's
// modification revision, ordered gap-free watches resumable from a revision).
// Backends live in sub-packages (bolt, etcd) and all pass the
// conformance suite in storetest.
package store

import (
	"context"
	"errors"
	"sync"
)

// Errors every backend returns (wrapped or bare; test with errors.Is).
var (
	// ErrNotFound: the key does not exist.
	ErrNotFound = errors.New("store: key not found")
	// ErrExists: Create found the key already present.
	ErrExists = errors.New("store: key already exists")
	// ErrConflict: the key's modification revision is not the one expected.
	ErrConflict = errors.New("store: revision conflict")
	// ErrCompacted: a watch asked for history that compaction removed;
	// the watcher must list again and watch from the list's revision.
	ErrCompacted = errors.New("store: requested revision has been compacted")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrNoSpace: the write was refused because the device holding the
	// store is full (ENOSPC) or its quota is spent (EDQUOT). Nothing was
	// written; the same write may succeed once space is freed.
	ErrNoSpace = errors.New("store: no space left on device")
)

// KeyValue is a stored value and the revisions that wrote it.
type KeyValue struct {
	Key   string
	Value []byte
	// CreateRevision is the revision that created the key.
	CreateRevision int64
	// ModRevision is the revision of the key's last write; it is what
	// Update and Delete compare against, and what objects expose as
	// metadata.resourceVersion.
	ModRevision int64
}

// EventType says what a watch event did to its key.
type EventType int

const (
	EventPut EventType = iota + 1
	EventDelete
)

func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return "UNKNOWN"
}

// Event is one change. For a put, KV is the new value (ModRevision is the
// event's revision); for a delete, KV holds the key, the value it had and
// ModRevision set to the deleting revision. PrevKV is the value before the
// change, nil for a create.
type Event struct {
	Type   EventType
	KV     KeyValue
	PrevKV *KeyValue
}

// Revision returns the revision at which the event happened.
func (e Event) Revision() int64 { return e.KV.ModRevision }

// ListResult is a consistent snapshot of a prefix.
type ListResult struct {
	KVs []KeyValue
	// Revision is the store revision the snapshot was read at; watching
	// from it misses nothing and repeats nothing.
	Revision int64
}

// ListOptions narrows a List.
type ListOptions struct {
	// Limit caps the number of KVs returned (0: no limit).
	Limit int
	// After starts the list after this key (for paging).
	After string
}

// Store is the contract. Every method is safe for concurrent use, and every
// write that returned without error is durable (it survives a SIGKILL of
// the process the next instant).
type Store interface {
	// Create writes key if it does not exist and returns the new revision.
	// It returns ErrExists if the key is present.
	Create(ctx context.Context, key string, value []byte) (int64, error)

	// Get returns the current value of key, or ErrNotFound.
	Get(ctx context.Context, key string) (KeyValue, error)

	// List returns the keys with the given prefix in key order, as of one
	// revision.
	List(ctx context.Context, prefix string, opts ListOptions) (ListResult, error)

	// Update replaces key's value if its ModRevision equals expected and
	// returns the new revision. It returns ErrNotFound if the key is absent
	// and ErrConflict (with nothing written) if ModRevision differs.
	Update(ctx context.Context, key string, value []byte, expected int64) (int64, error)

	// Delete removes key if its ModRevision equals expected (0: whatever it
	// is) and returns the deleting revision and the value removed. It
	// returns ErrNotFound or ErrConflict like Update.
	Delete(ctx context.Context, key string, expected int64) (int64, KeyValue, error)

	// Watch streams every change to keys with the given prefix whose
	// revision is greater than after, in revision order, with no gaps, until
	// ctx ends or the store closes (then the channel is closed; Err on the
	// Watcher says why). It returns ErrCompacted if after is older than the
	// oldest revision still kept.
	Watch(ctx context.Context, prefix string, after int64) (Watcher, error)

	// Revision returns the current store revision.
	Revision(ctx context.Context) (int64, error)

	// Compact drops history (watchable events) at or before rev.
	Compact(ctx context.Context, rev int64) error

	// Close releases the store. Watch channels close.
	Close() error
}

// Watcher is a stream of events.
type Watcher interface {
	// Events delivers the changes. It is closed when the watch ends.
	Events() <-chan Event
	// Err says why Events was closed: nil after ctx ended, ErrClosed,
	// or ErrCompacted when the watcher fell so far behind that the events
	// it needed were compacted away (it must relist).
	Err() error
}

// Stream is the delivery half of a Watcher that backends embed: the
// channel of events and why it closed.
type Stream struct {
	out chan Event

	mu  sync.Mutex
	err error
}

// NewStream returns an open Stream.
func NewStream() Stream { return Stream{out: make(chan Event)} }

// Events implements Watcher.
func (s *Stream) Events() <-chan Event { return s.out }

// Err implements Watcher.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Out is where the backend sends the events.
func (s *Stream) Out() chan<- Event { return s.out }

// End records why the watch ended and closes Events. Call it once.
func (s *Stream) End(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.out)
}

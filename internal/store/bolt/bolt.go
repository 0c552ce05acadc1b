// Package bolt is Slipway's embedded store: store.Store on one bbolt file.
//
// Layout (schemaVersion 1):
//
//	meta:    "schemaVersion", "revision", "compacted"   (8-byte big-endian)
//	keys:    key -> createRev, modRev, value             (see codec.go)
//	history: be64(revision) -> event                     (one per revision)
//
// Every write is one revision and one history record, committed with its
// key change in a single bbolt transaction, so history holds every revision
// in (compacted, revision] without gaps. Writes go through one goroutine
// that coalesces whatever is queued into a single transaction (group
// commit): concurrent writers share an fsync, a lone writer waits for
// nobody, and each call keeps its own compare-and-swap result because the
// calls in a batch are applied one after another inside the transaction.
// bbolt's own DB.Batch is not used: it delays a lone writer by
// MaxBatchDelay, may run a call twice, and gives no order in which to hand
// committed events to watchers.
package bolt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"slipway.dev/slipway/internal/store"
)

// schemaVersion is the layout this code reads and writes. Open refuses a
// file with a newer one rather than misreading it.
const schemaVersion = 1

var (
	bucketMeta    = []byte("meta")
	bucketKeys    = []byte("keys")
	bucketHistory = []byte("history")

	metaSchema    = []byte("schemaVersion")
	metaRevision  = []byte("revision")
	metaCompacted = []byte("compacted")
)

// Defaults for zero Options fields.
const (
	DefaultCompactKeep = 100_000
	DefaultLockTimeout = time.Second
	DefaultWatchBuffer = 1024
	defaultMaxBatch    = 512
)

// Options tunes a Store. The zero value is the production setting.
type Options struct {
	// Logger receives open, compaction and commit-failure records.
	// Nil discards them.
	Logger *slog.Logger
	// NoFsync skips fsync on commit: acknowledged writes are then NOT
	// durable. For benchmarks that want to measure everything but the disk.
	NoFsync bool
	// LockTimeout bounds the wait for the file lock another process holds
	// (default DefaultLockTimeout); Open then fails instead of hanging.
	LockTimeout time.Duration
	// CompactKeep is how many revisions of history automatic compaction
	// keeps (default DefaultCompactKeep); a negative value turns automatic
	// compaction off. A watcher further behind than this gets ErrCompacted.
	CompactKeep int64
	// WatchBuffer is how many live events a watcher may have undelivered
	// before it is switched back to reading history (default
	// DefaultWatchBuffer). Writers never wait for watchers.
	WatchBuffer int
}

// Store is a store.Store backed by one bbolt file.
type Store struct {
	db          *bbolt.DB
	path        string
	log         *slog.Logger
	keep        int64
	watchBuffer int

	// mu guards closed. Calls that touch the database hold it for reading,
	// so Close (which takes it for writing) waits for them.
	mu     sync.RWMutex
	closed bool

	ops       chan *op
	quit      chan struct{} // closed by Close: watchers and the compactor stop
	writerWG  sync.WaitGroup
	watchWG   sync.WaitGroup
	compactCh chan struct{}

	noSpace   atomic.Pointer[noSpace] // the last write refused for want of space, until a commit succeeds
	probeMu   sync.Mutex              // one CheckWritable probe at a time
	lastProbe time.Time               // guarded by probeMu

	rev       atomic.Int64 // last committed revision
	compacted atomic.Int64 // last compacted revision
	hub       hub
}

var _ store.Store = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600). It fails after
// LockTimeout if another process has the file open, and refuses a file
// written by a newer schema.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("bolt store: path is empty")
	}
	if opts.LockTimeout < 0 {
		return nil, fmt.Errorf("bolt store: LockTimeout %v is negative", opts.LockTimeout)
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.WatchBuffer < 0 {
		return nil, fmt.Errorf("bolt store: WatchBuffer %d is negative", opts.WatchBuffer)
	}
	if opts.WatchBuffer == 0 {
		opts.WatchBuffer = DefaultWatchBuffer
	}
	if opts.CompactKeep == 0 {
		opts.CompactKeep = DefaultCompactKeep
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:      opts.LockTimeout,
		NoSync:       opts.NoFsync,
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("bolt store: %s is locked by another process (gave up after %v): %w", path, opts.LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("bolt store: open %s: %w", path, err)
	}
	s := &Store{
		db:          db,
		path:        path,
		log:         log.With("store", path),
		keep:        opts.CompactKeep,
		watchBuffer: opts.WatchBuffer,
		ops:         make(chan *op, defaultMaxBatch),
		quit:        make(chan struct{}),
		compactCh:   make(chan struct{}, 1),
		hub:         hub{subs: map[*sub]struct{}{}},
	}
	rev, compacted, err := s.init()
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("bolt store: %s: %w", path, err)
	}
	s.rev.Store(rev)
	s.compacted.Store(compacted)
	s.hub.rev = rev
	s.log.Info("store opened", "revision", rev, "compacted", compacted, "schemaVersion", schemaVersion)

	s.writerWG.Add(2)
	go s.writer()
	go s.compactor()
	return s, nil
}

// init creates the buckets of a new file or checks those of an existing
// one, and returns the revision and compacted revision it finds.
func (s *Store) init() (rev, compacted int64, err error) {
	fresh := false
	err = s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bbolt.Bucket) error { empty = false; return nil })
			if !empty {
				return errors.New("not a Slipway store: it has buckets but no meta bucket")
			}
			fresh = true
			return nil
		}
		v := meta.Get(metaSchema)
		if v == nil {
			return errors.New("not a Slipway store: meta bucket has no schemaVersion")
		}
		version, err := fromBE64(v)
		if err != nil {
			return err
		}
		if version > schemaVersion {
			return fmt.Errorf("schema version %d is newer than version %d this binary supports; use a newer slipway", version, schemaVersion)
		}
		if version < 1 {
			return fmt.Errorf("schema version %d is invalid", version)
		}
		// Upgrades from older versions go here once there is more than one.
		if tx.Bucket(bucketKeys) == nil || tx.Bucket(bucketHistory) == nil {
			return fmt.Errorf("%w: keys or history bucket missing", errCorrupt)
		}
		rev, compacted, err = readMeta(tx)
		return err
	})
	if err != nil || !fresh {
		return rev, compacted, err
	}
	return 0, 0, s.db.Update(create)
}

func create(tx *bbolt.Tx) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketKeys); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketHistory); err != nil {
		return err
	}
	for k, v := range map[string]int64{string(metaSchema): schemaVersion, string(metaRevision): 0, string(metaCompacted): 0} {
		if err := meta.Put([]byte(k), be64(v)); err != nil {
			return err
		}
	}
	return nil
}

func readMeta(tx *bbolt.Tx) (rev, compacted int64, err error) {
	meta := tx.Bucket(bucketMeta)
	if rev, err = fromBE64(meta.Get(metaRevision)); err != nil {
		return 0, 0, fmt.Errorf("meta revision: %w", err)
	}
	if compacted, err = fromBE64(meta.Get(metaCompacted)); err != nil {
		return 0, 0, fmt.Errorf("meta compacted: %w", err)
	}
	return rev, compacted, nil
}

// enter admits a call unless the store is closed; the caller must call
// s.mu.RUnlock when it no longer touches the database.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// Close waits for queued writes to commit, ends every watcher with
// store.ErrClosed and closes the file. Calling it again returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Every sender held mu for reading while it sent, so none is left.
	close(s.ops)
	s.mu.Unlock()

	close(s.quit)
	s.writerWG.Wait()
	s.watchWG.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt store: close %s: %w", s.path, err)
	}
	s.log.Info("store closed", "revision", s.rev.Load())
	return nil
}

// Check runs bbolt's consistency check on the file and returns every
// inconsistency it finds, joined.
func (s *Store) Check() error {
	if err := s.enter(context.Background()); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var errs []error
	err := s.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

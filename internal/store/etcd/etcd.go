// Package etcd is Slipway's distributed store: store.Store on an etcd
// cluster through the official client (go.etcd.io/etcd/client/v3).
//
// The contract maps onto etcd directly: the store revision is etcd's global
// revision, Update and Delete compare the key's mod_revision in a
// transaction, Watch is an etcd watch from after+1 with the previous values,
// Compact is etcd's compaction. A write is acknowledged once etcd has
// committed it through a quorum of its members. Reads are linearizable.
//
// Every key lives under Options.Prefix: the store key "/slipway/apps/a" is
// the etcd key "<prefix>/slipway/apps/a", so several platforms can share a
// cluster. Keys must begin with "/" so that no prefix can reach into a
// neighbour's ("/slipway" would otherwise also match "/slipway2...").
// Compaction, like etcd's revision, is cluster-wide.
package etcd

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"slipway.dev/slipway/internal/store"
)

// Defaults for zero Options fields.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultCompactKeep = 100_000
)

// Options configures a Store.
type Options struct {
	// Endpoints are the client URLs of the cluster's members
	// (http://host:2379 or https://...).
	Endpoints []string
	// Prefix is put in front of every key ("" for none; a trailing "/"
	// is dropped).
	Prefix string
	// TLS is the client's TLS configuration (see TLSConfig); nil for
	// plain connections.
	TLS *tls.Config
	// DialTimeout bounds Open's first round trip to the cluster (default
	// DefaultDialTimeout): an unreachable cluster fails Open instead of
	// hanging it.
	DialTimeout time.Duration
	// CompactKeep is how many revisions of history automatic compaction
	// keeps (default DefaultCompactKeep); negative turns it off (the
	// cluster's own --auto-compaction-* then has to do it).
	CompactKeep int64
	// Logger receives open, compaction and watch records. Nil discards
	// them.
	Logger *slog.Logger
}

// Store is a store.Store on etcd.
type Store struct {
	cli    *clientv3.Client
	prefix string
	log    *slog.Logger
	keep   int64

	closed atomic.Bool
	// root is cancelled by Close: it ends watches and the compactor.
	root   context.Context
	cancel context.CancelFunc
	// mu orders starting a goroutine (wg.Add) before Close's wg.Wait.
	mu        sync.Mutex
	wg        sync.WaitGroup
	compactCh chan int64
	compacted atomic.Int64 // the newest revision this process compacted to
	full      atomic.Bool  // a write was refused for want of space (nospace.go)
	watchN    atomic.Int64
}

var _ store.Store = (*Store)(nil)

// Open connects to the cluster and checks that it answers a linearizable
// read within DialTimeout.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if len(opts.Endpoints) == 0 {
		return nil, errors.New("etcd store: no endpoints")
	}
	for _, ep := range opts.Endpoints {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return nil, fmt.Errorf("etcd store: endpoint %q: must be a URL such as http://127.0.0.1:2379", ep)
		}
	}
	if opts.DialTimeout < 0 {
		return nil, fmt.Errorf("etcd store: DialTimeout %v is negative", opts.DialTimeout)
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.CompactKeep == 0 {
		opts.CompactKeep = DefaultCompactKeep
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	eps := strings.Join(opts.Endpoints, ",")
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   opts.Endpoints,
		DialTimeout: opts.DialTimeout,
		TLS:         opts.TLS,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		return nil, fmt.Errorf("etcd store: client for %s: %w", eps, err)
	}
	s := &Store{
		cli:       cli,
		prefix:    strings.TrimRight(opts.Prefix, "/"),
		log:       log.With("store", "etcd", "endpoints", eps),
		keep:      opts.CompactKeep,
		compactCh: make(chan int64, 1),
	}
	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	rev, err := s.Revision(pctx)
	cancel()
	if err != nil {
		cli.Close()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("etcd store: no answer from etcd at %s within %v (is it running and reachable?)", eps, opts.DialTimeout)
		}
		return nil, fmt.Errorf("etcd store: etcd at %s: %w", eps, err)
	}
	s.root, s.cancel = context.WithCancel(context.Background())
	s.log.Info("store opened", "prefix", s.prefix, "revision", rev)
	s.wg.Add(1)
	go s.compactor() // before anyone can call Close
	return s, nil
}

// TLSConfig reads a client certificate and key (both or neither) and a CA
// bundle ("" for the system's) into a TLS configuration.
func TLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case certFile != "" && keyFile != "":
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s and key %s: %w", certFile, keyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case certFile != "" || keyFile != "":
		return nil, errors.New("etcd client certificate and key go together: give both or neither")
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", caFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Close ends every watcher with store.ErrClosed and closes the client.
// Calling it again returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed.Swap(true) {
		s.mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	err := s.cli.Close()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd store: close: %w", err)
	}
	s.log.Info("store closed")
	return nil
}

func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return store.ErrClosed
	}
	return nil
}

// fail wraps an error of the client, as ErrClosed once the store is closed
// (the client's calls then fail with whatever the connection says).
func (s *Store) fail(what string, err error) error {
	if s.closed.Load() {
		return fmt.Errorf("etcd store: %s: %w", what, store.ErrClosed)
	}
	return fmt.Errorf("etcd store: %s: %w", what, s.noSpace(err))
}

func validKey(key string) error {
	switch {
	case key == "":
		return errors.New("etcd store: key is empty")
	case key[0] != '/':
		return fmt.Errorf("etcd store: key %q must begin with /", key)
	}
	return nil
}

// etcdKey and storeKey translate between the two key spaces.
func (s *Store) etcdKey(key string) string { return s.prefix + key }

func (s *Store) storeKey(k []byte) string { return strings.TrimPrefix(string(k), s.prefix) }

// rangeOf returns the etcd range holding the store keys that begin with
// prefix. Store keys begin with "/", so the empty prefix is "/".
func (s *Store) rangeOf(prefix string) (key, end string) {
	if prefix == "" {
		prefix = "/"
	}
	key = s.etcdKey(prefix)
	return key, clientv3.GetPrefixRangeEnd(key)
}

func (s *Store) kv(kv *mvccpb.KeyValue) store.KeyValue {
	return store.KeyValue{Key: s.storeKey(kv.Key), Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
}

// Get implements store.Store.
func (s *Store) Get(ctx context.Context, key string) (store.KeyValue, error) {
	if err := validKey(key); err != nil {
		return store.KeyValue{}, err
	}
	if err := s.enter(ctx); err != nil {
		return store.KeyValue{}, err
	}
	resp, err := s.cli.Get(ctx, s.etcdKey(key))
	if err != nil {
		return store.KeyValue{}, s.fail(fmt.Sprintf("get %q", key), err)
	}
	if len(resp.Kvs) == 0 {
		return store.KeyValue{}, fmt.Errorf("get %q: %w", key, store.ErrNotFound)
	}
	return s.kv(resp.Kvs[0]), nil
}

// List implements store.Store: one etcd range, so the keys and Revision
// are the state at that revision.
func (s *Store) List(ctx context.Context, prefix string, opts store.ListOptions) (store.ListResult, error) {
	if opts.Limit < 0 {
		return store.ListResult{}, fmt.Errorf("etcd store: list %q: limit %d is negative", prefix, opts.Limit)
	}
	if err := s.enter(ctx); err != nil {
		return store.ListResult{}, err
	}
	key, end := s.rangeOf(prefix)
	if opts.After != "" && s.etcdKey(opts.After) >= key {
		key = s.etcdKey(opts.After) + "\x00"
	}
	resp, err := s.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(int64(opts.Limit)))
	if err != nil {
		return store.ListResult{}, s.fail(fmt.Sprintf("list %q", prefix), err)
	}
	res := store.ListResult{Revision: resp.Header.Revision}
	if prefix != "" && prefix[0] != '/' {
		return res, nil // no key can match
	}
	res.KVs = make([]store.KeyValue, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		res.KVs = append(res.KVs, s.kv(kv))
	}
	return res, nil
}

// Revision implements store.Store: the header of a linearizable read.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	key, end := s.rangeOf("")
	resp, err := s.cli.Get(ctx, key, clientv3.WithRange(end), clientv3.WithCountOnly())
	if err != nil {
		return 0, s.fail("revision", err)
	}
	return resp.Header.Revision, nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
	"slipway.dev/slipway/internal/store/etcd"
)

// Store backends Config.Store names.
const (
	StoreBolt = "bolt"
	StoreEtcd = "etcd"
)

// EtcdConfig says where the etcd store is (Config.Store "etcd").
type EtcdConfig struct {
	// Endpoints are the members' client URLs; host:port means http://
	// (https:// when a CA or client certificate is given).
	Endpoints []string
	// Prefix goes in front of every key (DefaultEtcdPrefix when empty).
	Prefix string
	// CertFile and KeyFile are a client certificate; CAFile the bundle
	// that verifies the members (the system's when empty).
	CertFile, KeyFile, CAFile string
	// DialTimeout bounds the first round trip (etcd.DefaultDialTimeout
	// when 0).
	DialTimeout time.Duration
}

// DefaultEtcdPrefix is EtcdConfig.Prefix's default.
const DefaultEtcdPrefix = "/slipway"

func (c EtcdConfig) set() bool {
	return len(c.Endpoints) > 0 || c.Prefix != "" || c.CertFile != "" || c.KeyFile != "" || c.CAFile != ""
}

// openedStore is a backend with the check /readyz makes: whether writes
// can succeed (bolt: the disk has space; etcd: no NOSPACE alarm).
type openedStore interface {
	store.Store
	CheckWritable(context.Context) error
}

// openStore opens the backend cfg names. It checks every flag before it
// connects, and fails (with nothing opened) rather than start half-way.
func openStore(ctx context.Context, cfg Config, log *slog.Logger) (openedStore, error) {
	switch cfg.Store {
	case "", StoreBolt:
		if cfg.Etcd.set() {
			return nil, errors.New("--etcd-* flags are only for --store etcd")
		}
		return bolt.Open(filepath.Join(cfg.DataDir, storeFileName), bolt.Options{Logger: log})
	case StoreEtcd:
		return openEtcd(ctx, cfg.Etcd, log)
	}
	return nil, fmt.Errorf("--store %q: unsupported; choose bolt (embedded, in --data-dir) or etcd (--etcd-endpoints)", cfg.Store)
}

func openEtcd(ctx context.Context, c EtcdConfig, log *slog.Logger) (*etcd.Store, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("--store etcd needs --etcd-endpoints URL[,URL...] (for example http://127.0.0.1:2379)")
	}
	opts := etcd.Options{Prefix: c.Prefix, DialTimeout: c.DialTimeout, Logger: log}
	if opts.Prefix == "" {
		opts.Prefix = DefaultEtcdPrefix
	}
	if c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" {
		tlsCfg, err := etcd.TLSConfig(c.CertFile, c.KeyFile, c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--etcd-cert/--etcd-key/--etcd-ca: %w", err)
		}
		opts.TLS = tlsCfg
	}
	for _, ep := range c.Endpoints {
		ep = strings.TrimSpace(ep)
		switch {
		case ep == "":
			return nil, errors.New("--etcd-endpoints: an endpoint is empty")
		case strings.Contains(ep, "://"):
		case opts.TLS != nil:
			ep = "https://" + ep
		default:
			ep = "http://" + ep
		}
		opts.Endpoints = append(opts.Endpoints, ep)
	}
	return etcd.Open(ctx, opts)
}

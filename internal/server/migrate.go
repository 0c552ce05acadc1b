package server

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/store"
	"slipway.dev/slipway/internal/store/bolt"
)

// MigrateConfig is what `slipway admin migrate` takes.
type MigrateConfig struct {
	// From is bolt://DIR: the data dir of a stopped platform.
	From string
	// To is etcd://HOST:PORT[,HOST:PORT...][/prefix] (prefix
	// DefaultEtcdPrefix when absent); Etcd's TLS files apply to it.
	To   string
	Etcd EtcdConfig
	// Force replaces whatever is under the target prefix; without it a
	// non-empty prefix is refused.
	Force bool
	// Out receives the progress and the verification table.
	Out    io.Writer
	Logger *slog.Logger
}

// migrateWorkers is how many writes to the target are in flight: etcd
// commits concurrent writes together, one at a time would wait for a
// quorum's fsync each.
const migrateWorkers = 32

// Migrate copies every key of a stopped platform's bolt store to an empty
// prefix of an etcd cluster, then reads both back and compares the count
// and a SHA-256 of keys and values per kind. Revisions are not copied:
// etcd numbers the writes anew (resourceVersions change, which clients
// handle by listing again).
func Migrate(ctx context.Context, cfg MigrateConfig) error {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := cfg.Out
	if out == nil {
		out = io.Discard
	}
	dir, err := parseBoltURL(cfg.From)
	if err != nil {
		return err
	}
	etcdCfg := cfg.Etcd
	if etcdCfg.Endpoints, etcdCfg.Prefix, err = parseEtcdURL(cfg.To); err != nil {
		return err
	}
	file := filepath.Join(dir, storeFileName)
	if _, err := os.Stat(file); err != nil {
		return fmt.Errorf("--from %s: no Slipway store there: %w", cfg.From, err)
	}
	src, err := bolt.Open(file, bolt.Options{Logger: log, LockTimeout: 500 * time.Millisecond, CompactKeep: -1})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("--from %s: %s is in use by a running slipway; stop it first (migrate copies a stopped platform, so that nothing changes during the copy)", cfg.From, file)
	}
	if err != nil {
		return fmt.Errorf("--from %s: %w", cfg.From, err)
	}
	defer src.Close()
	dst, err := openEtcd(ctx, etcdCfg, log)
	if err != nil {
		return fmt.Errorf("--to %s: %w", cfg.To, err)
	}
	defer dst.Close()

	have, err := dst.List(ctx, "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("--to %s: %w", cfg.To, err)
	}
	if len(have.KVs) > 0 {
		if !cfg.Force {
			return fmt.Errorf("--to %s: prefix %s already holds %d keys; choose another prefix, or --force to replace them", cfg.To, etcdCfg.Prefix, len(have.KVs))
		}
		fmt.Fprintf(out, "deleting the %d keys under %s (--force)\n", len(have.KVs), etcdCfg.Prefix)
		if err := each(ctx, have.KVs, func(ctx context.Context, kv store.KeyValue) error {
			_, _, err := dst.Delete(ctx, kv.Key, kv.ModRevision)
			return err
		}); err != nil {
			return fmt.Errorf("--to %s: clearing the prefix: %w", cfg.To, err)
		}
	}

	from, err := src.List(ctx, "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("--from %s: %w", cfg.From, err)
	}
	fmt.Fprintf(out, "copying %d keys from %s (revision %d) to %s under %s\n", len(from.KVs), file, from.Revision, strings.Join(etcdCfg.Endpoints, ","), etcdCfg.Prefix)
	if err := each(ctx, from.KVs, func(ctx context.Context, kv store.KeyValue) error {
		_, err := dst.Create(ctx, kv.Key, kv.Value)
		return err
	}); err != nil {
		return fmt.Errorf("--to %s: %w", cfg.To, err)
	}

	to, err := dst.List(ctx, "", store.ListOptions{})
	if err != nil {
		return fmt.Errorf("--to %s: reading back: %w", cfg.To, err)
	}
	want, got := sumByKind(from.KVs), sumByKind(to.KVs)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tKEYS (bolt)\tKEYS (etcd)\tSHA-256 (bolt)\tSHA-256 (etcd)")
	var bad []string
	for _, k := range kindsOf(want, got) {
		w, g := want[k], got[k]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s", k, w.n, g.n, w.hex(), g.hex())
		if w != g {
			fmt.Fprint(tw, "\tMISMATCH")
			bad = append(bad, k)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	if len(bad) > 0 {
		return fmt.Errorf("the copy differs from the source in %s: the target prefix %s is not usable as it is (run again with --force)", strings.Join(bad, ", "), etcdCfg.Prefix)
	}
	fmt.Fprintf(out, "verified: %d keys in %d kinds, counts and checksums equal\nstart the platform on etcd with: slipway up --store etcd --etcd-endpoints %s --etcd-prefix %s --data-dir %s\n",
		len(to.KVs), len(want), strings.Join(etcdCfg.Endpoints, ","), etcdCfg.Prefix, dir)
	return nil
}

// each runs fn on every kv, migrateWorkers at a time, and stops at the
// first error.
func each(ctx context.Context, kvs []store.KeyValue, fn func(context.Context, store.KeyValue) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(migrateWorkers)
	for _, kv := range kvs {
		g.Go(func() error { return fn(ctx, kv) })
	}
	return g.Wait()
}

// kindSum is a kind's key count and digest of its keys and values in key
// order.
type kindSum struct {
	n   int
	sum [sha256.Size]byte
}

func (k kindSum) hex() string {
	if k.n == 0 {
		return "-"
	}
	return hex.EncodeToString(k.sum[:8])
}

// sumByKind groups keys by kind: the path segment after the registry's
// /slipway/ root (apps, pods, ...; internal for tokens).
func sumByKind(kvs []store.KeyValue) map[string]kindSum {
	hashes := map[string][]store.KeyValue{}
	for _, kv := range kvs {
		k := kindOf(kv.Key)
		hashes[k] = append(hashes[k], kv)
	}
	sums := map[string]kindSum{}
	for k, kvs := range hashes {
		slices.SortFunc(kvs, func(a, b store.KeyValue) int { return strings.Compare(a.Key, b.Key) })
		h := sha256.New()
		for _, kv := range kvs {
			// Length-prefixed, so that no two different lists hash alike.
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(kv.Key))))
			h.Write([]byte(kv.Key))
			h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(kv.Value))))
			h.Write(kv.Value)
		}
		var s kindSum
		s.n = len(kvs)
		h.Sum(s.sum[:0])
		sums[k] = s
	}
	return sums
}

func kindOf(key string) string {
	parts := strings.SplitN(strings.TrimPrefix(key, "/"), "/", 3)
	if len(parts) >= 2 && parts[0] == "slipway" {
		return parts[1]
	}
	return "(other)"
}

func kindsOf(a, b map[string]kindSum) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.Sort(ks)
	return ks
}

func parseBoltURL(s string) (string, error) {
	dir, ok := strings.CutPrefix(s, "bolt://")
	if !ok || dir == "" {
		return "", fmt.Errorf("--from %q: must be bolt://DIR, the data dir of a stopped platform (for example bolt:///var/lib/slipway)", s)
	}
	return dir, nil
}

// parseEtcdURL reads etcd://HOST:PORT[,HOST:PORT...][/prefix].
func parseEtcdURL(s string) (endpoints []string, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	bad := fmt.Errorf("--to %q: must be etcd://HOST:PORT[,HOST:PORT...][/prefix] (for example etcd://127.0.0.1:2379/slipway)", s)
	if !ok {
		return nil, "", bad
	}
	hosts, path, _ := strings.Cut(rest, "/")
	for _, h := range strings.Split(hosts, ",") {
		if u, err := url.Parse("http://" + h); err != nil || h == "" || u.Host != h || u.Port() == "" {
			return nil, "", bad
		}
		endpoints = append(endpoints, h)
	}
	prefix = DefaultEtcdPrefix
	if path = strings.TrimRight(path, "/"); path != "" {
		prefix = "/" + path
	}
	return endpoints, prefix, nil
}

package dataplane

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// cache mirrors some kinds of the store in memory for an adapter: a fresh
// list replaces a kind's objects whole (so deletions missed while a watch
// was broken are not kept), then a watch from the list's revision updates
// them. Every change kicks the adapter, which coalesces bursts.
type cache struct {
	reg   *registry.Registry
	log   *slog.Logger
	kinds []api.KindInfo

	mu     sync.Mutex
	objs   map[string]map[string]api.Object // kind → project/name → object
	synced map[string]bool                  // kind → first list done
	kick   chan struct{}
}

func newCache(reg *registry.Registry, log *slog.Logger, kinds ...api.KindInfo) *cache {
	c := &cache{reg: reg, log: log, kinds: kinds, objs: map[string]map[string]api.Object{}, synced: map[string]bool{}, kick: make(chan struct{}, 1)}
	for _, k := range kinds {
		c.objs[k.Kind] = map[string]api.Object{}
	}
	return c
}

// serve keeps every kind until ctx ends (nil) and calls apply with a
// snapshot after each burst of changes, once every kind has been listed;
// an error from apply ends it. The watches are over when it returns.
func (c *cache) serve(ctx context.Context, apply func(ctx context.Context, snap map[string][]api.Object) error) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // runs first: the watches end before wg.Wait
	for _, k := range c.kinds {
		wg.Go(func() { c.listWatch(ctx, k) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
		}
		snap, ready := c.snapshot()
		if !ready {
			continue
		}
		if err := apply(ctx, snap); err != nil {
			return err
		}
	}
}

// snapshot returns the objects of each kind, and whether every kind has
// been listed once: serving before that would turn clients away after a
// restart.
func (c *cache) snapshot() (map[string][]api.Object, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := map[string][]api.Object{}
	for kind, m := range c.objs {
		for _, o := range m {
			snap[kind] = append(snap[kind], o)
		}
	}
	return snap, len(c.synced) == len(c.kinds)
}

func (c *cache) changed() {
	select {
	case c.kick <- struct{}{}:
	default: // a rebuild is pending already and will see this change
	}
}

func (c *cache) listWatch(ctx context.Context, kind api.KindInfo) {
	for ctx.Err() == nil {
		objs, rv, err := c.reg.List(ctx, kind, "", registry.ListOptions{})
		if err == nil {
			m := map[string]api.Object{}
			for _, o := range objs {
				m[objKey(o)] = o
			}
			c.mu.Lock()
			c.objs[kind.Kind] = m
			c.synced[kind.Kind] = true
			c.mu.Unlock()
			c.changed()
			var events <-chan registry.WatchEvent
			if events, err = c.reg.Watch(ctx, kind, "", rv, ""); err == nil {
				for ev := range events {
					if ev.Type == registry.Error {
						c.log.Info("watch ended; listing again", "kind", kind.Kind, "reason", ev.Err.Reason)
						break
					}
					c.mu.Lock()
					if ev.Type == registry.Deleted {
						delete(c.objs[kind.Kind], objKey(ev.Object))
					} else {
						c.objs[kind.Kind][objKey(ev.Object)] = ev.Object
					}
					c.mu.Unlock()
					c.changed()
				}
			}
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn("list or watch failed; retrying", "kind", kind.Kind, "err", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(relistDelay):
		}
	}
}

func objKey(o api.Object) string {
	m := o.GetMeta()
	return m.Project + "/" + m.Name
}

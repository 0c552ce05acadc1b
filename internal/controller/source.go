package controller

import (
	"context"
	"log/slog"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// Key names one object of a kind the controller already knows.
type Key struct {
	Project string
	Name    string
}

func (k Key) String() string {
	if k.Project == "" {
		return k.Name
	}
	return k.Project + "/" + k.Name
}

// KeyOf returns the queue key of obj.
func KeyOf(obj api.Object) Key {
	m := obj.GetMeta()
	return Key{Project: m.Project, Name: m.Name}
}

// Watcher is what a source needs of the registry.
type Watcher interface {
	Watch(ctx context.Context, kind api.KindInfo, project string, fromRV int64, selector string) (<-chan registry.WatchEvent, error)
}

// WatchKind feeds the key of every object of kind, and of every later
// change to one, into enqueue until ctx ends. When the watch breaks
// (compaction, store restart) it lists again from scratch, which replays
// every current object: level-triggered reconcilers make that harmless.
func WatchKind(ctx context.Context, w Watcher, kind api.KindInfo, log *slog.Logger, enqueue func(ev registry.WatchEvent)) {
	const retry = 500 * time.Millisecond
	for ctx.Err() == nil {
		events, err := w.Watch(ctx, kind, "", 0, "")
		if err != nil {
			log.Warn("watch failed; retrying", "kind", kind.Kind, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(retry):
			}
			continue
		}
		for ev := range events {
			if ev.Type == registry.Error {
				log.Info("watch ended; listing again", "kind", kind.Kind, "reason", ev.Err.Reason)
				break
			}
			enqueue(ev)
		}
	}
}

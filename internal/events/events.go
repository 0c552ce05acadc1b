// Package events records what happened to objects as Event objects in the store:
// an account of work for `slipway describe` and `get events`, aggregated as
// Kubernetes does. Every controller and the node agent write through it.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/registry"
)

// Recorder writes Events about objects. A repeat of the same reason and
// message on the same object within an hour updates the existing Event's
// count instead of writing a new one, as Kubernetes' event aggregation does.
type Recorder struct {
	Reg    *registry.Registry
	Source string
	Clock  clock.Clock
	Log    *slog.Logger // nil: failures are not logged

	mu   sync.Mutex
	seen map[recordKey]string // → event name
}

type recordKey struct {
	uid, reason, message string
}

var eventKind, _ = api.LookupKind("Event")

// Record writes an event; failures are logged, never returned: an event
// is an account of work, not part of it.
func (r *Recorder) Record(ctx context.Context, obj api.Object, typ, reason, message string) {
	m := obj.GetMeta()
	now := r.Clock.Now()
	k := recordKey{m.UID, reason, message}
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[recordKey]string{}
	}
	name, ok := r.seen[k]
	r.mu.Unlock()
	if ok {
		if r.bump(ctx, m.Project, name, now) {
			return
		}
	}
	project := m.Project
	if project == "" { // a Project's own events live in it
		project = m.Name
	}
	ev := &api.Event{
		Metadata: api.ObjectMeta{Name: m.Name + "." + randomSuffix(), Project: project},
		InvolvedObject: api.ObjectReference{
			Kind: obj.GetTypeMeta().Kind, Project: m.Project, Name: m.Name, UID: m.UID,
		},
		Type: typ, Reason: reason, Message: message, Source: r.Source,
		Count: 1, FirstTimestamp: now, LastTimestamp: now,
	}
	created, err := r.Reg.Create(ctx, ev)
	if err != nil {
		if ctx.Err() == nil && r.Log != nil {
			r.Log.Debug("recording an event failed", "object", m.Name, "reason", reason, "err", err)
		}
		return
	}
	r.mu.Lock()
	if len(r.seen) > 10000 {
		clear(r.seen)
	}
	r.seen[k] = created.GetMeta().Name
	r.mu.Unlock()
}

// bump increments an existing event's count; false if it is gone or old.
func (r *Recorder) bump(ctx context.Context, project, name string, now time.Time) bool {
	for range 3 {
		o, err := r.Reg.Get(ctx, eventKind, project, name)
		if err != nil {
			return false
		}
		ev := o.(*api.Event)
		if now.Sub(ev.FirstTimestamp) > time.Hour {
			return false
		}
		ev.Count++
		ev.LastTimestamp = now
		if _, err := r.Reg.Update(ctx, ev); err == nil {
			return true
		} else if !api.IsConflict(err) {
			return false
		}
	}
	return false
}

func randomSuffix() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

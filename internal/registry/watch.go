package registry

import (
	"context"
	"errors"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/store"
)

// Watch event types, as Kubernetes names them.
const (
	Added    = "ADDED"
	Modified = "MODIFIED"
	Deleted  = "DELETED"
	Error    = "ERROR"
)

// WatchEvent is one change to one object. For ERROR, Object is nil and Err
// says why the watch ended (Gone: relist; ServiceUnavailable: the store
// closed); the channel is closed right after it.
type WatchEvent struct {
	Type   string
	Object api.Object
	Err    *api.Error
}

// watchBuffer lets a watcher fall a little behind without stalling its
// goroutine on every event.
const watchBuffer = 64

// Watch streams the changes to a kind in a project ("" for all) whose
// revision is greater than fromRV, in order, until ctx ends. With fromRV 0
// it first sends an ADDED event for every current object, then the changes
// after that snapshot (Kubernetes' "get state and watch"). With a selector,
// an object that stops matching is reported DELETED and one that starts
// matching ADDED. Asking for a compacted revision returns a Gone error.
func (r *Registry) Watch(ctx context.Context, kind api.KindInfo, project string, fromRV int64, selector string) (<-chan WatchEvent, error) {
	sel, err := ParseSelector(selector)
	if err != nil {
		return nil, err
	}
	p, err := prefix(kind, project)
	if err != nil {
		return nil, err
	}
	if fromRV < 0 {
		return nil, api.Errorf(api.ReasonBadRequest, "invalid resourceVersion %d: must be 0 or more", fromRV)
	}
	var initial []api.Object
	if fromRV == 0 {
		initial, fromRV, err = r.List(ctx, kind, project, ListOptions{LabelSelector: selector})
		if err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	w, err := r.st.Watch(ctx, p, fromRV)
	if err != nil {
		cancel()
		if errors.Is(err, store.ErrCompacted) {
			return nil, api.Errorf(api.ReasonGone, "resourceVersion %d is too old (compacted): list again and watch from the list's resourceVersion", fromRV)
		}
		return nil, mapErr(err, kind, project, "")
	}
	out := make(chan WatchEvent, watchBuffer)
	go func() {
		defer cancel()
		defer close(out)
		send := func(ev WatchEvent) bool {
			select {
			case out <- ev:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, obj := range initial {
			if !send(WatchEvent{Type: Added, Object: obj}) {
				return
			}
		}
		for sev := range w.Events() {
			ev, ok := r.convert(kind, sel, sev)
			if ok && !send(ev) {
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		switch err := w.Err(); {
		case errors.Is(err, store.ErrCompacted):
			send(WatchEvent{Type: Error, Err: api.Errorf(api.ReasonGone, "the watch fell behind compacted history: list again and watch from the list's resourceVersion")})
		case err != nil:
			send(WatchEvent{Type: Error, Err: api.Errorf(api.ReasonUnavailable, "the watch ended: %v", err)})
		}
	}()
	return out, nil
}

// convert turns a store event into a typed one, applying the selector to
// the states before and after.
func (r *Registry) convert(kind api.KindInfo, sel Selector, sev store.Event) (WatchEvent, bool) {
	rev := sev.Revision()
	obj, err := decode(kind, sev.KV, rev)
	if err != nil {
		r.log.Error("skipping unreadable watch event", "key", sev.KV.Key, "err", err)
		return WatchEvent{}, false
	}
	now := sel.Matches(obj.GetMeta().Labels)
	if sev.Type == store.EventDelete {
		return WatchEvent{Type: Deleted, Object: obj}, now
	}
	created := sev.KV.CreateRevision == sev.KV.ModRevision
	before := false
	switch {
	case created:
	case sel.Empty():
		before = true
	case sev.PrevKV != nil:
		prev, err := decode(kind, *sev.PrevKV, sev.PrevKV.ModRevision)
		before = err == nil && sel.Matches(prev.GetMeta().Labels)
	default:
		// Without the previous value, assume membership did not change.
		before = now
	}
	switch {
	case now && (created || !before):
		return WatchEvent{Type: Added, Object: obj}, true
	case now:
		return WatchEvent{Type: Modified, Object: obj}, true
	case before:
		return WatchEvent{Type: Deleted, Object: obj}, true
	}
	return WatchEvent{}, false
}

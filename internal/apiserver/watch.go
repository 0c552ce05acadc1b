package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// BOOKMARK events carry only a resourceVersion the client may resume from;
// they are sent on the heartbeat when the client asks with
// allowWatchBookmarks=true.
const bookmark = "BOOKMARK"

// WatchEvent is one line of a watch stream. Object is the object, or for
// ERROR the *api.Error that ended the stream.
type WatchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// watch streams newline-delimited JSON events until the client goes away,
// timeoutSeconds passes or the watch ends (an ERROR event says why).
func (s *server) watch(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project, sel string) error {
	q := r.URL.Query()
	rv, err := queryInt(q.Get("resourceVersion"), "resourceVersion")
	if err != nil {
		return err
	}
	timeout, err := queryInt(q.Get("timeoutSeconds"), "timeoutSeconds")
	if err != nil {
		return err
	}
	bookmarks, err := queryBool(q.Get("allowWatchBookmarks"), "allowWatchBookmarks")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		defer cancel()
	}
	// Errors known before the stream starts (a compacted resourceVersion, a
	// bad selector) are plain error responses with their status.
	events, err := s.reg.Watch(ctx, kind, project, rv, sel)
	if err != nil {
		return err
	}
	rc := http.NewResponseController(w)
	// A server-wide WriteTimeout must not cut a watch short.
	_ = rc.SetWriteDeadline(time.Time{})
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return nil
	}
	enc := json.NewEncoder(w)
	heartbeat := time.NewTicker(s.opts.WatchHeartbeat)
	defer heartbeat.Stop()
	last := rv
	for {
		var line WatchEvent
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			line.Type = ev.Type
			if ev.Type == registry.Error {
				line.Object = ev.Err
			} else {
				line.Object = ev.Object
				last = max(last, ev.Object.GetMeta().ResourceVersion)
			}
		case <-heartbeat.C:
			if !bookmarks {
				// Whitespace between JSON values is ignored by readers.
				if _, err := w.Write([]byte("\n")); err != nil || rc.Flush() != nil {
					return nil
				}
				continue
			}
			obj := kind.NewObject()
			obj.GetMeta().ResourceVersion = last
			line = WatchEvent{Type: bookmark, Object: obj}
		}
		if err := enc.Encode(line); err != nil {
			return nil // the client went away
		}
		if rc.Flush() != nil {
			return nil
		}
	}
}

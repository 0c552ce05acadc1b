package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"

	"slipway.dev/slipway/internal/api"
)

// Watch event types.
const (
	Added    = "ADDED"
	Modified = "MODIFIED"
	Deleted  = "DELETED"
	Error    = "ERROR"
	Bookmark = "BOOKMARK"
)

// WatchEvent is one change. For ERROR, Err says why the stream ended (Gone:
// list again and watch from the list's resourceVersion) and the channel is
// closed after it.
type WatchEvent struct {
	Type   string
	Object api.Object
	Err    *api.Error
}

// Watch streams the changes to a kind in a project ("" for all) after
// resourceVersion rv, filtered by a label selector. With rv 0 it first
// sends an ADDED event for every current object. The channel is closed when
// ctx ends or the stream ends; a consumer that wants more watches again
// from the last resourceVersion it saw. An rv too old to resume from is
// reported as a Gone *api.Error, by Watch itself or by an ERROR event.
func (c *Client) Watch(ctx context.Context, kind api.KindInfo, project string, rv int64, selector string) (<-chan WatchEvent, error) {
	q := url.Values{"watch": {"true"}}
	if rv > 0 {
		q.Set("resourceVersion", itoa(rv))
	}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	resp, err := c.send(ctx, http.MethodGet, collectionPath(kind, project), q, nil)
	if err != nil {
		return nil, err
	}
	ch := make(chan WatchEvent, 16)
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var line struct {
				Type   string          `json:"type"`
				Object json.RawMessage `json:"object"`
			}
			ev := WatchEvent{}
			if err := dec.Decode(&line); err != nil {
				if ctx.Err() != nil || errors.Is(err, io.EOF) {
					return
				}
				ev = WatchEvent{Type: Error, Err: api.Errorf(api.ReasonUnavailable, "the watch stream broke: %v", err)}
			} else if line.Type == Error {
				ev = WatchEvent{Type: Error, Err: &api.Error{}}
				if json.Unmarshal(line.Object, ev.Err) != nil || ev.Err.Reason == "" {
					ev.Err = api.Errorf(api.ReasonInternal, "the server ended the watch with an unreadable error: %s", line.Object)
				}
			} else {
				obj := kind.NewObject()
				if err := json.Unmarshal(line.Object, obj); err != nil {
					ev = WatchEvent{Type: Error, Err: api.Errorf(api.ReasonInternal, "cannot decode a %s watch event: %v", kind.Kind, err)}
				} else {
					ev = WatchEvent{Type: line.Type, Object: obj}
				}
			}
			select {
			case ch <- ev:
			case <-ctx.Done():
				return
			}
			if ev.Type == Error {
				return
			}
		}
	}()
	return ch, nil
}

package std

import (
	"context"
	"io"
	"net/http"
	"time"

	"slipway.dev/slipway/internal/router"
)

// mirrorTimeout bounds a shadow request from its start to the end of its
// response, which is read and dropped.
const mirrorTimeout = 10 * time.Second

// mirror sends a shadow copy of req (of route rt) when its share says so,
// on its own goroutine; the caller goes on at once.
func (r *Handler) mirror(req *http.Request, rt *router.Route) {
	if !r.Mirrors(rt) {
		return
	}
	var body io.ReadCloser
	if req.ContentLength != 0 { // 0: no body (the server's Body is then empty)
		if req.GetBody == nil {
			return // streaming: there is no copy to send
		}
		var err error
		if body, err = req.GetBody(); err != nil {
			return
		}
	}
	ep := r.AcquireMirror(rt)
	if ep == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	out := r.outbound(req, ctx, ep.Addr)
	out.Body = body
	if body == nil {
		out.Body = nil
		out.ContentLength = 0
	}
	out.GetBody = nil
	go func() {
		defer func() {
			cancel()
			r.ReleaseMirror(ep)
		}()
		resp, err := ep.Transport(r.newTransport).RoundTrip(out)
		if err != nil {
			r.Logger().Debug("mirrored request failed", "route", rt.Key, "endpoint", ep.Addr, "err", err)
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
}

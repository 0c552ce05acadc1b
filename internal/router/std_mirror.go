package router

import (
	"context"
	"io"
	"net/http"
	"time"
)

// mirrorTimeout bounds a shadow request from its start to the end of its
// response, which is read and dropped.
const mirrorTimeout = 10 * time.Second

// mirror sends a shadow copy of req (of route rt) when its share says so,
// on its own goroutine; the caller goes on at once.
func (r *Handler) mirror(req *http.Request, rt *route) {
	m := rt.mirror
	if m.percent <= 0 || m.percent < 100 && r.rnd.IntN(100) >= m.percent {
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
	select {
	case r.mirrors <- struct{}{}:
	default:
		rt.stats.mirrorsDropped.Add(1)
		return
	}
	ep := r.acquireMirror(rt.key)
	if ep == nil {
		<-r.mirrors
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), mirrorTimeout)
	out := r.outbound(req, ctx, ep.addr)
	out.Body = body
	if body == nil {
		out.Body = nil
		out.ContentLength = 0
	}
	out.GetBody = nil
	rt.stats.mirrored.Add(1)
	go func() {
		defer func() {
			cancel()
			r.release(ep)
			<-r.mirrors
		}()
		resp, err := ep.transport(r.newTransport).RoundTrip(out)
		if err != nil {
			r.log.Debug("mirrored request failed", "route", rt.key, "endpoint", ep.addr, "err", err)
			return
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
}

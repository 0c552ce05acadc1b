package fast

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"slipway.dev/slipway/internal/router"
)

// held serves a request the core holds (router.Hold) because its route's
// App has no ready endpoint yet: once Hold has picked, it is forwarded as
// any other; without a pick it is answered 503 with Retry-After (or 404
// when the route left the table meanwhile). Off the hot path: forward
// calls it only when Acquire found no endpoint.
func (f *fastFront) held(rt *router.Route, q *fastReq, host, body []byte, bw *bufio.Writer, pr *peer, fc *fastConn, start time.Time) (bool, time.Time) {
	keepClient := !q.close
	rt, p, retryAfter := router.Hold(context.Background(), f.r, rt, host, q.path, q)
	if rt != nil && p.Endpoint != nil {
		f.r.Release(p.Endpoint) // forward picks again, from the table that woke us
		return f.forward(fc, q, host, body, bw, pr)
	}
	if rt == nil {
		writeError(bw, http.StatusNotFound, fmt.Sprintf("slipway router: no route for host %q and path %q", host, q.path), !keepClient)
		return keepClient, time.Now()
	}
	msg := fmt.Sprintf("slipway router: route %s has no ready endpoint (its app is starting)", rt.Key)
	bw.WriteString("HTTP/1.1 503 Service Unavailable\r\nRetry-After: ")
	bw.WriteString(strconv.Itoa(retryAfter))
	if !keepClient {
		bw.WriteString("\r\nConnection: close")
	}
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(msg)
	bw.WriteByte('\n')
	end := time.Now()
	rt.Observe(http.StatusServiceUnavailable, end.Sub(start))
	return keepClient, end
}

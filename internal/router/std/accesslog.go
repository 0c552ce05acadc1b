package std

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
)

// logAccess writes one access-log record for req when Options.AccessLog is
// set. It names the route, backend, revision and endpoint that served the
// request; it leaves out the query string and every header value (they
// carry tokens, cookies and credentials).
func (r *Handler) logAccess(req *http.Request, a *stdAttempt, status int, start time.Time) {
	l := r.opts.AccessLog
	if l == nil {
		return
	}
	peer, _ := netip.ParseAddrPort(req.RemoteAddr)
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs,
		slog.String("remote", peer.Addr().Unmap().String()),
		slog.String("proto", req.Proto),
		slog.String("method", req.Method),
		slog.String("host", req.Host),
		slog.String("path", req.URL.Path),
		slog.Int("status", status),
		slog.Float64("durationMs", float64(time.Since(start).Microseconds())/1000),
	)
	if a != nil && a.Route != nil {
		attrs = append(attrs, slog.String("route", a.Route.Key))
		if a.Endpoint != nil {
			attrs = append(attrs,
				slog.String("service", a.Revision.Backend.Service),
				slog.Int64("revision", a.Revision.Number),
				slog.String("endpoint", a.Endpoint.Addr.String()))
		}
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

package std

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/router"
)

// Handler is the standard engine's request path: an http.Handler over a
// Router, proxying with httputil.ReverseProxy (its Transport retries,
// see roundTripper), WebSockets frame-aware (ws.go) and mirrored copies
// (mirror.go). It shares the Router's tables, selection, counters,
// health and drain with the fast engine.
type Handler struct {
	*router.Router
	opts  router.Options // the Router's, fixed once it is made
	proxy *httputil.ReverseProxy
}

// NewHandler returns the standard engine's handler over r.
func NewHandler(r *router.Router) *Handler {
	opts := r.Options()
	h := &Handler{Router: r, opts: opts}
	h.proxy = &httputil.ReverseProxy{
		Rewrite: h.rewrite,
		ModifyResponse: func(resp *http.Response) error {
			a := resp.Request.Context().Value(ctxKey{}).(*stdAttempt)
			a.Status = resp.StatusCode
			if resp.ContentLength < 0 && resp.Body != nil && resp.Body != http.NoBody && resp.StatusCode != http.StatusSwitchingProtocols {
				// Streamed (SSE, chunked): it may last; end it cleanly
				// when its endpoint's drain deadline passes.
				sb := &streamBody{ReadCloser: resp.Body, a: a}
				sb.untrack = a.Endpoint.Track(sb)
				resp.Body = sb
			}
			return nil
		},
		Transport:     roundTripper{h},
		FlushInterval: -1, // stream: never hold a response back
		ErrorHandler:  h.proxyError,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
	}
	return h
}

type ctxKey struct{}

// stdAttempt is a request's attempt with what the standard engine adds:
// the host it asked for (for retries) and its cancellation.
type stdAttempt struct {
	router.Attempt
	host   string
	path   string                  // canonical (router.CanonicalPath), as matched and forwarded
	cancel context.CancelCauseFunc // ends the request (cause errTimeout on a response timeout)
}

var errDrained = errors.New("endpoint drained")

func (r *Handler) newTransport(ep *router.Endpoint) *http.Transport {
	d := &net.Dialer{Timeout: r.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	target := ep.Addr.String()
	return &http.Transport{
		// The request's URL names the endpoint too; dialling addr makes
		// sure this pool only ever holds connections to it.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			if a, ok := ctx.Value(ctxKey{}).(*stdAttempt); ok && a.Route.Timeouts.Connect > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, a.Route.Timeouts.Connect)
				defer cancel()
			}
			c, err := d.DialContext(ctx, network, target)
			if err != nil {
				if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
					r.ConnectFailed(ep)
				}
				return nil, err
			}
			r.Connected(ep)
			return ep.TrackConn(c), nil
		},
		MaxIdleConns:          r.opts.MaxIdleConnsPerEndpoint,
		MaxIdleConnsPerHost:   r.opts.MaxIdleConnsPerEndpoint,
		IdleConnTimeout:       r.opts.IdleConnTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass bodies through as the app sent them
	}
}

// ServeHTTP implements http.Handler.
func (r *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	host := router.CanonicalHost(req.Host)
	upgrade := ""
	if req.ProtoMajor == 1 {
		upgrade = upgradeOf(req.Header)
	}
	if upgrade != "" && !strings.EqualFold(upgrade, "websocket") {
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("slipway router: upgrade to %q is not supported; only websocket is", upgrade), http.StatusBadRequest)
		r.logAccess(req, nil, http.StatusBadRequest, start)
		return
	}
	if !router.ValidHostPort(req.Host) {
		r.refuse(w, req, fmt.Sprintf("invalid port in Host %q", req.Host), start)
		return
	}
	path, err := router.CanonicalPath(requestPath(req))
	if err != nil {
		r.refuse(w, req, fmt.Sprintf("path %q: %v", requestPath(req), err), start)
		return
	}
	if path != req.URL.EscapedPath() {
		// The app gets the path that was matched, not one it might read
		// otherwise (/public/../admin).
		u := *req.URL
		u.Path, _ = url.PathUnescape(path)
		u.RawPath = path
		req = req.WithContext(req.Context())
		req.URL = &u
	}
	rt, p := router.Acquire(r.Router, host, path, router.HTTPView{Request: req}, nil, nil)
	retryAfter := 0
	if rt != nil && p.Endpoint == nil {
		rt, p, retryAfter = router.Hold(req.Context(), r.Router, rt, host, path, router.HTTPView{Request: req})
	}
	if rt == nil {
		http.Error(w, fmt.Sprintf("slipway router: no route for host %q and path %q", host, path), http.StatusNotFound)
		r.logAccess(req, nil, http.StatusNotFound, start)
		return
	}
	if p.Endpoint == nil {
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		}
		http.Error(w, fmt.Sprintf("slipway router: route %s has no ready endpoint", rt.Key), http.StatusServiceUnavailable)
		rt.Observe(http.StatusServiceUnavailable, time.Since(start))
		r.logAccess(req, &stdAttempt{Attempt: router.Attempt{Route: rt}}, http.StatusServiceUnavailable, start)
		return
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	defer cancel(nil)
	a := &stdAttempt{Attempt: router.Attempt{Route: rt, Revision: p.Revision, Endpoint: p.Endpoint}, host: host, path: path, cancel: cancel}
	r.Begin(&a.Attempt)
	defer func() {
		r.End(&a.Attempt, time.Since(start))
		r.logAccess(req, a, a.Status, start)
	}()
	if p.Sticky != "" {
		c := &http.Cookie{Name: rt.Affinity.CookieName, Value: p.Sticky, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
		if rt.Affinity.TTL > 0 {
			c.MaxAge = int(rt.Affinity.TTL / time.Second)
		}
		w.Header().Add("Set-Cookie", c.String())
	}
	if limit := r.BodyLimit(rt); limit > 0 && req.Body != nil {
		req.Body = http.MaxBytesReader(w, req.Body, limit)
	}
	req = req.WithContext(context.WithValue(ctx, ctxKey{}, a))
	if upgrade != "" {
		r.serveWebSocket(w, req, a)
		return
	}
	if rt.Retries.Attempts > 0 || rt.Mirror != nil {
		if !r.bufferBody(w, req) {
			a.Status = http.StatusBadRequest
			return
		}
	}
	if rt.Mirror != nil {
		r.mirror(req, rt)
	}
	r.proxy.ServeHTTP(w, req)
}

// requestPath is the path of req's target as the client sent it, still
// escaped.
func requestPath(req *http.Request) string {
	if u := req.RequestURI; strings.HasPrefix(u, "/") {
		if i := strings.IndexByte(u, '?'); i >= 0 {
			u = u[:i]
		}
		return u
	}
	return req.URL.EscapedPath()
}

// refuse answers a request the router will not route with 400, closing
// an HTTP/1 connection.
func (r *Handler) refuse(w http.ResponseWriter, req *http.Request, reason string, start time.Time) {
	r.Logger().Debug("request refused", "remote", req.RemoteAddr, "status", http.StatusBadRequest, "reason", reason)
	if req.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
	}
	http.Error(w, "slipway router: "+reason, http.StatusBadRequest)
	r.logAccess(req, nil, http.StatusBadRequest, start)
}

func (r *Handler) rewrite(pr *httputil.ProxyRequest) {
	r.rewriteTo(pr, pr.In.Context().Value(ctxKey{}).(*stdAttempt).Endpoint.Addr)
}

// rewriteTo points pr.Out at addr and sets its forwarding headers from
// the connection (pr.Out has none of the client's: see outbound).
func (r *Handler) rewriteTo(pr *httputil.ProxyRequest, addr netip.AddrPort) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = addr.String()
	pr.Out.Host = pr.In.Host // the app sees the public host

	peer, _ := netip.ParseAddrPort(pr.In.RemoteAddr)
	trusted := r.Trusted(peer.Addr())
	if trusted {
		// Rewrite mode removed these from Out; a trusted proxy's are kept.
		for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
			if v := pr.In.Header[h]; len(v) > 0 {
				pr.Out.Header[h] = v
			}
		}
	} else {
		for name := range pr.Out.Header {
			if _, ok, _ := router.LookupForwarding(name); ok {
				delete(pr.Out.Header, name)
			}
		}
	}
	if !trusted || len(pr.Out.Header["X-Real-Ip"]) == 0 {
		if ip, _, err := net.SplitHostPort(pr.In.RemoteAddr); err == nil {
			pr.Out.Header.Set("X-Real-Ip", ip) // as SetXForwarded writes X-Forwarded-For
		}
	}
	if !trusted || len(pr.Out.Header["X-Forwarded-Port"]) == 0 {
		if la, ok := pr.In.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			if ap, err := netip.ParseAddrPort(la.String()); err == nil {
				pr.Out.Header.Set("X-Forwarded-Port", strconv.Itoa(int(ap.Port())))
			}
		}
	}
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	trustedHost := pr.Out.Header.Get("X-Forwarded-Host")
	trustedProto := pr.Out.Header.Get("X-Forwarded-Proto")
	pr.SetXForwarded()
	if trustedHost != "" {
		pr.Out.Header.Set("X-Forwarded-Host", trustedHost)
	}
	if trustedProto != "" {
		pr.Out.Header.Set("X-Forwarded-Proto", trustedProto)
	}
	fwd := fmt.Sprintf("for=%s;host=%q;proto=%s", router.ForwardedNode(peer.Addr()), pr.In.Host, proto)
	if prior := pr.Out.Header.Values("Forwarded"); len(prior) > 0 {
		fwd = strings.Join(prior, ", ") + ", " + fwd
	}
	pr.Out.Header.Set("Forwarded", fwd)
}

func (r *Handler) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	a := req.Context().Value(ctxKey{}).(*stdAttempt)
	status := http.StatusBadGateway
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &mb):
		status = http.StatusRequestEntityTooLarge
	case errors.Is(err, router.ErrTimeout) || errors.Is(context.Cause(req.Context()), router.ErrTimeout):
		status = http.StatusGatewayTimeout
	case req.Context().Err() != nil:
		return // the client went away: nobody to answer
	}
	a.Status = status
	r.Logger().Debug("upstream request failed", "host", req.Host, "path", req.URL.Path, "status", status, "err", err)
	http.Error(w, fmt.Sprintf("slipway router: %s", http.StatusText(status)), status)
}

// streamBody is a streamed response's body (no Content-Length: SSE,
// chunked) that ends as a complete response when drained: the request is
// cancelled and the error that gives is reported as the end of the body,
// so the client gets the terminating chunk rather than a cut connection.
type streamBody struct {
	io.ReadCloser
	a       *stdAttempt
	drained atomic.Bool
	untrack func()
}

func (b *streamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && b.drained.Load() {
		err = io.EOF
	}
	return n, err
}

func (b *streamBody) Drain() {
	b.drained.Store(true)
	b.a.cancel(errDrained)
}

func (b *streamBody) Close() error {
	b.untrack()
	return b.ReadCloser.Close()
}

// Package std is the router's standard engine: net/http's server with
// strict framing checks (framing.go) and request limits, proxying through
// httputil.ReverseProxy with retries (retry.go), frame-aware WebSockets
// (ws.go), mirrored copies (mirror.go), the access log, TLS with HTTP/2 and
// h2c. It serves with the core's tables, selection (router.Acquire),
// counters, passive health and drain, and serves the connections the fast
// engine hands over (Server.Handoff).
package std

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"slipway.dev/slipway/internal/router"
)

// Frontend defaults. HTTP/2 limits (streams per connection, frame and
// header-list sizes) come with HTTP/2 itself; this frontend speaks
// HTTP/1.1 only.
const (
	// DefaultMaxHeaderBytes bounds a request's line and header section
	// (nginx's large_client_header_buffers allow 4×8 KiB; HAProxy's
	// tune.bufsize is 16 KiB): larger heads get 431.
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultReadHeaderTimeout bounds the arrival of a request head once
	// its first byte is read (slowloris).
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout closes a keep-alive connection with no request.
	DefaultIdleTimeout = 90 * time.Second
	// DefaultBodyReadTimeout bounds the wait for each read of a request
	// body, not the whole body, so that large uploads on slow links pass
	// while a client that stops sending is cut off.
	DefaultBodyReadTimeout = 60 * time.Second
	// DefaultBufferBodyBytes of a body are read before a backend is
	// contacted: a body that ends within them is checked whole (framing
	// and size), so a bad one is refused before any backend sees it.
	DefaultBufferBodyBytes = 64 << 10
)

// ServerOptions configures the HTTP frontend. Zero values take the
// defaults above.
type ServerOptions struct {
	Logger *slog.Logger
	// Handler serves the requests that pass the checks: NewHandler of the
	// Router when nil, or a handler in front of it (e.g. InsecurePolicy).
	Handler           http.Handler
	MaxHeaderBytes    int
	ReadHeaderTimeout time.Duration
	IdleTimeout       time.Duration
	BodyReadTimeout   time.Duration
	BufferBodyBytes   int
	// SendTimeout bounds each write to a client (DefaultSendTimeout).
	SendTimeout time.Duration
}

// Server is the standard engine's HTTP listener: net/http's server with
// stricter framing than its own (see frameConn), request limits, and a
// graceful Shutdown. It also serves the connections the fast engine hands
// over (Handoff).
type Server struct {
	r    *router.Router
	next http.Handler
	opts ServerOptions
	log  *slog.Logger
	hs   *http.Server
	// ts serves TLS connections: those the fast engine hands over once
	// their handshake chose h2 (HandoffTLS), and the HTTPS listener on
	// the standard engine (ServeTLS).
	ts *http.Server

	hand, handTLS       *handoffListener
	startHand, startTLS sync.Once
}

// NewServer returns a frontend serving r. Run it with Serve; stop it with
// Shutdown.
func NewServer(r *router.Router, opts ServerOptions) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if opts.ReadHeaderTimeout <= 0 {
		opts.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.BufferBodyBytes <= 0 {
		opts.BufferBodyBytes = DefaultBufferBodyBytes
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = DefaultSendTimeout
	}
	s := &Server{r: r, next: opts.Handler, opts: opts, log: opts.Logger}
	if s.next == nil {
		s.next = NewHandler(r)
	}
	s.hs = &http.Server{
		Handler:           s,
		MaxHeaderBytes:    opts.MaxHeaderBytes, // net/http adds 4 KiB of slack; ServeHTTP does not
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if fc, ok := c.(*frameConn); ok {
				return context.WithValue(ctx, frameConnKey{}, fc)
			}
			return ctx
		},
		// HTTP/1.1, and HTTP/2 over cleartext with prior knowledge (h2c,
		// as gRPC and curl --http2-prior-knowledge speak it), with the
		// HTTPS server's stream limits.
		Protocols: plainProtocols(),
		HTTP2:     http2Limits(),
	}
	var tlsProtocols http.Protocols
	tlsProtocols.SetHTTP1(true)
	tlsProtocols.SetHTTP2(true)
	s.ts = &http.Server{
		Handler:           s,
		MaxHeaderBytes:    opts.MaxHeaderBytes,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		IdleTimeout:       opts.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug), // failed handshakes are per-client noise
		// Its TLSConfig only says that h2 is served (Serve then sets up
		// HTTP/2 for the *tls.Conn it is given); the listener's own
		// configuration (TLSConfig) makes the handshakes.
		TLSConfig: &tls.Config{NextProtos: []string{"h2", "http/1.1"}},
		Protocols: &tlsProtocols,
		HTTP2:     http2Limits(),
	}
	s.hand, s.handTLS = newHandoffListener(), newHandoffListener()
	return s
}

// Serve accepts connections on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	err := s.hs.Serve(frameListener{Listener: sendListener{Listener: ln, timeout: s.opts.SendTimeout}, maxLine: s.opts.MaxHeaderBytes + 4096})
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// ServeTLS is Serve for TLS connections on ln (cfg from TLSConfig):
// HTTP/1.1 and h2 by ALPN, entirely on the standard engine. It shares the
// limits, the request checks and Shutdown, but not frameConn's raw-byte
// checks of HTTP/1.1, which need the decrypted bytes before net/http: the
// fast engine's TLS listener (fast.Server.ServeTLS) applies those.
func (s *Server) ServeTLS(ln net.Listener, cfg *tls.Config) error {
	err := s.ts.Serve(tls.NewListener(sendListener{Listener: ln, timeout: s.opts.SendTimeout}, cfg))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, closes idle connections, lets in-flight
// requests finish (their responses carry Connection: close, so keep-alive
// clients go elsewhere for the next one), and returns when they have. When
// ctx ends first, it closes every connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.hand.Close() // a hand-off that comes after is refused
	defer s.handTLS.Close()
	var tsErr error
	done := make(chan struct{})
	go func() { defer close(done); tsErr = s.ts.Shutdown(ctx) }() // GOAWAY to h2 clients
	err := s.hs.Shutdown(ctx)
	<-done
	if err = errors.Join(err, tsErr); err != nil {
		s.hs.Close()
		s.ts.Close()
		return fmt.Errorf("router: shutdown: %w", err)
	}
	return nil
}

// Close closes every connection at once.
func (s *Server) Close() error {
	s.hand.Close()
	s.handTLS.Close()
	return errors.Join(s.hs.Close(), s.ts.Close())
}

// Router is the router the server serves.
func (s *Server) Router() *router.Router { return s.r }

// Options returns the server's options, defaults filled in: the limits
// the fast engine in front of it applies too.
func (s *Server) Options() ServerOptions { return s.opts }

// Handoff serves c, whose first bytes (already read from it) are pending,
// from its next request to its end: how the fast engine gives a
// connection it does not serve as is to the standard one. It reports
// false when the server is shut down (c is then the caller's to close).
func (s *Server) Handoff(c net.Conn, pending []byte) bool {
	s.startHand.Do(func() {
		go func() {
			if err := s.hs.Serve(s.hand); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Debug("router: standard engine for hand-offs stopped", "err", err)
			}
		}()
	})
	fc := &frameConn{maxLine: s.opts.MaxHeaderBytes + 4096}
	if tc, ok := c.(*tls.Conn); ok {
		st := tc.ConnectionState()
		fc.tls = &st
	} else {
		c = SendTimeoutConn(c, s.opts.SendTimeout)
	}
	fc.Conn = &replayConn{Conn: c, pending: append([]byte(nil), pending...)}
	return s.hand.deliver(fc)
}

// HandoffTLS serves c, a server connection whose handshake is done and
// negotiated h2 (or any protocol net/http serves by ALPN), to its end: how
// the fast engine's TLS listener gives h2 to the standard engine. It
// reports false when the server is shut down (c is then the caller's to
// close).
func (s *Server) HandoffTLS(c *tls.Conn) bool {
	s.startTLS.Do(func() {
		go func() {
			if err := s.ts.Serve(s.handTLS); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Debug("router: standard engine for TLS hand-offs stopped", "err", err)
			}
		}()
	})
	return s.handTLS.deliver(c)
}

type frameConnKey struct{}

// ServeHTTP checks what net/http lets through, then hands the request to
// the Router.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if fc, _ := req.Context().Value(frameConnKey{}).(*frameConn); fc != nil {
		if req.TLS == nil {
			req.TLS = fc.tls // a TLS connection handed over with its bytes
		}
		if req.ProtoMajor < 2 {
			if reason := fc.verdict(); reason != "" {
				s.refuse(w, req, http.StatusBadRequest, reason)
				return
			}
		}
	}
	if cl := req.Header["Content-Length"]; len(cl) > 1 {
		// net/http refuses differing values but takes identical ones.
		s.refuse(w, req, http.StatusBadRequest, "more than one Content-Length")
		return
	}
	if n := headSize(req); n > s.opts.MaxHeaderBytes {
		s.refuse(w, req, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request head of %d bytes exceeds %d", n, s.opts.MaxHeaderBytes))
		return
	}
	if req.ContentLength != 0 && req.Body != nil && req.Body != http.NoBody {
		if !s.readBody(w, req) {
			return
		}
	}
	s.next.ServeHTTP(w, req)
}

// readBody reads up to BufferBodyBytes of the body before any backend is
// chosen. A body ending within them is passed on whole, with a
// Content-Length; a longer one streams, the Router capping its size. It
// reports false when it has answered the request itself.
func (s *Server) readBody(w http.ResponseWriter, req *http.Request) bool {
	limit := int64(0)
	path, _ := router.CanonicalPath(requestPath(req)) // refused by the Handler if it is not
	if rt := router.Lookup(s.r.Current(), router.CanonicalHost(req.Host), path); rt != nil {
		limit = s.r.BodyLimit(rt)
	}
	if limit > 0 && req.ContentLength > limit {
		s.refuse(w, req, http.StatusRequestEntityTooLarge, fmt.Sprintf("Content-Length %d exceeds %d", req.ContentLength, limit))
		return false
	}
	body := &deadlineBody{rc: req.Body, ctl: http.NewResponseController(w), timeout: s.opts.BodyReadTimeout}
	bufCap := int64(s.opts.BufferBodyBytes)
	if limit > 0 && limit < bufCap {
		bufCap = limit
	}
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(body, bufCap+1))
	var ne net.Error
	switch {
	case err != nil && errors.As(err, &ne) && ne.Timeout():
		s.refuse(w, req, http.StatusRequestTimeout, "request body not received in time")
		return false
	case err != nil:
		s.refuse(w, req, http.StatusBadRequest, "bad request body: "+err.Error())
		return false
	case limit > 0 && n > limit:
		s.refuse(w, req, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds %d bytes", limit))
		return false
	case n <= bufCap:
		setBuffered(req, buf.Bytes()) // replayable: retries and mirrors may send it again
		if n == 0 {
			req.Body, req.GetBody = http.NoBody, nil // a 0 with a body would be sent chunked
		}
		req.ContentLength = n
		req.TransferEncoding = nil
		req.Header.Del("Trailer")
		req.Trailer = nil
	default:
		req.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(&buf, body), body}
	}
	return true
}

func (s *Server) refuse(w http.ResponseWriter, req *http.Request, status int, reason string) {
	s.log.Debug("request refused", "remote", req.RemoteAddr, "status", status, "reason", reason)
	w.Header().Set("Connection", "close")
	http.Error(w, "slipway router: "+reason, status)
}

// headSize approximates the size of the request line and header section
// as received.
func headSize(req *http.Request) int {
	n := len(req.Method) + len(req.RequestURI) + len(req.Proto) + 4
	n += len("Host: \r\n") + len(req.Host)
	for k, vs := range req.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n + 2
}

// deadlineBody renews the connection's read deadline before each read and
// clears it at the end of the body: net/http keeps reading the connection
// in the background after that, and a stale deadline there would cancel
// the request (a long response, say) when it fired.
type deadlineBody struct {
	rc      io.ReadCloser
	ctl     *http.ResponseController
	timeout time.Duration
	done    bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.timeout))
	n, err := b.rc.Read(p)
	if err != nil {
		b.done = true
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.rc.Close() }

type frameListener struct {
	net.Listener
	maxLine int
}

func (l frameListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &frameConn{Conn: c, maxLine: l.maxLine}, nil
}

// handoffListener is the standard engine's listener of the connections the
// fast engine hands over.
type handoffListener struct {
	ch     chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newHandoffListener() *handoffListener {
	return &handoffListener{ch: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) deliver(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// replayConn returns the bytes the fast engine already read before reading
// on from the connection.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

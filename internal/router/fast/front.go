package fast

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/std"
)

// fastFront is the fast engine: an HTTP/1.1 front and forwarder written
// for the hot path of a router, in the manner of fasthttp and HAProxy.
// One goroutine serves a client connection from a pool of reused
// workers; the request head is parsed in place in a pooled buffer and its
// headers stay bytes; the route comes from the atomic table through the
// same selection as the standard engine; the request is written to a
// pooled keep-alive connection of the endpoint and the response relayed
// as it arrives, flushed whenever the upstream has nothing more buffered
// (so streams pass unbuffered and small answers take one write). Nothing
// is allocated per request on this path but the counters' work.
//
// The boundary: a connection whose next request the engine does not
// serve as is (the parse in head.go says which) is handed whole,
// with the bytes already read, to the standard engine (net/http behind
// frameConn, std.Server and its Handler, through std.Server.Handoff), which then serves that
// connection to its end. That covers every refusal of the strict framing
// (the standard engine answers 400, 413, 431 as before), HTTP/1.0,
// Transfer-Encoding request bodies and bodies over BufferBodyBytes,
// Expect, Upgrade (WebSocket), h2c, "OPTIONS *" and absolute targets,
// unknown hosts (404), routes with retries on status or a mirror, and
// plain requests for TLS routes whose insecure policy is not Allow. With
// an access log (Options.AccessLog) the standard engine serves everything.
type fastFront struct {
	std   *std.Server // the fallback: see Server
	r     *router.Router
	ropts router.Options // r's, fixed once r is made
	opts  std.ServerOptions
	log   interface{ Debug(string, ...any) }
	certs *router.Certs
	tls   *tls.Config // the TLS listener's

	pools sync.Map // *endpoint → *fastPool

	work chan *fastConn // idle workers wait here for a connection

	mu      sync.Mutex
	conns   map[*fastConn]struct{}
	lns     map[net.Listener]struct{}
	accepts sync.WaitGroup // accept loops: Shutdown waits for them, then counts connections
	closing atomic.Bool
	done    chan struct{} // closed when shutdown ends the reaper

	date atomic.Pointer[dateStamp]
	bufs sync.Pool // *[]byte of fastBufSize
	wrs  sync.Pool // *bufio.Writer
}

const (
	fastBufSize = 4 << 10
	// fastWorkerIdle is how long a worker with no connection waits for
	// one before it ends.
	fastWorkerIdle = 10 * time.Second
)

// IdleGlance is how long a keep-alive connection waits for its next
// request without a read (driveRaw), which is also the longest a client
// that half-closed after its request waits for its close.
const IdleGlance = 100 * time.Millisecond

// Connection states, for Shutdown: an idle connection (waiting for a
// request) may be closed at once; an active one finishes its request, and
// so does a new one (its client has not seen it work, so it would not
// retry a request it met closed: in a hand-over between generations the
// old one accepts until the last moment).
const (
	connIdle int32 = iota
	connActive
	connClosed
	connNew
)

type fastConn struct {
	c     net.Conn // a *tls.Conn on the TLS listener
	tls   bool
	state atomic.Int32
	up    atomic.Pointer[upConn] // the upstream connection of the request in progress
}

// peer is what the forwarded headers say of a client connection,
// formatted once per connection.
type peer struct {
	ip      []byte // for X-Forwarded-For
	node    []byte // for Forwarded's for=
	port    []byte // the listener's, for X-Forwarded-Port
	proto   []byte // "http" or "https", for X-Forwarded-Proto and Forwarded
	tls     bool
	trusted bool
}

var (
	protoHTTP  = []byte("http")
	protoHTTPS = []byte("https")
)

type dateStamp struct {
	sec  int64
	line []byte
}

func newFastFront(fallback *std.Server, certs *router.Certs, tlsCfg *tls.Config) *fastFront {
	f := &fastFront{std: fallback, r: fallback.Router(), ropts: fallback.Router().Options(), opts: fallback.Options(), log: fallback.Options().Logger, certs: certs, tls: tlsCfg,
		work:  make(chan *fastConn),
		conns: map[*fastConn]struct{}{},
		lns:   map[net.Listener]struct{}{},
		done:  make(chan struct{}),
	}
	f.bufs.New = func() any { b := make([]byte, fastBufSize); return &b }
	f.wrs.New = func() any { return bufio.NewWriterSize(nil, fastBufSize) }
	go f.reap()
	return f
}

// serve accepts on ln until shutdown; requests handed off go to the
// standard engine, served from the same Server. On a TLS listener
// (isTLS) each connection's handshake is made by the worker that serves
// it.
func (f *fastFront) serve(ln net.Listener, isTLS bool) error {
	f.mu.Lock()
	if f.closing.Load() {
		f.mu.Unlock()
		return nil
	}
	f.lns[ln] = struct{}{}
	f.accepts.Add(1)
	f.mu.Unlock()
	defer f.accepts.Done()
	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if f.closing.Load() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay) // out of file descriptors, say: as net/http does
				continue
			}
			return err
		}
		delay = 0
		c = std.SendTimeoutConn(c, f.opts.SendTimeout)
		if isTLS {
			c = tls.Server(c, f.tls)
		}
		// Accepted while Shutdown closes the listener: served all the
		// same (Shutdown counts it once this loop has ended).
		fc := &fastConn{c: c, tls: isTLS}
		fc.state.Store(connNew)
		f.mu.Lock()
		f.conns[fc] = struct{}{}
		f.mu.Unlock()
		select {
		case f.work <- fc:
		default:
			go f.worker(fc)
		}
	}
}

// worker serves connections one after another, so that a client opening a
// connection per request does not pay for a new goroutine (and its stack
// growth) each time.
func (f *fastFront) worker(fc *fastConn) {
	t := time.NewTimer(fastWorkerIdle)
	defer t.Stop()
	cc := new(clientConn)
	for {
		f.serveConn(fc, cc)
		t.Reset(fastWorkerIdle)
		select {
		case fc = <-f.work:
		case <-t.C:
			return
		case <-f.done:
			return
		}
	}
}

func (f *fastFront) untrack(fc *fastConn) {
	f.mu.Lock()
	delete(f.conns, fc)
	f.mu.Unlock()
}

func (f *fastFront) peerOf(c net.Conn) peer {
	var a netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		a = ta.AddrPort().Addr()
	} else if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		a = ap.Addr()
	}
	// As httputil.ProxyRequest.SetXForwarded and forwardedNode format it.
	ip := a.String()
	if a.Is4In6() {
		ip = a.Unmap().String()
	}
	var port []byte
	if la, ok := c.LocalAddr().(*net.TCPAddr); ok {
		port = strconv.AppendInt(nil, int64(la.Port), 10)
	} else if ap, err := netip.ParseAddrPort(c.LocalAddr().String()); err == nil {
		port = strconv.AppendInt(nil, int64(ap.Port()), 10)
	}
	pr := peer{ip: []byte(ip), node: []byte(router.ForwardedNode(a)), port: port, proto: protoHTTP, trusted: f.r.Trusted(a)}
	if _, ok := c.(*tls.Conn); ok {
		pr.proto, pr.tls = protoHTTPS, true
	}
	return pr
}

// handshake makes the TLS handshake of fc within the read-header timeout
// and reports whether fc is still the fast engine's to serve: false when
// the handshake failed (fc is closed) or chose h2 (fc went to the
// standard engine).
func (f *fastFront) handshake(fc *fastConn) bool {
	tc := fc.c.(*tls.Conn)
	tc.SetDeadline(time.Now().Add(f.opts.ReadHeaderTimeout))
	if err := tc.Handshake(); err != nil {
		f.log.Debug("TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		fc.state.Store(connClosed)
		tc.Close()
		f.untrack(fc)
		return false
	}
	tc.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol == "h2" {
		f.untrack(fc)
		if !f.std.HandoffTLS(tc) {
			tc.Close()
		}
		return false
	}
	return true
}

// serveConn serves the requests of one client connection until it closes,
// fails, or is handed to the standard engine. cc is the worker's, reused
// from one connection to the next.
func (f *fastFront) serveConn(fc *fastConn, cc *clientConn) {
	c := fc.c
	if fc.tls && !f.handshake(fc) {
		return
	}
	bp := f.bufs.Get().(*[]byte)
	bw := f.wrs.Get().(*bufio.Writer)
	bw.Reset(clientWriter{cc})
	cc.reset(f, fc, *bp, bw)
	handed := false
	defer func() {
		bw.Reset(nil)
		f.wrs.Put(bw)
		if cap(cc.buf) == fastBufSize {
			*bp = cc.buf[:fastBufSize]
		}
		f.bufs.Put(bp)
		cc.buf, cc.bw, cc.fc = nil, nil, nil
		if !handed {
			fc.state.Store(connClosed)
			c.Close()
			f.untrack(fc)
		}
	}()
	var step int
	var rerr error
	if rc := rawConnOf(c); rc != nil && !fc.tls { // TLS records are read and written by crypto/tls
		step, rerr = cc.driveRaw(rc)
	} else {
		step, rerr = cc.drivePlain()
	}
	switch {
	case step == stepHandOff && cc.pr.tls && bytes.HasPrefix(cc.buf[:cc.n], h2Preface):
		// h2 is chosen by ALPN on TLS (RFC 9113, section 3.2): the
		// preface after http/1.1 is a malformed HTTP/1.1 request.
		writeRefusal(bw, http.StatusBadRequest, "slipway router: HTTP/2 over TLS is negotiated by ALPN, not with the connection preface")
		bw.Flush()
	case step == stepHandOff:
		handed = f.handoff(fc, cc.buf[:cc.n])
	case rerr != nil && cc.reading == awaitBody:
		var ne net.Error
		if errors.As(rerr, &ne) && ne.Timeout() {
			f.log.Debug("request refused", "remote", c.RemoteAddr().String(), "status", http.StatusRequestTimeout, "reason", "request body not received in time")
			writeRefusal(bw, http.StatusRequestTimeout, "slipway router: request body not received in time")
			bw.Flush()
		}
	}
}

// h2Preface is how HTTP/2 with prior knowledge starts a connection.
var h2Preface = []byte("PRI * HTTP/2.0\r\n")

// What a client connection needs next (clientConn.advance).
const (
	stepRead    = iota // more bytes from the client, by cc.deadline
	stepEnd            // nothing: close the connection
	stepHandOff        // the standard engine: hand the connection over
)

// What the next read of a client connection is for.
const (
	awaitIdle = iota // the head of the next request, none of it read yet
	awaitHead        // the rest of a head
	awaitBody        // the rest of a body
)

// clientConn is a client connection between two reads: the bytes it
// sent and how far the request they hold has come.
type clientConn struct {
	f       *fastFront
	fc      *fastConn
	buf     []byte
	n       int // bytes of buf holding data
	bw      *bufio.Writer
	pr      peer
	q       fastReq
	hostBuf [256]byte
	host    []byte

	wait         time.Duration // before the first byte of the next request
	reading      int           // awaitIdle, awaitHead, awaitBody
	idle         bool          // the connection was marked idle for this request
	scanned      int           // bytes of buf known to hold no end of head
	headDeadline bool
	end, total   int // of the head, and of the request with its body

	fd int // the descriptor while driveRaw's callback holds it, or -1

	// The read deadline advance asks for, and the one the connection has.
	deadline, applied time.Time
	now               time.Time // when the last answer ended (zero: read the clock)
}

// applyDeadline gives the connection the read deadline advance asked for.
func (cc *clientConn) applyDeadline() {
	if !cc.applied.Equal(cc.deadline) {
		cc.fc.c.SetReadDeadline(cc.deadline)
		cc.applied = cc.deadline
	}
}

func (cc *clientConn) reset(f *fastFront, fc *fastConn, buf []byte, bw *bufio.Writer) {
	cc.f, cc.fc, cc.buf, cc.n, cc.bw, cc.fd = f, fc, buf, 0, bw, -1
	cc.pr = f.peerOf(fc.c)
	cc.wait = f.opts.ReadHeaderTimeout
	cc.reading, cc.idle = awaitIdle, false
	cc.deadline, cc.applied, cc.now = time.Time{}, time.Time{}, time.Time{}
}

// advance serves the requests buf holds, one after another, and says what
// the connection needs next.
func (cc *clientConn) advance() int {
	f, fc := cc.f, cc.fc
	for {
		switch cc.reading {
		case awaitIdle:
			if !cc.idle {
				cc.idle = true
				if fc.state.Load() != connNew {
					fc.state.Store(connIdle)
					if f.closing.Load() && cc.n == 0 {
						return stepEnd
					}
				}
			}
			if cc.n == 0 {
				if cc.now.IsZero() {
					cc.now = time.Now()
				}
				cc.deadline = cc.now.Add(cc.wait)
				return stepRead
			}
			cc.idle = false
			if !fc.state.CompareAndSwap(connIdle, connActive) && !fc.state.CompareAndSwap(connNew, connActive) {
				return stepEnd // closed by Shutdown
			}
			cc.reading, cc.scanned, cc.headDeadline = awaitHead, 0, false
		case awaitHead:
			end := headEnd(cc.buf[:cc.n], cc.scanned)
			if end == 0 {
				cc.scanned = max(0, cc.n-3)
				if cc.n < f.opts.MaxHeaderBytes {
					if cc.n == len(cc.buf) {
						cc.buf = grow(cc.buf, min(2*len(cc.buf), f.opts.MaxHeaderBytes+fastBufSize))
					}
					if !cc.headDeadline {
						cc.deadline = time.Now().Add(f.opts.ReadHeaderTimeout)
						cc.headDeadline = true
					}
					return stepRead
				}
				end = -1 // the standard engine says 431
			}
			q := &cc.q
			if end < 0 || end > f.opts.MaxHeaderBytes || !q.parse(cc.buf, end) {
				return stepHandOff
			}
			cc.host = canonicalHostBytes(cc.hostBuf[:0], q.host.of(cc.buf))
			rt := router.Lookup(f.r.Current(), cc.host, q.path)
			if rt == nil || !cc.pr.tls && !f.plainAllowed(rt) || rt.Retries.Attempts > 0 || rt.Mirror != nil {
				return stepHandOff
			}
			cc.end, cc.total = end, end
			if q.cl > 0 {
				if limit := f.r.BodyLimit(rt); q.cl > int64(f.opts.BufferBodyBytes) || limit > 0 && q.cl > limit {
					return stepHandOff
				}
				cc.total = end + int(q.cl)
				if cc.total > len(cc.buf) {
					cc.buf = grow(cc.buf, cc.total)
				}
			}
			cc.reading = awaitBody
		case awaitBody:
			if cc.n < cc.total {
				cc.deadline = time.Now().Add(f.opts.BodyReadTimeout)
				return stepRead
			}
			if cc.q.cl > 0 {
				cc.q.buf = cc.buf
			}
			keep, end := f.forward(fc, &cc.q, cc.host, cc.buf[cc.end:cc.total], cc.bw, &cc.pr)
			if err := cc.bw.Flush(); err != nil || !keep {
				return stepEnd
			}
			cc.now = end
			cc.n = copy(cc.buf, cc.buf[cc.total:cc.n])
			cc.wait = f.opts.IdleTimeout
			cc.reading = awaitIdle
		}
	}
}

// drivePlain serves the connection with plain reads.
func (cc *clientConn) drivePlain() (step int, err error) {
	for {
		if step = cc.advance(); step != stepRead {
			return step, nil
		}
		cc.applyDeadline()
		m, err := cc.fc.c.Read(cc.buf[cc.n:])
		cc.n += m
		if err != nil && m == 0 {
			return step, err // the client left, timed out (slowloris) or failed
		}
	}
}
func grow(b []byte, size int) []byte {
	nb := make([]byte, size)
	copy(nb, b)
	return nb
}

// plainAllowed reports whether rt may be served over plain HTTP as is: not
// a TLS route whose insecure policy redirects or refuses (the standard
// engine's Handler, InsecurePolicy, answers those).
func (f *fastFront) plainAllowed(rt *router.Route) bool {
	if f.certs == nil {
		return true
	}
	if !f.certs.HasPolicies() {
		return true
	}
	pol, ok := f.certs.Policy(rt.Key)
	return !ok || pol == router.InsecureAllow
}

// handoff gives the connection, with the bytes already read from it, to
// the standard engine; false when that is shut down (c is then closed by
// the caller).
func (f *fastFront) handoff(fc *fastConn, pending []byte) bool {
	f.untrack(fc)
	fc.c.SetReadDeadline(time.Time{})
	return f.std.Handoff(fc.c, pending)
}

// writeRefusal writes an error answer as http.Error does, closing.
func writeRefusal(bw *bufio.Writer, status int, msg string) { writeError(bw, status, msg, true) }

// dateLine is the Date header for responses without one, formatted once a
// second.
func (f *fastFront) dateLine(now time.Time) []byte {
	sec := now.Unix()
	if d := f.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	d := &dateStamp{sec: sec, line: []byte("Date: " + now.UTC().Format(http.TimeFormat) + "\r\n")}
	f.date.Store(d)
	return d.line
}

// shutdown stops accepting, closes idle connections, and waits for the
// others to end their request (their response says Connection: close);
// at ctx's end it closes everything and returns ctx's error.
func (f *fastFront) shutdown(ctx context.Context) error {
	f.mu.Lock()
	first := !f.closing.Swap(true)
	for ln := range f.lns {
		ln.Close()
	}
	f.mu.Unlock()
	f.accepts.Wait()
	if first {
		defer close(f.done)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		f.mu.Lock()
		for fc := range f.conns {
			if fc.state.CompareAndSwap(connIdle, connClosed) {
				fc.c.Close()
			}
		}
		left := len(f.conns)
		f.mu.Unlock()
		if left == 0 {
			f.closePools()
			return nil
		}
		select {
		case <-ctx.Done():
			// Upstreams first, then the clients, each closed apart: a
			// client connection's Close takes effect at once but returns
			// only when its request leaves the read that serves it
			// (driveRaw), which the closed upstream hastens.
			f.mu.Lock()
			conns := make([]*fastConn, 0, len(f.conns))
			for fc := range f.conns {
				conns = append(conns, fc)
			}
			f.mu.Unlock()
			for _, fc := range conns {
				if uc := fc.up.Load(); uc != nil {
					uc.c.Close()
				}
			}
			for _, fc := range conns {
				go fc.c.Close()
			}
			f.closePools()
			return ctx.Err()
		case <-tick.C:
		}
	}
}

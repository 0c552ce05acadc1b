package fast

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"slipway.dev/slipway/internal/router"
)

// fastProbeAfter: see fastPool.get.
const fastProbeAfter = 50 * time.Millisecond

// An upstream connection reads through a small buffer, which holds the
// head of nearly every response; a larger head (up to upMaxHead, 4 times
// HAProxy's tune.bufsize) swaps in a larger buffer for that connection.
// Small buffers keep the working set of hundreds of connections in cache.
const (
	upBufSize = 4 << 10
	upMaxHead = 64 << 10
)

// fastPool is an endpoint's idle keep-alive connections, most recently
// used on top. Its connections are trackedConns of the endpoint, so that
// the Router closes them when the endpoint leaves (Apply, release).
type fastPool struct {
	ep     *router.Endpoint
	target string
	mu     sync.Mutex
	idle   []*upConn
}

type upConn struct {
	c         net.Conn
	rc        syscall.RawConn // nil: plain reads and writes
	br        *bufio.Reader   // reads through upConn.Read
	bw        *bufio.Writer   // writes through upConnWriter
	idleSince time.Time
	reused    bool

	// hold makes the writer keep what the next Flush gives it in out, for
	// the next Read to write before it reads (writeThenRead).
	hold bool
	out  []byte
	x    rawExchange // writeThenRead's state
}

// Read reads the upstream's answer, writing first the request held back
// by the last Flush.
func (uc *upConn) Read(p []byte) (int, error) {
	if out := uc.out; len(out) > 0 {
		uc.out = nil
		return uc.writeThenRead(out, p)
	}
	return uc.c.Read(p)
}

type upConnWriter struct{ uc *upConn }

// Write keeps p (the buffer of uc.bw, left alone until the next request)
// while uc.hold, and writes it otherwise.
func (w upConnWriter) Write(p []byte) (int, error) {
	if w.uc.hold {
		w.uc.out = p
		return len(p), nil
	}
	return w.uc.c.Write(p)
}

func (f *fastFront) pool(ep *router.Endpoint) *fastPool {
	if p, ok := f.pools.Load(ep); ok {
		return p.(*fastPool)
	}
	p, _ := f.pools.LoadOrStore(ep, &fastPool{ep: ep, target: ep.Addr.String()})
	return p.(*fastPool)
}

// get returns an idle connection, or nil. A connection idle for longer
// than fastProbeAfter is checked first (one non-blocking peek): the app
// may have closed it (its keep-alive timeout), and a request that cannot
// be replayed would be lost on it. Under load connections are reused
// sooner and skip the check.
func (p *fastPool) get(now time.Time, idleTimeout time.Duration) *upConn {
	for {
		p.mu.Lock()
		k := len(p.idle)
		if k == 0 {
			p.mu.Unlock()
			return nil
		}
		uc := p.idle[k-1]
		p.idle[k-1] = nil
		p.idle = p.idle[:k-1]
		p.mu.Unlock()
		idle := now.Sub(uc.idleSince)
		if p.ep.Leaving() || idle > idleTimeout || idle > fastProbeAfter && !connAlive(uc.c) {
			uc.c.Close()
			continue
		}
		uc.reused = true
		return uc
	}
}

func (p *fastPool) put(uc *upConn, now time.Time, max int) {
	uc.idleSince = now
	p.mu.Lock()
	if p.ep.Leaving() || len(p.idle) >= max {
		p.mu.Unlock()
		uc.c.Close()
		return
	}
	p.idle = append(p.idle, uc)
	p.mu.Unlock()
}

// reap closes pooled connections idle for longer than the idle timeout or
// to endpoints that left, and forgets the pools of endpoints that left.
func (f *fastFront) reap() {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-f.done:
			return
		case now := <-tick.C:
			f.pools.Range(func(k, v any) bool {
				p := v.(*fastPool)
				var stale []*upConn
				p.mu.Lock()
				keep := p.idle[:0]
				for _, uc := range p.idle {
					if p.ep.Leaving() || now.Sub(uc.idleSince) > f.ropts.IdleConnTimeout {
						stale = append(stale, uc)
					} else {
						keep = append(keep, uc)
					}
				}
				clear(p.idle[len(keep):])
				p.idle = keep
				gone := p.ep.Leaving() && len(keep) == 0
				p.mu.Unlock()
				if gone {
					f.pools.Delete(k)
				}
				for _, uc := range stale {
					uc.c.Close()
				}
				return true
			})
		}
	}
}

func (f *fastFront) closePools() {
	f.pools.Range(func(k, v any) bool {
		p := v.(*fastPool)
		p.mu.Lock()
		idle := p.idle
		p.idle = nil
		p.mu.Unlock()
		for _, uc := range idle {
			uc.c.Close()
		}
		f.pools.Delete(k)
		return true
	})
}

// dial opens a connection to p's endpoint, tracked by the endpoint.
func (f *fastFront) dial(p *fastPool, rt *router.Route) (*upConn, error) {
	d := net.Dialer{Timeout: f.ropts.ConnectTimeout, KeepAlive: 30 * time.Second}
	if rt.Timeouts.Connect > 0 {
		d.Timeout = rt.Timeouts.Connect
	}
	c, err := d.Dial("tcp", p.target)
	ep := p.ep
	if err != nil {
		f.r.ConnectFailed(ep)
		return nil, err
	}
	f.r.Connected(ep)
	uc := &upConn{c: ep.TrackConn(c), rc: rawConnOf(c)}
	uc.br = bufio.NewReaderSize(uc, upBufSize)
	uc.bw = bufio.NewWriterSize(upConnWriter{uc}, fastBufSize)
	return uc, nil
}

// errUpstream wraps a failure to get a response head from an endpoint.
type upstreamError struct {
	err     error
	wrote   bool // some of the request may have reached the endpoint
	reused  bool // on a pooled connection, and nothing came back
	timeout bool // the route's response timeout passed
}

func (e *upstreamError) Error() string { return e.err.Error() }

// forward proxies the request q (with its body) and writes the answer to
// bw. It reports whether the client connection may serve another request,
// and the time the answer ended.
func (f *fastFront) forward(fc *fastConn, q *fastReq, host, body []byte, bw *bufio.Writer, pr *peer) (bool, time.Time) {
	start := time.Now()
	keepClient := !q.close
	rt, p := router.Acquire(f.r, host, q.path, q, nil, nil)
	if rt != nil && p.Endpoint == nil && rt.Holds() {
		return f.held(rt, q, host, body, bw, pr, fc, start)
	}
	if rt == nil {
		writeError(bw, http.StatusNotFound, fmt.Sprintf("slipway router: no route for host %q and path %q", host, q.path), !keepClient)
		return keepClient, start
	}
	if p.Endpoint == nil {
		writeError(bw, http.StatusServiceUnavailable, fmt.Sprintf("slipway router: route %s has no ready endpoint", rt.Key), !keepClient)
		end := time.Now()
		rt.Observe(http.StatusServiceUnavailable, end.Sub(start))
		return keepClient, end
	}
	a := router.Attempt{Route: rt, Revision: p.Revision, Endpoint: p.Endpoint}
	f.r.Begin(&a)

	var uc *upConn
	var h respHead
	var err error
	var tried []netip.AddrPort // on the stack unless a retry happens
	for attempts := 1; ; attempts++ {
		uc, h, err = f.send(fc, q, body, pr, &a, start)
		if err == nil {
			break
		}
		a.CountError()
		// As the standard engine's RoundTrip: what never reached the app
		// goes elsewhere; a pooled connection the app was closing is not
		// the endpoint's fault; what reached the app is sent again, once,
		// when it may be replayed (idempotent, or its body buffered: the
		// fast engine holds every body it serves).
		ue, _ := err.(*upstreamError)
		wrote := ue != nil && ue.wrote
		reused := ue != nil && ue.reused
		if !reused {
			tried = append(tried, a.Endpoint.Addr)
		}
		replayable := len(body) > 0 || router.Idempotent(string(q.method.of(q.buf)))
		retry := !(ue != nil && ue.timeout) && (!wrote || replayable && (reused || !a.Retried))
		if !retry || attempts >= router.MaxTries {
			break
		}
		failed := a.Endpoint.Addr
		_, np := router.Acquire(f.r, host, q.path, q, a.Revision, tried)
		if np.Endpoint == nil {
			break
		}
		if wrote && !reused {
			a.Retried = true
		}
		f.r.RetryOn(&a, np)
		f.log.Debug("retrying request on another endpoint", "route", rt.Key, "failed", failed, "endpoint", np.Endpoint.Addr, "err", err)
	}
	closeClient := q.close || f.closing.Load()
	keep := !closeClient
	if err != nil {
		a.Status = http.StatusBadGateway
		if ue, _ := err.(*upstreamError); ue != nil && ue.timeout {
			a.Status = http.StatusGatewayTimeout
		}
		f.log.Debug("upstream request failed", "host", string(q.host.of(q.buf)), "path", string(q.path), "status", a.Status, "err", err)
		writeError(bw, a.Status, "slipway router: "+http.StatusText(a.Status), closeClient)
	}
	var end time.Time
	if err == nil {
		var upKeep, clientOK bool
		a.Status, upKeep, clientOK = f.relay(uc, h, q, bw, closeClient, p.Sticky, rt, a.Endpoint, start)
		fc.up.Store(nil)
		end = time.Now()
		if upKeep {
			f.pool(a.Endpoint).put(uc, end, f.ropts.MaxIdleConnsPerEndpoint)
		} else {
			uc.c.Close()
		}
		keep = keep && clientOK
	} else {
		end = time.Now()
	}
	f.r.End(&a, end.Sub(start))
	return keep, end
}

// send writes q to a connection of a.ep and reads the response head,
// left in the connection's reader. A pooled connection the app closed
// meanwhile (nothing of a response came back) is replaced by a new one,
// once, for requests net/http's transport would send again.
func (f *fastFront) send(fc *fastConn, q *fastReq, body []byte, pr *peer, a *router.Attempt, start time.Time) (*upConn, respHead, error) {
	p := f.pool(a.Endpoint)
	uc := p.get(start, f.ropts.IdleConnTimeout)
	for {
		if uc == nil {
			var err error
			if uc, err = f.dial(p, a.Route); err != nil {
				return nil, respHead{}, &upstreamError{err: err}
			}
		}
		fc.up.Store(uc)
		writeRequest(uc.bw, q, body, pr)
		// The last piece of the request is written by the read of the
		// answer, in one go with it (upConn.Read).
		uc.hold = uc.rc != nil
		err := uc.bw.Flush()
		uc.hold = false
		var h respHead
		nothing := true // no byte of an answer came
		if err == nil {
			if d := a.Route.Timeouts.Response; d > 0 {
				uc.c.SetReadDeadline(start.Add(d))
			}
			if _, err = uc.br.Peek(1); err == nil {
				nothing = false
				h, err = readHead(uc)
			}
		}
		if err == nil {
			return uc, h, nil
		}
		uc.c.Close()
		fc.up.Store(nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, h, &upstreamError{err: fmt.Errorf("%w after %s: %w", router.ErrTimeout, a.Route.Timeouts.Response, err), wrote: true, timeout: true}
		}
		if uc.reused && nothing && transportReplayable(q, body) {
			uc = nil // stale pooled connection: once more on a new one, as net/http's transport does
			continue
		}
		return nil, h, &upstreamError{err: err, wrote: true, reused: uc.reused && nothing}
	}
}

// transportReplayable: what net/http's transport sends again on a new
// connection when a reused one failed (Request.isReplayable).
func transportReplayable(q *fastReq, body []byte) bool {
	if len(body) > 0 {
		return false
	}
	switch string(q.method.of(q.buf)) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	for i := 0; i < q.nh; i++ {
		n := q.headers[i].name.of(q.buf)
		if asciiEqualFold(n, "idempotency-key") || asciiEqualFold(n, "x-idempotency-key") {
			return true
		}
	}
	return false
}

// writeRequest writes q as the upstream gets it: hop-by-hop headers (and
// those the client's Connection header names) left out, the forwarding
// headers set from the connection (a trusted proxy's kept and appended
// to), the public Host kept.
func writeRequest(w *bufio.Writer, q *fastReq, body []byte, pr *peer) {
	b := q.buf
	w.Write(q.method.of(b))
	w.WriteByte(' ')
	if t := q.target.of(b); q.canon {
		w.Write(q.path) // what was matched
		w.Write(t[q.rawPath:])
	} else {
		w.Write(t)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(q.host.of(b))
	w.WriteString("\r\n")
	var xff, xfh, xfp, fwd, xri, xfport int // counts of the client's forwarding headers
	for i := 0; i < q.nh; i++ {
		h := &q.headers[i]
		switch h.kind {
		case hdrHost, hdrContentLength, hdrConnection, hdrTE, hdrHop:
			continue
		case hdrXFF:
			xff++
			continue
		case hdrXFHost:
			xfh++
			continue
		case hdrXFProto:
			xfp++
			continue
		case hdrForwarded:
			fwd++
			continue
		case hdrXRealIP:
			xri++
			if !pr.trusted {
				continue
			}
		case hdrXFPort:
			xfport++
			if !pr.trusted {
				continue
			}
		case hdrStripped:
			if !pr.trusted {
				continue
			}
		}
		name := h.name.of(b)
		if q.connHdr && q.listsName(name) {
			continue
		}
		w.Write(name)
		w.WriteString(": ")
		w.Write(h.value.of(b))
		w.WriteString("\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	if pr.trusted && xff > 0 {
		writeJoined(w, q, hdrXFF)
		w.WriteString(", ")
	}
	w.Write(pr.ip)
	w.WriteString("\r\nX-Forwarded-Host: ")
	if v, ok := q.first(hdrXFHost); pr.trusted && xfh > 0 && ok && len(v) > 0 {
		w.Write(v)
	} else {
		w.Write(q.host.of(b))
	}
	w.WriteString("\r\nX-Forwarded-Proto: ")
	if v, ok := q.first(hdrXFProto); pr.trusted && xfp > 0 && ok && len(v) > 0 {
		w.Write(v)
	} else {
		w.Write(pr.proto)
	}
	w.WriteString("\r\nForwarded: ")
	if pr.trusted && fwd > 0 {
		writeJoined(w, q, hdrForwarded)
		w.WriteString(", ")
	}
	w.WriteString("for=")
	w.Write(pr.node)
	w.WriteString(";host=\"")
	w.Write(q.host.of(b)) // hostByte: nothing to escape
	w.WriteString("\";proto=")
	w.Write(pr.proto)
	w.WriteString("\r\n")
	if !pr.trusted || xri == 0 {
		w.WriteString("X-Real-Ip: ")
		w.Write(pr.ip)
		w.WriteString("\r\n")
	}
	if !pr.trusted || xfport == 0 {
		w.WriteString("X-Forwarded-Port: ")
		w.Write(pr.port)
		w.WriteString("\r\n")
	}
	if q.te {
		w.WriteString("Te: trailers\r\n")
	}
	if q.cl > 0 || q.cl == 0 && bodyMethod(q.method.of(b)) {
		w.WriteString("Content-Length: ")
		w.Write(strconv.AppendInt(w.AvailableBuffer(), q.cl, 10))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
}

func bodyMethod(m []byte) bool {
	switch string(m) {
	case "POST", "PUT", "PATCH":
		return true
	}
	return false
}

func writeJoined(w *bufio.Writer, q *fastReq, kind hdrKind) {
	sep := false
	for i := 0; i < q.nh; i++ {
		if q.headers[i].kind == kind {
			if sep {
				w.WriteString(", ")
			}
			w.Write(q.headers[i].value.of(q.buf))
			sep = true
		}
	}
}

func (q *fastReq) first(kind hdrKind) ([]byte, bool) {
	for i := 0; i < q.nh; i++ {
		if q.headers[i].kind == kind {
			return q.headers[i].value.of(q.buf), true
		}
	}
	return nil, false
}

// writeError answers as http.Error does, asking the client to close the
// connection when closeClient.
func writeError(bw *bufio.Writer, status int, msg string, closeClient bool) {
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	if closeClient {
		bw.WriteString("\r\nConnection: close")
	}
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(msg)
	bw.WriteByte('\n')
}

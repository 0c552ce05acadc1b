package router

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"
)

// fastProbeAfter: see fastPool.get.
const fastProbeAfter = 50 * time.Millisecond

// upBufSize bounds an upstream response head (HAProxy's tune.bufsize).
const upBufSize = 16 << 10

// fastPool is an endpoint's idle keep-alive connections, most recently
// used on top. Its connections are trackedConns of the endpoint, so that
// the Router closes them when the endpoint leaves (Apply, release).
type fastPool struct {
	ep     *endpoint
	target string
	mu     sync.Mutex
	idle   []*upConn
}

type upConn struct {
	c         net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	reused    bool
}

func (f *fastFront) pool(ep *endpoint) *fastPool {
	if p, ok := f.pools.Load(ep); ok {
		return p.(*fastPool)
	}
	p, _ := f.pools.LoadOrStore(ep, &fastPool{ep: ep, target: ep.addr.String()})
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
		if p.ep.leaving.Load() || idle > idleTimeout || idle > fastProbeAfter && !connAlive(uc.c) {
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
	if p.ep.leaving.Load() || len(p.idle) >= max {
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
					if p.ep.leaving.Load() || now.Sub(uc.idleSince) > f.r.opts.IdleConnTimeout {
						stale = append(stale, uc)
					} else {
						keep = append(keep, uc)
					}
				}
				clear(p.idle[len(keep):])
				p.idle = keep
				gone := p.ep.leaving.Load() && len(keep) == 0
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
func (f *fastFront) dial(p *fastPool, rt *route) (*upConn, error) {
	d := net.Dialer{Timeout: f.r.opts.ConnectTimeout, KeepAlive: 30 * time.Second}
	if rt.timeouts.Connect > 0 {
		d.Timeout = rt.timeouts.Connect
	}
	c, err := d.Dial("tcp", p.target)
	if err != nil {
		return nil, err
	}
	ep := p.ep
	tc := &trackedConn{Conn: c, ep: ep}
	ep.connMu.Lock()
	if ep.conns == nil {
		ep.conns = map[*trackedConn]struct{}{}
	}
	ep.conns[tc] = struct{}{}
	ep.connMu.Unlock()
	return &upConn{c: tc, br: bufio.NewReaderSize(tc, upBufSize), bw: bufio.NewWriterSize(tc, fastBufSize)}, nil
}

// lookupBytes is Table.lookup for a host and path held as bytes.
func lookupBytes(t *Table, host, path []byte) *route {
	if r := matchPathBytes(t.exact[string(host)], path); r != nil {
		return r
	}
	for s := host; ; {
		i := bytes.IndexByte(s, '.')
		if i < 0 {
			return nil
		}
		s = s[i+1:]
		if r := matchPathBytes(t.wildcard[string(s)], path); r != nil {
			return r
		}
	}
}

func matchPathBytes(rs []*route, path []byte) *route {
	for _, r := range rs {
		if r.path == "/" || string(path) == r.path ||
			len(path) > len(r.path) && string(path[:len(r.path)]) == r.path && path[len(r.path)] == '/' {
			return r
		}
	}
	return nil
}

// acquire is Router.acquire for the fast engine's request.
func (f *fastFront) acquire(q *fastReq, host []byte, prefer *revision, ex netip.AddrPort) (*route, pick) {
	r := f.r
	for {
		t := r.cur.Load()
		t.gate.RLock()
		if r.cur.Load() != t {
			t.gate.RUnlock()
			continue
		}
		rt := lookupBytes(t, host, q.path)
		var p pick
		if rt != nil && prefer != nil {
			p = rt.sameRevision(prefer, r.rnd, ex)
		}
		if rt != nil && p.ep == nil {
			p = rt.choose(q, r.rnd, ex)
		}
		if p.ep != nil {
			p.ep.inflight.Add(1)
		}
		t.gate.RUnlock()
		return rt, p
	}
}

// errUpstream wraps a failure to get a response head from an endpoint.
type upstreamError struct {
	err     error
	wrote   bool // some of the request may have reached the endpoint
	timeout bool // the route's response timeout passed
}

func (e *upstreamError) Error() string { return e.err.Error() }

// forward proxies the request q (with its body) and writes the answer to
// bw. It reports whether the client connection may serve another request.
func (f *fastFront) forward(fc *fastConn, q *fastReq, host, body []byte, bw *bufio.Writer, pr *peer) bool {
	start := time.Now()
	keepClient := !q.close
	rt, p := f.acquire(q, host, nil, netip.AddrPort{})
	if rt == nil {
		writeError(bw, http.StatusNotFound, fmt.Sprintf("slipway router: no route for host %q and path %q", host, q.path), !keepClient)
		return keepClient
	}
	if p.ep == nil {
		writeError(bw, http.StatusServiceUnavailable, fmt.Sprintf("slipway router: route %s has no ready endpoint", rt.key), !keepClient)
		rt.stats.observe(http.StatusServiceUnavailable, time.Since(start))
		return keepClient
	}
	a := attempt{route: rt, rev: p.rev, ep: p.ep}
	rt.stats.inflight.Add(1)
	a.rev.stats.inflight.Add(1)

	var uc *upConn
	var h respHead
	var err error
	for {
		uc, h, err = f.send(fc, q, body, pr, &a, start)
		if err == nil {
			break
		}
		a.countError()
		ue, _ := err.(*upstreamError)
		replayable := len(body) == 0 && idempotent(string(q.method.of(q.buf)))
		if ue != nil && ue.timeout || ue != nil && ue.wrote && !replayable || a.retry {
			break
		}
		failed := a.ep.addr
		_, np := f.acquire(q, host, a.rev, failed)
		if np.ep == nil {
			break
		}
		f.r.release(a.ep)
		a.rev.stats.inflight.Add(-1)
		np.rev.stats.inflight.Add(1)
		a.rev, a.ep, a.retry = np.rev, np.ep, true
		rt.stats.retries.Add(1)
		a.rev.stats.retries.Add(1)
		a.ep.stats.retries.Add(1)
		f.log.Debug("retrying request on another endpoint", "route", rt.key, "failed", failed, "endpoint", np.ep.addr, "err", err)
	}
	closeClient := q.close || f.closing.Load()
	keep := !closeClient
	if err != nil {
		a.status = http.StatusBadGateway
		if ue, _ := err.(*upstreamError); ue != nil && ue.timeout {
			a.status = http.StatusGatewayTimeout
		}
		f.log.Debug("upstream request failed", "host", string(q.host.of(q.buf)), "path", string(q.path), "status", a.status, "err", err)
		writeError(bw, a.status, "slipway router: "+http.StatusText(a.status), closeClient)
	} else {
		var upKeep, clientOK bool
		a.status, upKeep, clientOK = f.relay(uc, h, q, bw, closeClient, p.sticky, rt, start)
		fc.up.Store(nil)
		if upKeep {
			f.pool(a.ep).put(uc, time.Now(), f.r.opts.MaxIdleConnsPerEndpoint)
		} else {
			uc.c.Close()
		}
		keep = keep && clientOK
	}
	d := time.Since(start)
	f.r.release(a.ep)
	a.rev.stats.inflight.Add(-1)
	rt.stats.inflight.Add(-1)
	a.ep.stats.observe(a.status, d)
	a.rev.stats.observe(a.status, d)
	rt.stats.observe(a.status, d) // the route last: once it counts a request, all is counted
	return keep
}

// send writes q to a connection of a.ep and reads the response head,
// left in the connection's reader. A pooled connection the app closed
// meanwhile (nothing of a response came back) is replaced by a new one,
// once, for requests net/http's transport would send again.
func (f *fastFront) send(fc *fastConn, q *fastReq, body []byte, pr *peer, a *attempt, start time.Time) (*upConn, respHead, error) {
	p := f.pool(a.ep)
	uc := p.get(start, f.r.opts.IdleConnTimeout)
	for {
		if uc == nil {
			var err error
			if uc, err = f.dial(p, a.route); err != nil {
				return nil, respHead{}, &upstreamError{err: err}
			}
		}
		fc.up.Store(uc)
		writeRequest(uc.bw, q, body, pr)
		err := uc.bw.Flush()
		var h respHead
		nothing := true // no byte of an answer came
		if err == nil {
			if d := a.route.timeouts.Response; d > 0 {
				uc.c.SetReadDeadline(start.Add(d))
			}
			if _, err = uc.br.Peek(1); err == nil {
				nothing = false
				h, err = readHead(uc.br)
			}
		}
		if err == nil {
			return uc, h, nil
		}
		uc.c.Close()
		fc.up.Store(nil)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, h, &upstreamError{err: fmt.Errorf("%w after %s: %w", errTimeout, a.route.timeouts.Response, err), wrote: true, timeout: true}
		}
		if uc.reused && nothing && transportReplayable(q, body) {
			uc = nil // stale pooled connection: once more on a new one
			continue
		}
		return nil, h, &upstreamError{err: err, wrote: true}
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
	w.Write(q.target.of(b))
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(q.host.of(b))
	w.WriteString("\r\n")
	var xff, xfh, xfp, fwd int // counts of the client's forwarding headers
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
		w.WriteString("http")
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
	w.WriteString("\";proto=http\r\n")
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

// writeError answers as http.Error does.
func writeError(bw *bufio.Writer, status int, msg string, closeClient bool) {
	if closeClient {
		writeRefusal(bw, status, msg)
		return
	}
	bw.WriteString("HTTP/1.1 ")
	bw.WriteString(strconv.Itoa(status))
	bw.WriteByte(' ')
	bw.WriteString(http.StatusText(status))
	bw.WriteString("\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ")
	bw.WriteString(strconv.Itoa(len(msg) + 1))
	bw.WriteString("\r\n\r\n")
	bw.WriteString(msg)
	bw.WriteByte('\n')
}

// Response body framings.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyToClose // until the upstream closes: sent on chunked
)

// relay reads the response head waiting in uc and writes it, and then the
// body as it arrives, to bw. It returns the status, whether uc may be
// pooled again, and whether the client connection is still sound.
func (f *fastFront) relay(uc *upConn, h respHead, q *fastReq, bw *bufio.Writer, closeClient bool, sticky string, rt *route, start time.Time) (status int, upKeep, clientOK bool) {
	timed := rt.timeouts.Response > 0
	head := q.method.of(q.buf)
	for first := true; ; first = false {
		if !first {
			var err error
			if h, err = readHead(uc.br); err != nil {
				return status, false, false // after an interim answer: cut
			}
		}
		status = h.status
		if status == http.StatusSwitchingProtocols || status < 100 {
			// Not asked for (upgrades take the standard engine).
			uc.br.Discard(len(h.raw))
			writeError(bw, http.StatusBadGateway, "slipway router: "+http.StatusText(http.StatusBadGateway), closeClient)
			return http.StatusBadGateway, false, !closeClient
		}
		if status < 200 {
			// An interim answer (103 Early Hints): pass it on, and read on.
			h.write(bw, bodyNone, -1, false, nil, nil)
			uc.br.Discard(len(h.raw))
			if bw.Flush() != nil {
				return status, false, false
			}
			continue
		}
		if timed {
			uc.c.SetReadDeadline(time.Time{})
		}
		framing := bodyToClose
		switch {
		case string(head) == "HEAD" || status == 204 || status == 304:
			framing = bodyNone
		case h.chunked:
			framing = bodyChunked
		case h.length >= 0:
			framing = bodyLength
		case h.badFraming:
			uc.br.Discard(len(h.raw))
			writeError(bw, http.StatusBadGateway, "slipway router: "+http.StatusText(http.StatusBadGateway), closeClient)
			return http.StatusBadGateway, false, !closeClient
		}
		var date []byte
		if !h.hasDate {
			date = f.dateLine(start)
		}
		var cookie []byte
		if sticky != "" {
			c := &http.Cookie{Name: rt.affinity.CookieName, Value: sticky, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
			if rt.affinity.TTL > 0 {
				c.MaxAge = int(rt.affinity.TTL / time.Second)
			}
			cookie = []byte(c.String())
		}
		h.write(bw, framing, h.length, closeClient, date, cookie)
		uc.br.Discard(len(h.raw))
		upKeep = h.keepAlive && framing != bodyToClose
		var uerr, cerr error
		switch framing {
		case bodyLength:
			uerr, cerr = copyLength(bw, uc.br, h.length)
		case bodyChunked:
			uerr, cerr = copyChunked(bw, uc.br)
		case bodyToClose:
			uerr, cerr = copyToClose(bw, uc.br)
		}
		if uerr != nil {
			f.log.Debug("upstream response body failed", "status", status, "err", uerr)
			return status, false, false // the client sees a cut answer and the connection closed
		}
		return status, upKeep, cerr == nil
	}
}

// respHead is a response head as the upstream sent it, read in place.
type respHead struct {
	raw        []byte // the whole head, in the reader's buffer
	status     int
	length     int64 // -1: none
	chunked    bool
	badFraming bool // a Transfer-Encoding other than chunked, or lengths that differ
	keepAlive  bool
	hasDate    bool
	conn       [][]byte // names the upstream's Connection header lists
}

// readHead peeks at the response head at the front of br.
func readHead(br *bufio.Reader) (respHead, error) {
	var h respHead
	n := max(1, br.Buffered())
	var p []byte
	for {
		var err error
		p, err = br.Peek(n)
		if end := respHeadEnd(p); end > 0 {
			p = p[:end]
			break
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = errors.New("response head larger than 16 KiB")
			}
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return h, err
		}
		n = br.Buffered() + 1
	}
	h.raw, h.length = p, -1
	line, rest, _ := bytes.Cut(p, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	h.keepAlive = line[7] == '1'
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || len(line) > 12 && line[12] != ' ' {
		return h, fmt.Errorf("malformed status line %q", line)
	}
	h.status = code
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, fmt.Errorf("malformed header line %q", line)
		}
		v = bytes.Trim(v, " \t")
		switch {
		case asciiEqualFold(name, "content-length"):
			l, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil || l < 0 || h.length >= 0 && h.length != l {
				h.badFraming = true
			}
			h.length = l
		case asciiEqualFold(name, "transfer-encoding"):
			forEachToken(v, func(tok []byte) { h.chunked = asciiEqualFold(tok, "chunked") })
			if !h.chunked {
				h.badFraming = true
			}
		case asciiEqualFold(name, "connection"):
			forEachToken(v, func(tok []byte) {
				switch {
				case asciiEqualFold(tok, "close"):
					h.keepAlive = false
				case asciiEqualFold(tok, "keep-alive"):
				default:
					h.conn = append(h.conn, tok)
				}
			})
		case asciiEqualFold(name, "date"):
			h.hasDate = true
		}
	}
	if h.chunked {
		h.length = -1
	}
	return h, nil
}

// respHeadEnd is headEnd for an upstream's answer, which may end its
// lines with a bare LF.
func respHeadEnd(p []byte) int {
	for i := 0; i < len(p); {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j + 1
		switch {
		case i < len(p) && p[i] == '\n':
			return i + 1
		case i+1 < len(p) && p[i] == '\r' && p[i+1] == '\n':
			return i + 2
		}
	}
	return 0
}

var respHop = [...]string{"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "transfer-encoding", "upgrade", "content-length"}

// write writes the head to the client: status line as HTTP/1.1,
// end-to-end headers as received, then the router's framing.
func (h *respHead) write(bw *bufio.Writer, framing int, length int64, closeClient bool, date, cookie []byte) {
	line, rest, _ := bytes.Cut(h.raw, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	bw.WriteString("HTTP/1.1")
	bw.Write(line[8:])
	bw.WriteString("\r\n")
	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		name, _, _ := bytes.Cut(line, []byte(":"))
		if h.dropped(name) {
			continue
		}
		bw.Write(line)
		bw.WriteString("\r\n")
	}
	switch framing {
	case bodyLength:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
		bw.WriteString("\r\n")
	case bodyChunked, bodyToClose:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case bodyNone:
		if length >= 0 {
			bw.WriteString("Content-Length: ")
			bw.Write(strconv.AppendInt(bw.AvailableBuffer(), length, 10))
			bw.WriteString("\r\n")
		}
	}
	if cookie != nil {
		bw.WriteString("Set-Cookie: ")
		bw.Write(cookie)
		bw.WriteString("\r\n")
	}
	bw.Write(date)
	if closeClient {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

func (h *respHead) dropped(name []byte) bool {
	for _, n := range respHop {
		if asciiEqualFold(name, n) {
			return true
		}
	}
	for _, n := range h.conn {
		if bytes.EqualFold(name, n) {
			return true
		}
	}
	return false
}

// The copies flush the client's writer whenever the upstream has nothing
// more buffered, so that a stream is never held back while a short answer
// goes out in one write. They return the upstream's error and the
// client's.

func copyLength(bw *bufio.Writer, br *bufio.Reader, n int64) (uerr, cerr error) {
	for n > 0 {
		if br.Buffered() == 0 {
			if cerr = bw.Flush(); cerr != nil {
				return nil, cerr
			}
			if _, uerr = br.Peek(1); uerr != nil {
				return uerr, nil
			}
		}
		p, _ := br.Peek(int(min(int64(br.Buffered()), n)))
		if _, cerr = bw.Write(p); cerr != nil {
			return nil, cerr
		}
		br.Discard(len(p))
		n -= int64(len(p))
	}
	return nil, nil
}

func copyChunked(bw *bufio.Writer, br *bufio.Reader) (uerr, cerr error) {
	for {
		if br.Buffered() == 0 {
			if cerr = bw.Flush(); cerr != nil {
				return nil, cerr
			}
		}
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err, nil
		}
		if _, cerr = bw.Write(line); cerr != nil {
			return nil, cerr
		}
		size := bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimRight(size, " \t")), 16, 62)
		if err != nil {
			return fmt.Errorf("malformed chunk line %q", line), nil
		}
		if n == 0 {
			break
		}
		if uerr, cerr = copyLength(bw, br, int64(n)+2); uerr != nil || cerr != nil {
			return uerr, cerr
		}
	}
	for { // trailer section, up to its empty line
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err, nil
		}
		if _, cerr = bw.Write(line); cerr != nil {
			return nil, cerr
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil, nil
		}
	}
}

func copyToClose(bw *bufio.Writer, br *bufio.Reader) (uerr, cerr error) {
	for {
		if br.Buffered() == 0 {
			if cerr = bw.Flush(); cerr != nil {
				return nil, cerr
			}
			if _, err := br.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					_, cerr = bw.WriteString("0\r\n\r\n")
					return nil, cerr
				}
				return err, nil
			}
		}
		p, _ := br.Peek(br.Buffered())
		bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16))
		bw.WriteString("\r\n")
		bw.Write(p)
		if _, cerr = bw.WriteString("\r\n"); cerr != nil {
			return nil, cerr
		}
		br.Discard(len(p))
	}
}

package std

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway/internal/router"
)

// WebSockets are proxied by the router itself rather than by
// httputil.ReverseProxy, which splices the two connections blindly: to end
// one cleanly when its endpoint leaves (a close frame 1001, "going away"),
// the router must write that frame between two of the endpoint's frames,
// so it follows the frame boundaries of what the endpoint sends.

// wsCloseWait bounds each wait of a clean close: for a frame in progress
// to finish before the close frame goes out, and for the client to close
// its side afterwards.
const wsCloseWait = 2 * time.Second

// upgradeOf returns the protocol a request asks to switch to ("" if none).
func upgradeOf(h http.Header) string {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(textproto.TrimString(tok), "upgrade") {
				return h.Get("Upgrade")
			}
		}
	}
	return ""
}

// hopHeaders are removed from what is forwarded (RFC 9110, section 7.6.1),
// with the names the message's Connection header lists.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		h.Del(name)
	}
}

// outbound is req as sent to addr: hop-by-hop headers removed and the
// forwarding headers set as for any proxied request (see rewrite).
func (r *Handler) outbound(req *http.Request, ctx context.Context, addr netip.AddrPort) *http.Request {
	out := req.Clone(ctx)
	out.RequestURI = ""
	removeHopHeaders(out.Header)
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Forwarded"} {
		out.Header.Del(h)
	}
	r.rewriteTo(&httputil.ProxyRequest{In: req, Out: out}, addr)
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header.Set("User-Agent", "") // send none rather than Go's
	}
	return out
}

// serveWebSocket proxies a WebSocket handshake to a.ep (or, when its
// connect fails, to other endpoints) and, on 101, the connection. Any
// other answer is passed on and the client's connection closed: the
// client may already be sending frames, which must not be read as a
// request.
func (r *Handler) serveWebSocket(w http.ResponseWriter, req *http.Request, a *stdAttempt) {
	ctx := req.Context()
	var tried []netip.AddrPort
	var conn net.Conn
	for {
		tried = append(tried, a.Endpoint.Addr)
		d := net.Dialer{Timeout: r.opts.ConnectTimeout}
		if a.Route.Timeouts.Connect > 0 {
			d.Timeout = a.Route.Timeouts.Connect
		}
		c, err := d.DialContext(ctx, "tcp", a.Endpoint.Addr.String())
		if err == nil {
			r.Connected(a.Endpoint)
			conn = c
			break
		}
		if ctx.Err() != nil {
			return
		}
		r.ConnectFailed(a.Endpoint)
		a.CountError()
		_, p := router.Acquire(r.Router, a.host, a.path, router.HTTPView{Request: req}, a.Revision, tried)
		if p.Endpoint == nil || len(tried) >= router.MaxTries {
			r.proxyError(w, req, err)
			return
		}
		r.RetryOn(&a.Attempt, p)
	}
	defer conn.Close()
	out := r.outbound(req, ctx, a.Endpoint.Addr)
	out.Header.Set("Connection", "Upgrade")
	out.Header.Set("Upgrade", "websocket")
	timeout := cmp.Or(a.Route.Timeouts.Response, DefaultReadHeaderTimeout)
	conn.SetDeadline(time.Now().Add(timeout))
	br := bufio.NewReader(conn)
	err := out.Write(conn)
	var resp *http.Response
	if err == nil {
		resp, err = http.ReadResponse(br, out)
	}
	if err != nil {
		a.CountError()
		w.Header().Set("Connection", "close")
		r.proxyError(w, req, fmt.Errorf("websocket handshake with %s: %w", a.Endpoint.Addr, err))
		return
	}
	conn.SetDeadline(time.Time{})
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		if resp.StatusCode == http.StatusSwitchingProtocols {
			a.Status = http.StatusBadGateway
			w.Header().Set("Connection", "close")
			r.proxyError(w, req, fmt.Errorf("endpoint %s switched to %q, not websocket", a.Endpoint.Addr, resp.Header.Get("Upgrade")))
			return
		}
		removeHopHeaders(resp.Header)
		h := w.Header()
		for k, vs := range resp.Header {
			h[k] = vs
		}
		h.Set("Connection", "close")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return
	}
	client, cbuf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		a.Status = http.StatusInternalServerError
		r.Logger().Debug("cannot take over the client connection for a websocket", "err", err)
		return
	}
	defer client.Close()
	removeHopHeaders(resp.Header)
	resp.Header.Set("Connection", "Upgrade")
	resp.Header.Set("Upgrade", "websocket")
	fmt.Fprintf(cbuf, "HTTP/1.1 101 Switching Protocols\r\n")
	resp.Header.Write(cbuf)
	cbuf.WriteString("\r\n")
	if err := cbuf.Flush(); err != nil {
		return
	}
	ws := &wsConn{client: client, clientR: cbuf.Reader, backend: conn, backendR: br, wmu: make(chan struct{}, 1)}
	untrack := a.Endpoint.Track(ws)
	defer untrack()
	ws.run()
}

// wsConn is a proxied WebSocket.
type wsConn struct {
	client   net.Conn
	clientR  io.Reader // the client's bytes, some maybe buffered already
	backend  net.Conn
	backendR io.Reader

	// wmu is held while a frame is written to the client: a close frame
	// goes out only between two frames.
	wmu     chan struct{}
	mu      sync.Mutex
	closing bool // a close frame was sent: nothing more to the client
}

// run copies both ways until both directions ended.
func (ws *wsConn) run() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		ws.clientToBackend()
	}()
	ws.backendToClient()
	// The client's side is closed for writing: give it a moment to answer
	// (a close frame) and close, so that nothing it sends is left unread,
	// which would turn our close into a reset.
	ws.client.SetReadDeadline(time.Now().Add(wsCloseWait))
	<-done
}

// clientToBackend forwards the client's bytes as they are (the client's
// frames are masked and need no looking into); once the close frame was
// sent, it only reads them, until the client closes.
func (ws *wsConn) clientToBackend() {
	buf := make([]byte, 32<<10)
	forward := true
	for {
		n, err := ws.clientR.Read(buf)
		if n > 0 && forward && !ws.isClosing() {
			if _, werr := ws.backend.Write(buf[:n]); werr != nil {
				forward = false
			}
		}
		if err != nil {
			if cw, ok := ws.backend.(interface{ CloseWrite() error }); ok && forward {
				cw.CloseWrite()
			}
			ws.backend.SetReadDeadline(time.Now().Add(wsCloseWait))
			return
		}
	}
}

// backendToClient forwards the endpoint's frames whole, one at a time.
func (ws *wsConn) backendToClient() {
	defer func() {
		if cw, ok := ws.client.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			ws.client.Close()
		}
	}()
	var hdr [14]byte
	for {
		if _, err := io.ReadFull(ws.backendR, hdr[:2]); err != nil {
			return
		}
		n := 2
		size := uint64(hdr[1] & 0x7f)
		switch size {
		case 126:
			if _, err := io.ReadFull(ws.backendR, hdr[2:4]); err != nil {
				return
			}
			size, n = uint64(binary.BigEndian.Uint16(hdr[2:4])), 4
		case 127:
			if _, err := io.ReadFull(ws.backendR, hdr[2:10]); err != nil {
				return
			}
			size, n = binary.BigEndian.Uint64(hdr[2:10]), 10
		}
		if hdr[1]&0x80 != 0 { // masked (a server should not, but pass it on)
			if _, err := io.ReadFull(ws.backendR, hdr[n:n+4]); err != nil {
				return
			}
			n += 4
		}
		ws.wmu <- struct{}{}
		if ws.isClosing() {
			<-ws.wmu
			return
		}
		_, err := ws.client.Write(hdr[:n])
		if err == nil {
			_, err = io.CopyN(ws.client, ws.backendR, int64(size))
		}
		<-ws.wmu
		if err != nil {
			return
		}
	}
}

func (ws *wsConn) isClosing() bool {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	return ws.closing
}

// wsGoingAway is a close frame with status 1001 (going away), unmasked as
// a server's frames are.
var wsGoingAway = []byte{0x88, 0x02, 0x03, 0xe9}

// Drain sends the client a close frame 1001 between two frames and ends
// the connection to the endpoint; run then waits for the client to close.
// When a frame takes longer than wsCloseWait to pass, the connections are
// closed without one.
func (ws *wsConn) Drain() {
	select {
	case ws.wmu <- struct{}{}:
	case <-time.After(wsCloseWait):
		ws.client.Close()
		ws.backend.Close()
		return
	}
	ws.mu.Lock()
	already := ws.closing
	ws.closing = true
	ws.mu.Unlock()
	if !already {
		ws.client.SetWriteDeadline(time.Now().Add(wsCloseWait))
		if _, err := ws.client.Write(wsGoingAway); err != nil && !errors.Is(err, net.ErrClosed) {
			ws.client.Close()
		}
	}
	<-ws.wmu
	ws.backend.Close()
}

package router_test

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
)

// wsUpstream is a WebSocket echo server on 127.0.0.1: each frame a client
// sends comes back, prefixed with the server's name for text frames; a
// close frame is answered with a close frame and the connection closed.
// A request to /forbidden gets 403.
type wsUpstream struct {
	name string
	addr netip.AddrPort
	open atomic.Int64
	hits atomic.Int64
}

func newWSUpstream(t *testing.T, name string) *wsUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &wsUpstream{name: name, addr: netip.MustParseAddrPort(ln.Addr().String())}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		u.hits.Add(1)
		if req.URL.Path == "/forbidden" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		if !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "want websocket", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		u.open.Add(1)
		defer u.open.Add(-1)
		fmt.Fprintf(brw, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\nX-Upstream: %s\r\n\r\n", wsAccept(req.Header.Get("Sec-WebSocket-Key")), name)
		brw.Flush()
		for {
			op, payload, err := readFrame(brw.Reader)
			if err != nil {
				return
			}
			if op == 0x8 {
				writeFrame(c, 0x8, payload, false)
				return
			}
			if op == 0x1 {
				payload = append([]byte(name+": "), payload...)
			}
			if writeFrame(c, op, payload, false) != nil {
				return
			}
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return u
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// readFrame reads one frame (unmasking it when masked).
func readFrame(r io.Reader) (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	var mask [4]byte
	masked := h[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(r, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range p {
			p[i] ^= mask[i%4]
		}
	}
	return h[0] & 0x0f, p, nil
}

// writeFrame writes one final frame; clients mask theirs.
func writeFrame(w io.Writer, op byte, p []byte, mask bool) error {
	b := []byte{0x80 | op}
	m := byte(0)
	if mask {
		m = 0x80
	}
	switch {
	case len(p) < 126:
		b = append(b, m|byte(len(p)))
	case len(p) < 1<<16:
		b = append(b, m|126, byte(len(p)>>8), byte(len(p)))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
	}
	if mask {
		key := [4]byte{1, 2, 3, 4}
		b = append(b, key[:]...)
		for i, c := range p {
			b = append(b, c^key[i%4])
		}
	} else {
		b = append(b, p...)
	}
	_, err := w.Write(b)
	return err
}

// wsClient is a WebSocket client connection through the router.
type wsClient struct {
	c    net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// dialWS sends a WebSocket handshake for host and path to the router at
// base (http://addr) and returns the connection and the answer.
func dialWS(t *testing.T, base, host, path, upgrade string) *wsClient {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive, Upgrade\r\nUpgrade: %s\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, upgrade)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &wsClient{c: c, br: br, resp: resp}
}

func (w *wsClient) echo(t *testing.T, msg string) string {
	t.Helper()
	w.c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(w.c, 0x1, []byte(msg), true); err != nil {
		t.Fatalf("send %q: %v", msg, err)
	}
	op, p, err := readFrame(w.br)
	if err != nil || op != 0x1 {
		t.Fatalf("echo of %q: op %d %q %v", msg, op, p, err)
	}
	return string(p)
}

// TestWebSocketSurvivesChangesAndDrainsWith1001: a WebSocket through the
// router keeps working across 100 changes of other routes and of its own
// route's other endpoints; once its endpoint leaves the table, it is kept
// (and counted in flight, so WaitDrained waits) until the drain deadline,
// then the client gets a close frame with status 1001 and the connection
// ends with a FIN, not a reset.
func TestWebSocketSurvivesChangesAndDrainsWith1001(t *testing.T) {
	t.Parallel() // mostly waiting: deadlines and spaced requests
	ws1, ws2 := newWSUpstream(t, "ws1"), newWSUpstream(t, "ws2")
	const drain = 500 * time.Millisecond
	r := router.New(router.Options{DrainTimeout: drain})
	base := serveRouter(t, r)
	other := newUpstream(t, "other")
	apply(t, r, router.OneBackend("p/ws", "ws.test", "", ws1.addr.String()))

	cl := dialWS(t, base, "ws.test", "/chat", "websocket")
	if cl.resp.StatusCode != 101 || cl.resp.Header.Get("X-Upstream") != "ws1" || cl.resp.Header.Get("Sec-WebSocket-Accept") != wsAccept("dGhlIHNhbXBsZSBub25jZQ==") {
		t.Fatalf("handshake: %d %v", cl.resp.StatusCode, cl.resp.Header)
	}
	for i := range 100 {
		routes := []router.RouteConfig{router.OneBackend("p/ws", "ws.test", "", ws1.addr.String())}
		if i%2 == 1 {
			routes[0] = router.OneBackend("p/ws", "ws.test", "", ws1.addr.String(), ws2.addr.String())
		}
		for j := range i%7 + 1 {
			routes = append(routes, router.OneBackend(fmt.Sprintf("p/o%d", j), fmt.Sprintf("o%d-%d.test", j, i), "", other.addr.String()))
		}
		apply(t, r, routes...)
		if got, want := cl.echo(t, fmt.Sprintf("m%d", i)), fmt.Sprintf("ws1: m%d", i); got != want {
			t.Fatalf("after change %d: echo %q, want %q", i, got, want)
		}
	}

	left := time.Now()
	apply(t, r, router.OneBackend("p/ws", "ws.test", "", ws2.addr.String()))
	// Still in flight, and still working, before the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err := r.WaitDrained(ctx, ws1.addr)
	cancel()
	if want := fmt.Sprintf("router: endpoint %s still has 1 requests in flight: context deadline exceeded", ws1.addr); err == nil || err.Error() != want {
		t.Fatalf("WaitDrained with a WebSocket open = %v, want %q", err, want)
	}
	if got := cl.echo(t, "still"); got != "ws1: still" {
		t.Fatalf("echo while draining: %q", got)
	}
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	op, p, err := readFrame(cl.br)
	if err != nil || op != 0x8 || len(p) < 2 || binary.BigEndian.Uint16(p) != 1001 {
		t.Fatalf("after the drain deadline: op %d payload %v err %v, want a close frame 1001", op, p, err)
	}
	if since := time.Since(left); since < drain {
		t.Errorf("closed %s after the endpoint left, before the %s deadline", since, drain)
	}
	// Answer the close as a client does; the router then ends the TCP
	// connection cleanly.
	writeFrame(cl.c, 0x8, p, true)
	if n, err := cl.br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %d bytes, err %v; want EOF (not a reset: %v)", n, err, errors.Is(err, syscall.ECONNRESET))
	}
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitDrained(dctx, ws1.addr); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the endpoint's WebSocket to close", func() bool { return ws1.open.Load() == 0 })

	// New WebSockets go to the endpoint in the table.
	if c2 := dialWS(t, base, "ws.test", "/chat", "websocket"); c2.resp.StatusCode != 101 || c2.echo(t, "hi") != "ws2: hi" {
		t.Fatalf("new WebSocket: %d", c2.resp.StatusCode)
	}
}

// TestUpgradeRules: an upgrade other than websocket is refused with 400
// and the connection closed, before any backend sees it; a WebSocket
// handshake the endpoint answers with something other than 101 is passed
// on and the connection closed.
func TestUpgradeRules(t *testing.T) {
	ws := newWSUpstream(t, "ws")
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/ws", "ws.test", "", ws.addr.String()))
	for _, tc := range []struct {
		path, upgrade string
		want          int
	}{
		{"/", "h2c", 400},
		{"/", "TLS/1.2", 400},
		{"/forbidden", "websocket", 403},
	} {
		cl := dialWS(t, base, "ws.test", tc.path, tc.upgrade)
		io.Copy(io.Discard, cl.resp.Body)
		if cl.resp.StatusCode != tc.want || !cl.resp.Close {
			t.Errorf("upgrade %q to %s: status %d, close %v; want %d and the connection closed", tc.upgrade, tc.path, cl.resp.StatusCode, cl.resp.Close, tc.want)
		}
		cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := cl.br.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Errorf("upgrade %q: connection still open after the answer (%d, %v)", tc.upgrade, n, err)
		}
	}
	if n := ws.hits.Load(); n != 1 {
		t.Errorf("the endpoint saw %d requests, want 1 (the refused upgrades never reach it)", n)
	}
}

// TestGoingAwayClosesWebSockets: on shutdown every WebSocket gets a close
// frame 1001 at once, whatever its endpoint.
func TestGoingAwayClosesWebSockets(t *testing.T) {
	ws := newWSUpstream(t, "ws")
	r := router.New(router.Options{DrainTimeout: time.Hour})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/ws", "ws.test", "", ws.addr.String()))
	cl := dialWS(t, base, "ws.test", "/", "websocket")
	if got := cl.echo(t, "a"); got != "ws: a" {
		t.Fatalf("echo %q", got)
	}
	r.GoingAway()
	cl.c.SetDeadline(time.Now().Add(10 * time.Second))
	op, p, err := readFrame(cl.br)
	if err != nil || op != 0x8 || binary.BigEndian.Uint16(p) != 1001 {
		t.Fatalf("after GoingAway: op %d payload %v err %v, want a close frame 1001", op, p, err)
	}
	writeFrame(cl.c, 0x8, p, true)
	if n, err := cl.br.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("after the close frame: %d bytes, err %v; want EOF", n, err)
	}
}

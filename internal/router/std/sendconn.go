package std

import (
	"net"
	"sync"
	"time"
)

// DefaultSendTimeout bounds each write of an answer to a client: a client
// that takes none of it for that long (a slow reader, or one that never
// reads) is cut off, as nginx's send_timeout and HAProxy's timeout client
// do. It bounds a write, not a response, so long downloads and streams
// that a client keeps reading pass.
const DefaultSendTimeout = 60 * time.Second

// sendConn gives each write a deadline of timeout from its start. The
// deadline is renewed when less than half of it is left, so that a write
// which makes no progress fails after between timeout/2 and timeout, and a
// connection answering many requests changes its timer once every
// timeout/2, not once a write. A deadline someone else sets (SetDeadline,
// SetWriteDeadline: net/http, a WebSocket close) stands until cleared.
type sendConn struct {
	net.Conn
	timeout time.Duration

	mu       sync.Mutex
	applied  time.Time // the deadline this conn set
	external bool      // a deadline set from outside stands
}

// SendTimeoutConn returns c with each write bounded by timeout (see
// DefaultSendTimeout); c itself when timeout is not positive or c has
// such a bound already.
func SendTimeoutConn(c net.Conn, timeout time.Duration) net.Conn {
	if _, ok := c.(*sendConn); ok || timeout <= 0 {
		return c
	}
	return &sendConn{Conn: c, timeout: timeout}
}

func (c *sendConn) Write(p []byte) (int, error) {
	now := time.Now()
	c.mu.Lock()
	if !c.external && c.applied.Sub(now) < c.timeout/2 {
		c.applied = now.Add(c.timeout)
		c.Conn.SetWriteDeadline(c.applied)
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *sendConn) SetDeadline(t time.Time) error {
	c.setExternal(t)
	return c.Conn.SetDeadline(t)
}

func (c *sendConn) SetWriteDeadline(t time.Time) error {
	c.setExternal(t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *sendConn) setExternal(t time.Time) {
	c.mu.Lock()
	c.external, c.applied = !t.IsZero(), time.Time{}
	c.mu.Unlock()
}

// NetConn is the connection underneath, for descriptor access (the fast
// engine's raw reads and writes, which bypass the deadline when the socket
// takes the bytes at once and fall back to Write when it does not).
func (c *sendConn) NetConn() net.Conn { return c.Conn }

// CloseWrite half-closes the connection underneath.
func (c *sendConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// sendListener bounds the writes of the connections it accepts.
type sendListener struct {
	net.Listener
	timeout time.Duration
}

func (l sendListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return SendTimeoutConn(c, l.timeout), nil
}

package std

import (
	"bytes"
	"crypto/tls"
	"net"
	"strconv"
	"sync"
)

// frameConn follows the HTTP/1.1 message framing of what a client sends
// and judges each request head on the bytes as received, before net/http
// parses them. net/http accepts, and then hides from a handler, framing
// that request smuggling relies on: Content-Length together with
// Transfer-Encoding (it drops the Content-Length), obs-fold (it joins the
// lines) and Transfer-Encoding on HTTP/1.0 (it ignores it, leaving the
// chunks on the connection as the next "request"). RFC 9112 lets a server
// refuse all three; the frontend answers 400 and closes.
//
// Heads are counted in order; net/http serves the requests of a
// connection one at a time and in order, so the handler's n-th call on a
// connection is the n-th head (net/http answers "OPTIONS *" itself, so
// those heads are not counted). Once a head is refused or after an
// Upgrade, the bytes are no longer followed.
type frameConn struct {
	net.Conn
	maxLine int
	tls     *tls.ConnectionState // of a TLS connection the fast engine handed over

	mu      sync.Mutex
	state   frameState
	line    []byte
	long    bool  // the current line outgrew maxLine: net/http refuses it
	remain  int64 // body or chunk bytes still to come
	head    headInfo
	heads   int    // heads completed and counted
	bad     int    // the first refused head (1-based), 0 when none
	reason  string // why head bad was refused
	stopped bool   // no longer following: after an Upgrade or a framing error
	served  int    // requests handed to the handler
}

type frameState uint8

const (
	stRequestLine frameState = iota
	stHeader
	stBody
	stChunkSize
	stChunkData
	stChunkEnd
	stTrailer
)

type headInfo struct {
	http10, options bool
	upgrade         bool
	cl              int64 // -1 when absent
	te              bool
	reason          string
}

// Read also removes the empty lines a client sends before a request line,
// which a server ignores (RFC 9112, section 2.2) and net/http would refuse
// as a malformed request.
func (c *frameConn) Read(p []byte) (int, error) {
	for {
		n, err := c.Conn.Read(p)
		if n > 0 {
			c.mu.Lock()
			n = c.scan(p[:n])
			c.mu.Unlock()
		}
		if n > 0 || err != nil || len(p) == 0 {
			return n, err
		}
	}
}

// emptyLines is the length of the complete empty lines (CRLF or LF) at
// the start of b.
func emptyLines(b []byte) int {
	k := 0
	for {
		switch {
		case k < len(b) && b[k] == '\n':
			k++
		case k+1 < len(b) && b[k] == '\r' && b[k+1] == '\n':
			k += 2
		default:
			return k
		}
	}
}

// CloseWrite lets net/http half-close before closing, as it does on a
// bare TCP connection, so that its last response is not lost to a reset.
func (c *frameConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// verdict counts one request handed to the handler and returns why it must
// be refused, or "".
func (c *frameConn) verdict() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.served++
	if c.bad != 0 && c.served >= c.bad {
		return c.reason
	}
	return ""
}

// scan follows p and returns its length once empty lines before a request
// line are cut out of it.
func (c *frameConn) scan(p []byte) int {
	n, off := len(p), 0
	for off < n && !c.stopped {
		b := p[off:n]
		if c.state == stRequestLine && len(c.line) == 0 && !c.long {
			if k := emptyLines(b); k > 0 {
				copy(p[off:], p[off+k:n])
				n -= k
				continue
			}
		}
		switch c.state {
		case stBody, stChunkData:
			k := int64(len(b))
			if k > c.remain {
				k = c.remain
			}
			c.remain -= k
			off += int(k)
			if c.remain == 0 {
				if c.state == stBody {
					c.state = stRequestLine
				} else {
					c.state = stChunkEnd
				}
			}
			continue
		}
		i := bytes.IndexByte(b, '\n')
		part := b
		if i >= 0 {
			part = b[:i]
		}
		if len(c.line)+len(part) > c.maxLine {
			c.long = true
		} else {
			c.line = append(c.line, part...)
		}
		if i < 0 {
			return n
		}
		off += i + 1
		line := bytes.TrimSuffix(c.line, []byte("\r"))
		long := c.long
		c.line, c.long = c.line[:0], false
		if long {
			c.stop("") // net/http refuses it and closes
			continue
		}
		c.endLine(line)
	}
	return n
}

func (c *frameConn) stop(reason string) {
	c.stopped = true
	if reason != "" && c.bad == 0 {
		c.bad, c.reason = c.heads+1, reason
	}
}

func (c *frameConn) endLine(line []byte) {
	switch c.state {
	case stRequestLine:
		if c.heads == 0 && string(line) == "PRI * HTTP/2.0" {
			// The h2c preface (prior knowledge): HTTP/2 frames follow,
			// which net/http's HTTP/2 server checks itself.
			c.stop("")
			return
		}
		c.head = headInfo{cl: -1,
			http10:  bytes.HasSuffix(line, []byte(" HTTP/1.0")),
			options: bytes.HasPrefix(line, []byte("OPTIONS * ")),
		}
		c.state = stHeader
	case stHeader:
		if len(line) == 0 {
			c.endHead()
			return
		}
		c.headerLine(line)
	case stChunkSize:
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, err := strconv.ParseUint(string(bytes.TrimRight(line, " \t")), 16, 63)
		if err != nil {
			c.stop("") // net/http's chunked reader fails on it too
			return
		}
		if size == 0 {
			c.state = stTrailer
			return
		}
		c.remain, c.state = int64(size), stChunkData
	case stChunkEnd:
		if len(line) != 0 {
			c.stop("")
			return
		}
		c.state = stChunkSize
	case stTrailer:
		if len(line) == 0 {
			c.state = stRequestLine
		}
	}
}

func (c *frameConn) headerLine(line []byte) {
	h := &c.head
	if h.reason != "" {
		return
	}
	if line[0] == ' ' || line[0] == '\t' {
		h.reason = "obsolete line folding in the header section"
		return
	}
	colon := bytes.IndexByte(line, ':')
	if colon < 0 {
		return // net/http refuses it
	}
	name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
	switch {
	case len(name) == 0:
		h.reason = "empty header name"
	case name[len(name)-1] == ' ' || name[len(name)-1] == '\t':
		h.reason = "whitespace before the colon of a header"
	case bytes.EqualFold(name, []byte("Content-Length")):
		n, err := strconv.ParseInt(string(value), 10, 64)
		switch {
		case h.cl >= 0:
			h.reason = "more than one Content-Length"
		case err != nil || n < 0 || value[0] == '+':
			h.reason = "invalid Content-Length"
		default:
			h.cl = n
		}
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		switch {
		case h.te:
			h.reason = "more than one Transfer-Encoding"
		case !bytes.EqualFold(value, []byte("chunked")):
			h.reason = "Transfer-Encoding other than chunked"
		default:
			h.te = true
		}
	case bytes.EqualFold(name, []byte("Upgrade")):
		h.upgrade = true
	}
}

func (c *frameConn) endHead() {
	h := c.head
	switch {
	case h.reason == "" && h.te && h.cl >= 0:
		h.reason = "both Content-Length and Transfer-Encoding"
	case h.reason == "" && h.te && h.http10:
		h.reason = "Transfer-Encoding in an HTTP/1.0 request"
	}
	if h.reason != "" {
		c.stop(h.reason)
		return
	}
	if !h.options {
		c.heads++
	}
	switch {
	case h.upgrade:
		c.stop("") // the bytes that follow may be another protocol
	case h.te:
		c.state = stChunkSize
	case h.cl > 0:
		c.remain, c.state = h.cl, stBody
	default:
		c.state = stRequestLine
	}
}

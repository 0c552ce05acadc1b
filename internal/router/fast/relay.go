package fast

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/router"
)

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
func (f *fastFront) relay(uc *upConn, h respHead, q *fastReq, bw *bufio.Writer, closeClient bool, sticky string, rt *router.Route, ep *router.Endpoint, start time.Time) (status int, upKeep, clientOK bool) {
	timed := rt.Timeouts.Response > 0
	head := q.method.of(q.buf)
	for first := true; ; first = false {
		if !first {
			var err error
			if h, err = readHead(uc); err != nil {
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
			c := &http.Cookie{Name: rt.Affinity.CookieName, Value: sticky, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
			if rt.Affinity.TTL > 0 {
				c.MaxAge = int(rt.Affinity.TTL / time.Second)
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
		case bodyChunked, bodyToClose:
			// A stream (SSE, chunked) may last: its endpoint's drain
			// deadline (or GoingAway) ends it, with a last chunk.
			st := &fastStream{c: uc.c}
			untrack := ep.Track(st)
			if framing == bodyChunked {
				uerr, cerr = copyChunked(bw, uc.br)
			} else {
				uerr, cerr = copyToClose(bw, uc.br)
			}
			untrack()
			if uerr != nil && st.drained.Load() {
				uerr, upKeep = nil, false
				if cerr == nil {
					_, cerr = bw.WriteString("0\r\n\r\n")
				}
			}
		}
		if uerr != nil {
			f.log.Debug("upstream response body failed", "status", status, "err", uerr)
			return status, false, false // the client sees a cut answer and the connection closed
		}
		// A client gone mid-answer leaves the rest of it unread on uc.
		return status, upKeep && cerr == nil, cerr == nil
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

// readHead peeks at the response head at the front of uc's reader, which
// it swaps for a larger one (up to upMaxHead) when the head outgrows it.
func readHead(uc *upConn) (respHead, error) {
	var h respHead
	br := uc.br
	n := max(1, br.Buffered())
	var p []byte
	for {
		var err error
		if p, err = br.Peek(n); err == nil {
			p, _ = br.Peek(br.Buffered()) // all that came, not just n
		}
		if end := respHeadEnd(p); end > 0 {
			p = p[:end]
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) && br.Size() < upMaxHead {
			held := bytes.Clone(p)
			br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(held), uc), upMaxHead)
			uc.br = br
			n = len(held)
			continue
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				err = fmt.Errorf("response head larger than %d bytes", upMaxHead)
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
		size := bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(size, ';'); i >= 0 {
			size = size[:i] // extensions are hop-by-hop
		}
		n, err := strconv.ParseUint(string(bytes.TrimRight(size, " \t")), 16, 62)
		if err != nil {
			return fmt.Errorf("malformed chunk line %q", line), nil
		}
		if n == 0 {
			break
		}
		// Re-chunked piece by piece as it arrives, so that the answer can
		// be ended cleanly after any piece (see fastStream).
		for rem := int64(n); rem > 0; {
			if br.Buffered() == 0 {
				if cerr = bw.Flush(); cerr != nil {
					return nil, cerr
				}
				if _, uerr = br.Peek(1); uerr != nil {
					return uerr, nil
				}
			}
			p, _ := br.Peek(int(min(int64(br.Buffered()), rem)))
			bw.Write(strconv.AppendUint(bw.AvailableBuffer(), uint64(len(p)), 16))
			bw.WriteString("\r\n")
			bw.Write(p)
			if _, cerr = bw.WriteString("\r\n"); cerr != nil {
				return nil, cerr
			}
			br.Discard(len(p))
			rem -= int64(len(p))
		}
		if crlf, err := br.ReadSlice('\n'); err != nil || len(bytes.TrimRight(crlf, "\r\n")) != 0 {
			return fmt.Errorf("chunk data not followed by CRLF: %q %v", crlf, err), nil
		}
	}
	bw.WriteString("0\r\n")
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

// fastStream is a streamed answer in progress, tracked by its endpoint:
// drain closes the upstream connection, and the copy then ends the answer
// to the client with a last chunk rather than a cut connection.
type fastStream struct {
	c       net.Conn
	drained atomic.Bool
}

func (s *fastStream) Drain() {
	s.drained.Store(true)
	s.c.Close()
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

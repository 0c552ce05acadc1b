package fast

import (
	"bytes"
	"net/url"
	"strings"

	"slipway.dev/slipway/internal/router"
)

// fastMaxHeaders bounds the header lines of a request the fast engine
// serves; a request with more goes to the standard path.
const fastMaxHeaders = 64

// span is a slice of a connection's read buffer, as offsets so that it
// survives the buffer growing.
type span struct{ lo, hi int32 }

func (s span) of(b []byte) []byte { return b[s.lo:s.hi] }

type fastHeader struct {
	name, value span
	kind        hdrKind
}

// hdrKind classifies the header names the fast engine acts on.
type hdrKind uint8

const (
	hdrOther hdrKind = iota
	hdrHost
	hdrContentLength
	hdrConnection
	hdrCookie
	hdrTE
	hdrHop // hop-by-hop: never forwarded (Keep-Alive, Proxy-*, Trailer)
	hdrXFF
	hdrXFHost
	hdrXFProto
	hdrForwarded
	hdrXRealIP
	hdrXFPort
	hdrStripped // the rest of router.ForwardingHeaders: only a trusted proxy's are passed on
	hdrHandOff  // Transfer-Encoding, Upgrade, Expect: the standard path's
)

// forwardingKind reports whether k is one of router.ForwardingHeaders.
func forwardingKind(k hdrKind) bool { return k >= hdrXFF && k <= hdrStripped }

// fastReq is one request head as the fast engine parsed it, in place in
// the connection's buffer.
type fastReq struct {
	buf     []byte
	headLen int
	method  span
	target  span
	path    []byte // target up to '?' in canonical form (router.CanonicalPath)
	rawPath int    // the length of the target's path as sent
	canon   bool   // path is not the target's own bytes: the upstream gets it
	pathBuf []byte // holds path when canon, kept from one request to the next
	host    span
	cl      int64 // -1: no Content-Length
	close   bool  // the client sent Connection: close
	connHdr bool  // a Connection header lists other names
	te      bool  // TE lists "trailers"
	headers [fastMaxHeaders]fastHeader
	nh      int
}

var hdrKinds = map[string]hdrKind{
	"host":                hdrHost,
	"content-length":      hdrContentLength,
	"connection":          hdrConnection,
	"cookie":              hdrCookie,
	"te":                  hdrTE,
	"keep-alive":          hdrHop,
	"proxy-connection":    hdrHop,
	"proxy-authenticate":  hdrHop,
	"proxy-authorization": hdrHop,
	"trailer":             hdrHop,
	"x-forwarded-for":     hdrXFF,
	"x-forwarded-host":    hdrXFHost,
	"x-forwarded-proto":   hdrXFProto,
	"forwarded":           hdrForwarded,
	"transfer-encoding":   hdrHandOff,
	"upgrade":             hdrHandOff,
	"expect":              hdrHandOff,
	"http2-settings":      hdrHandOff,
}

// maxKindName is the longest name headerKind looks up.
const maxKindName = 24

func init() {
	for _, h := range router.ForwardingHeaders {
		name := strings.ToLower(h.Name)
		if len(name) > maxKindName {
			panic("fast: maxKindName is too small for " + h.Name)
		}
		if _, ok := hdrKinds[name]; ok {
			continue
		}
		switch name {
		case "x-real-ip":
			hdrKinds[name] = hdrXRealIP
		case "x-forwarded-port":
			hdrKinds[name] = hdrXFPort
		default:
			hdrKinds[name] = hdrStripped
		}
	}
}

// headerKind looks name up case-insensitively without allocating: names
// the engine acts on are short, so they are lowered into a stack array.
// A name spelt with '_' for '-' is a forwarding header to CGI and WSGI
// servers (see router.LookupForwarding), so it is stripped as one, and
// nothing else.
func headerKind(name []byte) hdrKind {
	if len(name) > maxKindName {
		return hdrOther
	}
	var low [maxKindName]byte
	underscore := false
	for i, c := range name {
		switch {
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c, underscore = '-', true
		}
		low[i] = c
	}
	k := hdrKinds[string(low[:len(name)])]
	if underscore {
		if forwardingKind(k) {
			return hdrStripped
		}
		return hdrOther
	}
	return k
}

// tchar: the bytes of a token (RFC 9110, section 5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return
}()

// hostByte: the bytes the fast engine takes in a Host header (a DNS name
// or an IP literal, with a port); anything else, valid or not, goes to the
// standard path.
var hostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range ".-:[]_" {
		t[c] = true
	}
	return
}()

// headEnd returns the length of the request head at the start of b (up to
// and including the empty line), 0 when b does not hold all of it yet, and
// -1 when the head is not in the strict form the fast engine serves (a
// line ending in a bare LF, or leading empty lines): the standard path
// then judges it.
func headEnd(b []byte, from int) int {
	if len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		return -1
	}
	for i := from; i < len(b); {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return 0
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return -1
		}
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1
		}
		i++
	}
	return 0
}

// parse reads the head of length n at the start of buf. It returns false
// when the request is not one the fast engine serves as it is: anything
// unusual (see the hdrHandOff names, HTTP/1.0, absolute or "*" targets,
// escapes that do not decode, control bytes, duplicate framing headers)
// goes to the standard path, which serves it or refuses it.
func (q *fastReq) parse(buf []byte, n int) bool {
	pb := q.pathBuf
	*q = fastReq{buf: buf, headLen: n, cl: -1, pathBuf: pb[:0]}
	line, rest := cutLine(buf[:n], 0)
	// Request line: METHOD SP /target SP HTTP/1.1
	b := line.of(buf)
	i := 0
	for i < len(b) && 'A' <= b[i] && b[i] <= 'Z' {
		i++
	}
	if i == 0 || i > 16 || i >= len(b) || b[i] != ' ' {
		return false
	}
	q.method = span{line.lo, line.lo + int32(i)}
	i++
	start := i
	if i >= len(b) || b[i] != '/' {
		return false
	}
	for i < len(b) && b[i] > 0x20 && b[i] < 0x7f {
		i++
	}
	q.target = span{line.lo + int32(start), line.lo + int32(i)}
	if bytes.IndexByte(q.target.of(buf), '#') >= 0 {
		return false // a fragment has no place in a request: net/http's to judge
	}
	if string(b[i:]) != " HTTP/1.1" {
		return false
	}
	if string(q.method.of(buf)) == "CONNECT" || string(q.method.of(buf)) == "PRI" {
		return false
	}
	hosts := 0
	for {
		line, rest = cutLine(buf[:n], rest)
		if line.hi == line.lo {
			break
		}
		b := line.of(buf)
		c := 0
		for c < len(b) && tchar[b[c]] {
			c++
		}
		if c == 0 || c >= len(b) || b[c] != ':' {
			return false
		}
		v0, v1 := c+1, len(b)
		for v0 < v1 && (b[v0] == ' ' || b[v0] == '\t') {
			v0++
		}
		for v1 > v0 && (b[v1-1] == ' ' || b[v1-1] == '\t') {
			v1--
		}
		for _, ch := range b[v0:v1] {
			if ch < 0x20 && ch != '\t' || ch == 0x7f {
				return false
			}
		}
		if q.nh == fastMaxHeaders {
			return false
		}
		h := fastHeader{name: span{line.lo, line.lo + int32(c)}, value: span{line.lo + int32(v0), line.lo + int32(v1)}, kind: headerKind(b[:c])}
		v := b[v0:v1]
		switch h.kind {
		case hdrHandOff:
			return false
		case hdrHost:
			hosts++
			if len(v) == 0 {
				return false
			}
			for _, ch := range v {
				if !hostByte[ch] {
					return false
				}
			}
			if !router.ValidHostPort(v) {
				return false // the standard engine answers 400
			}
			q.host = h.value
		case hdrContentLength:
			if q.cl >= 0 || len(v) == 0 || len(v) > 15 {
				return false
			}
			var cl int64
			for _, ch := range v {
				if ch < '0' || ch > '9' {
					return false
				}
				cl = cl*10 + int64(ch-'0')
			}
			q.cl = cl
		case hdrConnection:
			forEachToken(v, func(tok []byte) {
				switch {
				case asciiEqualFold(tok, "close"):
					q.close = true
				case asciiEqualFold(tok, "keep-alive"):
				default:
					q.connHdr = true
				}
			})
		case hdrTE:
			forEachToken(v, func(tok []byte) {
				if asciiEqualFold(tok, "trailers") {
					q.te = true
				}
			})
		}
		q.headers[q.nh] = h
		q.nh++
	}
	if hosts != 1 {
		return false
	}
	t := q.target.of(buf)
	p := t
	if k := bytes.IndexByte(t, '?'); k >= 0 {
		p = t[:k]
	}
	q.rawPath = len(p)
	if !router.IsCanonicalPath(p) {
		var err error
		if q.pathBuf, err = router.AppendCanonicalPath(q.pathBuf, p); err != nil {
			return false // the standard engine answers 400
		}
		p, q.canon = q.pathBuf, true
	}
	q.path = p
	return true
}

// cutLine returns the line starting at off in b (without its CRLF) and the
// offset of the next. b ends with an empty line (headEnd checked it).
func cutLine(b []byte, off int) (span, int) {
	j := bytes.IndexByte(b[off:], '\n')
	return span{int32(off), int32(off + j - 1)}, off + j + 1
}

// forEachToken calls fn with each element of a comma-separated list.
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			fn(tok)
		}
	}
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// listsName reports whether the client's Connection headers name h.
func (q *fastReq) listsName(name []byte) bool {
	found := false
	for i := 0; i < q.nh && !found; i++ {
		if q.headers[i].kind != hdrConnection {
			continue
		}
		forEachToken(q.headers[i].value.of(q.buf), func(tok []byte) {
			if bytes.EqualFold(tok, name) {
				found = true
			}
		})
	}
	return found
}

// canonicalHostBytes is canonicalHost into dst (lowercase, without port,
// brackets or a trailing dot).
func canonicalHostBytes(dst, h []byte) []byte {
	if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h[i:], ']') < 0 {
		h = h[:i]
	}
	h = bytes.TrimSuffix(h, []byte("]"))
	h = bytes.TrimPrefix(h, []byte("["))
	h = bytes.TrimSuffix(h, []byte("."))
	dst = dst[:0]
	for _, c := range h {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// The request view for selection: values are converted only when a route's
// rules ask for them.

func (q *fastReq) HeaderValues(name string) []string {
	var out []string
	for i := 0; i < q.nh; i++ {
		h := q.headers[i]
		if strings.EqualFold(string(h.name.of(q.buf)), name) {
			out = append(out, string(h.value.of(q.buf)))
		}
	}
	return out
}

func (q *fastReq) CookieValue(name string) (string, bool) {
	var val string
	found := false
	q.eachCookie(name, func(v string) bool {
		val, found = v, true
		return false
	})
	return val, found
}

func (q *fastReq) CookieValues(name string) []string {
	var out []string
	q.eachCookie(name, func(v string) bool {
		out = append(out, v)
		return true
	})
	return out
}

// eachCookie calls fn with the value of each valid cookie name in the
// Cookie headers (quotes removed), as net/http's reading of them, until fn
// returns false.
func (q *fastReq) eachCookie(name string, fn func(string) bool) {
	for i := 0; i < q.nh; i++ {
		if q.headers[i].kind != hdrCookie {
			continue
		}
		line := q.headers[i].value.of(q.buf)
		for len(line) > 0 {
			var part []byte
			if k := bytes.IndexByte(line, ';'); k >= 0 {
				part, line = line[:k], line[k+1:]
			} else {
				part, line = line, nil
			}
			part = bytes.TrimSpace(part)
			n, v, ok := bytes.Cut(part, []byte("="))
			if !ok || string(n) != name {
				continue
			}
			if len(v) > 1 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			valid := true
			for _, c := range v {
				if c < 0x20 || c >= 0x7f || c == '"' || c == ';' || c == '\\' {
					valid = false
				}
			}
			if valid && !fn(string(v)) {
				return
			}
		}
	}
}

func (q *fastReq) QueryValues(name string) []string {
	t := q.target.of(q.buf)
	k := bytes.IndexByte(t, '?')
	if k < 0 {
		return nil
	}
	vals, _ := url.ParseQuery(string(t[k+1:]))
	return vals[name]
}

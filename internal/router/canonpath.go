package router

import "errors"

// ErrPathRefused is why CanonicalPath refuses a path: the engines answer
// it with 400.
var ErrPathRefused = errors.New("an encoded slash (%2F, %5C), a backslash, a control byte, a space or an invalid escape in the path")

// The canonical form of a request path, which routes match and which is
// forwarded to the app in place of the one the client sent:
//
//   - escapes of unreserved characters (ALPHA DIGIT - . _ ~) are decoded
//     (/%70ublic is /public), other escapes are kept with uppercase hex,
//     and bytes above 0x7E are escaped (RFC 3986, section 6.2.2);
//   - dot segments are removed (RFC 3986, section 5.2.4), after that
//     decoding (/a/%2e%2e/b is /b); empty segments are kept, as the RFC
//     does (path.Clean would merge them);
//   - an encoded slash or backslash (%2F, %5C), a backslash, a control
//     byte or a space, and an escape that is not two hex digits are
//     refused (ErrPathRefused), as Envoy's REJECT_REQUEST does: what they
//     mean differs between apps.
//
// It applies to paths that start with '/'; others ("*") are left alone.

// IsCanonicalPath is the fast check, without allocating: true when p is
// certainly in canonical form (no escape, no backslash, no byte outside
// 0x21-0x7E, no "." or ".." segment), which nearly every request is;
// false says AppendCanonicalPath must judge it.
func IsCanonicalPath[S hostOrPath](p S) bool {
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c <= 0x20 || c >= 0x7f || c == '%' || c == '\\' {
			return false
		}
		if c == '.' && i > 0 && p[i-1] == '/' {
			j := i + 1
			if j < len(p) && p[j] == '.' {
				j++
			}
			if j == len(p) || p[j] == '/' {
				return false
			}
		}
	}
	return true
}

// AppendCanonicalPath appends the canonical form of p (see IsCanonicalPath)
// to dst.
func AppendCanonicalPath[S hostOrPath](dst []byte, p S) ([]byte, error) {
	if len(p) == 0 || p[0] != '/' {
		return append(dst, p...), nil
	}
	base := len(dst)
	// Decode into dst first, then remove dot segments in place.
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c <= 0x20 || c == 0x7f || c == '\\':
			return dst[:base], ErrPathRefused
		case c >= 0x80:
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		case c == '%':
			if i+2 >= len(p) || unhex(p[i+1]) < 0 || unhex(p[i+2]) < 0 {
				return dst[:base], ErrPathRefused
			}
			v := byte(unhex(p[i+1])<<4 | unhex(p[i+2]))
			i += 2
			switch {
			case v == '/' || v == '\\':
				return dst[:base], ErrPathRefused
			case unreserved(v):
				dst = append(dst, v)
			default:
				dst = append(dst, '%', upperHex[v>>4], upperHex[v&15])
			}
		default:
			dst = append(dst, c)
		}
	}
	return removeDotSegments(dst, base), nil
}

// removeDotSegments removes the dot segments of the absolute path in
// b[base:], in place (RFC 3986, section 5.2.4, on whole segments).
func removeDotSegments(b []byte, base int) []byte {
	in := b[base:]
	out := base // b[base:out] is the output so far
	for r := 0; r < len(in); {
		// in[r] is '/': the segment runs to the next '/'.
		e := r + 1
		for e < len(in) && in[e] != '/' {
			e++
		}
		seg := in[r+1 : e]
		last := e == len(in)
		switch string(seg) {
		case ".":
			if last {
				b = append(b[:out], '/')
				out++
			}
		case "..":
			for out > base && b[out-1] != '/' {
				out--
			}
			if out > base {
				out-- // the '/' before the popped segment
			}
			if last {
				b = append(b[:out], '/')
				out++
			}
		default:
			// out never passes r (+base): copying forward is safe.
			out += copy(b[out:], in[r:e])
		}
		r = e
	}
	if out == base {
		b = append(b[:out], '/')
		out++
	}
	return b[:out]
}

// CanonicalPath is AppendCanonicalPath for a string, which it returns as
// is when it is canonical already.
func CanonicalPath(p string) (string, error) {
	if IsCanonicalPath(p) {
		return p, nil
	}
	b, err := AppendCanonicalPath(nil, p)
	return string(b), err
}

const upperHex = "0123456789ABCDEF"

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// ValidHostPort reports whether the port of a Host header, if it has one,
// is 1-5 digits up to 65535: "a.test:abc" and "a.test:" are refused (400).
func ValidHostPort[S hostOrPath](h S) bool {
	var port S
	if len(h) > 0 && h[0] == '[' {
		k := 0
		for k < len(h) && h[k] != ']' {
			k++
		}
		if k == len(h) {
			return false
		}
		if k+1 == len(h) {
			return true
		}
		if h[k+1] != ':' {
			return false
		}
		port = h[k+2:]
	} else {
		k := len(h) - 1
		for k >= 0 && h[k] != ':' {
			k--
		}
		if k < 0 {
			return true
		}
		port = h[k+1:]
	}
	if len(port) == 0 || len(port) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(port); i++ {
		if port[i] < '0' || port[i] > '9' {
			return false
		}
		n = n*10 + int(port[i]-'0')
	}
	return n <= 65535
}

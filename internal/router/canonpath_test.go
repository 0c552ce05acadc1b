package router_test

import (
	"fmt"
	"net/url"
	"path"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/router"
)

var canonicalCases = []struct{ in, want string }{
	{"/public", "/public"},
	{"/%70ublic", "/public"},
	{"/public/../admin", "/admin"},
	{"/public/%2e%2e/admin", "/admin"},
	{"/public/%2E./x", "/x"},
	{"/a/./b/", "/a/b/"},
	{"/a/b/.", "/a/b/"},
	{"/a/b/..", "/a/"},
	{"/..", "/"},
	{"/a//../b", "/a/b"},
	{"/a/...", "/a/..."},
	{"/caf%c3%a9", "/caf%C3%A9"},
	{"/caf\xc3\xa9", "/caf%C3%A9"},
	{"/a%20b", "/a%20b"},
	{"/public%2f..%2fadmin", "refused"},
	{"/a%5Cb", "refused"},
	{"/a\\b", "refused"},
	{"/a b", "refused"},
	{"/a%zz", "refused"},
	{"/a%2", "refused"},
}

func TestCanonicalPath(t *testing.T) {
	for _, tc := range canonicalCases {
		got, err := router.CanonicalPath(tc.in)
		if err != nil {
			got = "refused"
		}
		if got != tc.want {
			t.Errorf("CanonicalPath(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if ref, ok := referenceCanonical(tc.in); ok != (err == nil) || ok && ref != got {
			t.Errorf("reference(%q) = %q %v, CanonicalPath %q %v", tc.in, ref, ok, got, err)
		}
	}
}

// referenceCanonical is an independent normaliser: net/url to decode,
// path.Clean to remove dot segments, with its documented differences from
// RFC 3986 undone (it merges empty segments, which are kept here by a
// placeholder, and drops the trailing slash a final dot segment leaves).
func referenceCanonical(p string) (string, bool) {
	if strings.ContainsAny(p, "\\") {
		return "", false
	}
	for _, c := range []byte(p) {
		if c <= 0x20 || c == 0x7f {
			return "", false
		}
	}
	if !strings.HasPrefix(p, "/") {
		return p, true
	}
	segs := strings.Split(p[1:], "/")
	const empty = "\x00empty"
	for i, s := range segs {
		// Token by token: a triplet decodes (net/url) to an unreserved
		// character or stays a triplet in uppercase; a raw byte above
		// 0x7E becomes a triplet.
		var b strings.Builder
		for j := 0; j < len(s); j++ {
			if s[j] != '%' {
				if s[j] >= 0x80 {
					fmt.Fprintf(&b, "%%%02X", s[j])
				} else {
					b.WriteByte(s[j])
				}
				continue
			}
			if j+3 > len(s) {
				return "", false
			}
			dec, err := url.PathUnescape(s[j : j+3])
			if err != nil || dec == "/" || dec == "\\" {
				return "", false
			}
			if c := dec[0]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
				b.WriteByte(c)
			} else {
				b.WriteString(strings.ToUpper(s[j : j+3]))
			}
			j += 2
		}
		segs[i] = b.String()
		if segs[i] == "" {
			segs[i] = empty
		}
	}
	last := segs[len(segs)-1]
	out := path.Clean("/" + strings.Join(segs, "/"))
	if (last == "." || last == "..") && !strings.HasSuffix(out, "/") {
		out += "/"
	}
	return strings.ReplaceAll(out, empty, ""), true
}

func FuzzCanonicalPath(f *testing.F) {
	for _, tc := range canonicalCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		got, err := router.CanonicalPath(p)
		ref, ok := referenceCanonical(p)
		if ok != (err == nil) {
			t.Fatalf("%q: CanonicalPath %q %v, reference %q %v", p, got, err, ref, ok)
		}
		if err != nil {
			return
		}
		if got != ref {
			t.Fatalf("%q: CanonicalPath %q, reference %q", p, got, ref)
		}
		if router.IsCanonicalPath(p) && got != p {
			t.Fatalf("%q: IsCanonicalPath, but CanonicalPath gives %q", p, got)
		}
		if again, err := router.CanonicalPath(got); err != nil || again != got {
			t.Fatalf("%q: canonical %q is not a fixed point (%q, %v)", p, got, again, err)
		}
	})
}

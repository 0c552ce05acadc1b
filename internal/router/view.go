package router

import (
	"net/http"
	"net/url"
)

// RequestView is what selection (route.choose) reads of a request: header,
// cookie and query values. Both engines provide it: HTTPView over an
// *http.Request, and the fast engine's request head read as bytes, which
// converts only what a route's match rules or affinity ask for.
type RequestView interface {
	HeaderValues(name string) []string
	// CookieValue is the first valid value of the CookieValue name, as
	// (*http.Request).Cookie finds it.
	CookieValue(name string) (string, bool)
	CookieValues(name string) []string
	QueryValues(name string) []string
}

// HTTPView is the RequestView of the standard engine's requests.
type HTTPView struct{ *http.Request }

func (v HTTPView) HeaderValues(name string) []string { return v.Header.Values(name) }

func (v HTTPView) CookieValue(name string) (string, bool) {
	c, err := v.Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

func (v HTTPView) CookieValues(name string) []string {
	var out []string
	for _, c := range v.CookiesNamed(name) {
		out = append(out, c.Value)
	}
	return out
}

func (v HTTPView) QueryValues(name string) []string { return v.URL.Query()[name] }

var _ = url.Values{}

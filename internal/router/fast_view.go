package router

import (
	"net/http"
	"net/url"
)

// requestView is what selection (route.choose) reads of a request: header,
// cookie and query values. Both engines provide it: httpView over an
// *http.Request, and the fast engine's request head read as bytes, which
// converts only what a route's match rules or affinity ask for.
type requestView interface {
	headerValues(name string) []string
	// cookie is the first valid value of the cookie name, as
	// (*http.Request).Cookie finds it.
	cookie(name string) (string, bool)
	cookieValues(name string) []string
	queryValues(name string) []string
}

type httpView struct{ *http.Request }

func (v httpView) headerValues(name string) []string { return v.Header.Values(name) }

func (v httpView) cookie(name string) (string, bool) {
	c, err := v.Cookie(name)
	if err != nil {
		return "", false
	}
	return c.Value, true
}

func (v httpView) cookieValues(name string) []string {
	var out []string
	for _, c := range v.CookiesNamed(name) {
		out = append(out, c.Value)
	}
	return out
}

func (v httpView) queryValues(name string) []string { return v.URL.Query()[name] }

var _ = url.Values{}

package router

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
)

// Insecure edge termination policies: what the plain-HTTP listener does
// with a request for a route that terminates TLS (as in OpenShift).
const (
	InsecureRedirect = "Redirect" // send the client to https://
	InsecureAllow    = "Allow"    // serve it over plain HTTP too
	InsecureNone     = "None"     // refuse it: HTTPS only
)

// TLSInput is the TLS of the admitted routes, built next to Input.
type TLSInput struct {
	Routes []TLSRoute
}

// TLSRoute is the TLS of one route. Cert is nil when the route asks for
// TLS but no usable certificate was loaded: handshakes for its host then
// fail, and its Insecure policy still applies, because the route's owner
// asked that its host not be served in clear text.
type TLSRoute struct {
	Key      string // the route's key, as in RouteConfig
	Host     string // exact or "*.example.com"
	Cert     *tls.Certificate
	Insecure string // InsecureRedirect, InsecureAllow or InsecureNone ("" is None)
}

// Certs holds the certificates served by SNI and each TLS route's
// insecure policy: an immutable set swapped atomically by Apply, so that
// certificates change in the running process without touching a listener.
// A handshake reads the set once; connections already established keep
// the certificate they were made with. Its methods are safe for
// concurrent use; the zero value serves no certificate.
type Certs struct {
	cur atomic.Pointer[certSet]
}

type certSet struct {
	exact    map[string]*tls.Certificate // host → certificate
	wildcard map[string]*tls.Certificate // "example.com" for "*.example.com"
	policy   map[string]string           // route key → insecure policy
}

// NewCerts returns an empty Certs.
func NewCerts() *Certs { return &Certs{} }

// Apply replaces the certificates and policies with in's. Invalid entries
// are left out and reported; when several routes of one host carry a
// certificate, the route with the smallest key provides it.
func (c *Certs) Apply(in TLSInput) []error {
	s := &certSet{exact: map[string]*tls.Certificate{}, wildcard: map[string]*tls.Certificate{}, policy: map[string]string{}}
	routes := slices.Clone(in.Routes)
	slices.SortFunc(routes, func(a, b TLSRoute) int { return cmp.Compare(a.Key, b.Key) })
	var errs []error
	for _, r := range routes {
		host, err := NormalizeHost(r.Host)
		if err != nil {
			errs = append(errs, &RouteError{Key: r.Key, Err: err})
			continue
		}
		pol := cmp.Or(r.Insecure, InsecureNone)
		switch pol {
		case InsecureRedirect, InsecureAllow, InsecureNone:
		default:
			errs = append(errs, &RouteError{Key: r.Key, Err: fmt.Errorf("insecureEdgeTerminationPolicy %q: must be one of %s, %s, %s", r.Insecure, InsecureRedirect, InsecureAllow, InsecureNone)})
			continue
		}
		s.policy[r.Key] = pol
		if r.Cert == nil {
			continue
		}
		m, name := s.exact, host
		if suffix, ok := strings.CutPrefix(host, "*."); ok {
			m, name = s.wildcard, suffix
		}
		if _, taken := m[name]; !taken {
			m[name] = r.Cert
		}
	}
	c.cur.Store(s)
	return errs
}

func (c *Certs) load() *certSet {
	if s := c.cur.Load(); s != nil {
		return s
	}
	return &certSet{}
}

// ErrNoServerName is returned to a client that sent no SNI.
var ErrNoServerName = errors.New("slipway router: the client sent no server name (SNI); connect by host name")

// GetCertificate picks the certificate for the client's server name: an
// exact host first, then a wildcard covering its first label (as TLS
// clients check it, "*.example.com" covers a.example.com, not
// a.b.example.com). For a name without a certificate it fails the
// handshake with an error naming it, rather than offering some other
// route's certificate: that would fail the client's verification anyway,
// with a less clear message, and show one project's host names to
// whoever asks.
func (c *Certs) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if name == "" {
		return nil, ErrNoServerName
	}
	s := c.load()
	if cert := s.exact[name]; cert != nil {
		return cert, nil
	}
	if i := strings.IndexByte(name, '.'); i >= 0 {
		if cert := s.wildcard[name[i+1:]]; cert != nil {
			return cert, nil
		}
	}
	return nil, fmt.Errorf("slipway router: no certificate for server name %q", name)
}

// Len is the number of host names (exact or wildcard) with a certificate.
func (c *Certs) Len() int {
	s := c.load()
	return len(s.exact) + len(s.wildcard)
}

// Policy returns the insecure policy of the route with key, and false when
// that route does not terminate TLS.
func (c *Certs) Policy(key string) (string, bool) {
	p, ok := c.load().policy[key]
	return p, ok
}

// TLSConfig is the HTTPS listener's configuration: certificates from c by
// SNI, TLS 1.2 at least, and HTTP/2 offered by ALPN ahead of HTTP/1.1.
// Serve it with (*http.Server).ServeTLS(ln, "", "") and the server's
// TLSConfig set to it, so that net/http answers h2.
func TLSConfig(c *Certs) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: c.GetCertificate,
	}
}

// InsecurePolicy wraps the plain-HTTP listener's handler (next, usually
// rt itself): a request for a route of rt that terminates TLS is
// redirected to HTTPS (301, or 308 for methods other than GET and HEAD so
// that the method and body are kept), refused with 404 (policy None), or
// passed to next (Allow). Requests for other routes pass through.
// httpsPort is the HTTPS listener's port, left out of redirects when 443.
func InsecurePolicy(next http.Handler, rt *Router, c *Certs, httpsPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s := c.load()
		if len(s.policy) == 0 || req.TLS != nil {
			next.ServeHTTP(w, req)
			return
		}
		host := canonicalHost(req.Host)
		key, ok := rt.tables.Current().Lookup(host, req.URL.Path)
		pol, tlsRoute := s.policy[key]
		if !ok || !tlsRoute || pol == InsecureAllow {
			next.ServeHTTP(w, req)
			return
		}
		if pol == InsecureNone {
			http.Error(w, fmt.Sprintf("slipway router: route %s is served over HTTPS only (insecureEdgeTerminationPolicy %s)", key, InsecureNone), http.StatusNotFound)
			return
		}
		// host matched a route, so it is a valid DNS name: safe in a URL.
		u := "https://" + host
		if httpsPort != 443 && httpsPort > 0 {
			u += ":" + strconv.Itoa(httpsPort)
		}
		u += req.URL.RequestURI()
		status := http.StatusMovedPermanently
		if req.Method != http.MethodGet && req.Method != http.MethodHead {
			status = http.StatusPermanentRedirect
		}
		w.Header().Set("Location", u)
		w.WriteHeader(status)
	})
}

package router

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
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

// HasPolicies reports whether any route terminates TLS (and so has an
// insecure policy).
func (c *Certs) HasPolicies() bool { return len(c.load().policy) > 0 }

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

package std

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"

	"slipway.dev/slipway/internal/router"
)

// DefaultMaxConcurrentStreams bounds the requests in flight on one HTTP/2
// connection (nginx's http2_max_concurrent_streams is 128, HAProxy's
// default 100): a client wanting more opens another connection.
const DefaultMaxConcurrentStreams = 128

// NewTLSServer returns the HTTPS listener's server for h (the Router, or a
// handler in front of it): certificates from c by SNI, TLS 1.2 at least,
// HTTP/2 offered by ALPN ahead of HTTP/1.1, with the frontend's header,
// read-header and idle limits and a stream limit per connection. Serve it
// with ServeTLS(ln, "", ""). Its Shutdown sends HTTP/2 clients a GOAWAY
// and HTTP/1.1 clients Connection: close on their next response, and
// lets requests in flight finish.
func NewTLSServer(h http.Handler, c *router.Certs, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         TLSConfig(c),
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		HTTP2:             http2Limits(),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug), // failed handshakes are per-client noise
	}
}

// http2Limits are the HTTP/2 settings of both listeners.
func http2Limits() *http.HTTP2Config {
	return &http.HTTP2Config{
		MaxConcurrentStreams:      DefaultMaxConcurrentStreams,
		MaxDecoderHeaderTableSize: 4096,
		MaxEncoderHeaderTableSize: 4096,
	}
}

// plainProtocols: HTTP/1.1 and h2c with prior knowledge.
func plainProtocols() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

// TLSConfig is the HTTPS listener's configuration: certificates from c by
// SNI, TLS 1.2 at least, and HTTP/2 offered by ALPN ahead of HTTP/1.1.
// Serve it with (*http.Server).ServeTLS(ln, "", "") and the server's
// TLSConfig set to it, so that net/http answers h2.
func TLSConfig(c *router.Certs) *tls.Config {
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
func InsecurePolicy(next http.Handler, rt *router.Router, c *router.Certs, httpsPort int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !c.HasPolicies() || req.TLS != nil {
			next.ServeHTTP(w, req)
			return
		}
		host := router.CanonicalHost(req.Host)
		path, _ := router.CanonicalPath(requestPath(req)) // refused by next if it is not
		key, ok := rt.Current().Lookup(host, path)
		pol, tlsRoute := c.Policy(key)
		if !ok || !tlsRoute || pol == router.InsecureAllow {
			next.ServeHTTP(w, req)
			return
		}
		if pol == router.InsecureNone {
			http.Error(w, fmt.Sprintf("slipway router: route %s is served over HTTPS only (insecureEdgeTerminationPolicy %s)", key, router.InsecureNone), http.StatusNotFound)
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

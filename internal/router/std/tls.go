package std

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strconv"

	"slipway.dev/slipway/internal/router"
)

// DefaultMaxConcurrentStreams bounds the requests in flight on one HTTP/2
// connection (nginx's http2_max_concurrent_streams is 128, HAProxy's
// default 100): a client wanting more opens another connection.
const DefaultMaxConcurrentStreams = 128

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
// SNI (swapped underneath by c.Apply, never reopening the listener), TLS
// 1.2 at least and 1.3 preferred (crypto/tls picks the highest both
// sides speak), HTTP/2 offered by ALPN ahead of HTTP/1.1, and session
// tickets under keys (nil: crypto/tls's own keys, rotated in this process
// only). Serve it with fast.Server.ServeTLS or Server.ServeTLS.
func TLSConfig(c *router.Certs, keys *TicketKeys) *tls.Config {
	cfg := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
		GetCertificate: c.GetCertificate,
	}
	if keys != nil {
		keys.bind(cfg)
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			keys.maybeRotate()
			return nil, nil // this configuration, its keys rotated if due
		}
	}
	return cfg
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

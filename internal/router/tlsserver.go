package router

import (
	"log/slog"
	"net/http"
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
func NewTLSServer(h http.Handler, c *Certs, log *slog.Logger) *http.Server {
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

// Package fast is the router's fast engine for plain HTTP/1.1: requests
// parsed in place in pooled buffers, headers kept as bytes, pooled
// keep-alive upstream connections per endpoint, raw non-blocking reads and
// writes (io_unix.go), no allocation per request on the hot path. It
// serves with the core's tables, selection (router.Acquire), counters,
// passive health and drain, and hands every connection whose next request
// it does not serve as is to the standard engine (std.Server.Handoff).
package fast

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/std"
)

// Options configures a Server.
type Options struct {
	// Engine serves plain HTTP (Serve): EngineFast (the default) or
	// EngineStd, which leaves everything to the fallback.
	Engine string
	// Certs, when the fallback's Handler applies the TLS routes' insecure
	// policies (InsecurePolicy), lets the fast engine pass their plain
	// requests to it; without it the fast engine serves every route itself.
	Certs *router.Certs
	// TicketKeys are the TLS listener's session-ticket keys (ServeTLS),
	// shared with whoever takes the listener over; nil: a set of this
	// server's own.
	TicketKeys *std.TicketKeys
}

// Server is the router's plain-HTTP listener: the fast engine
// (front.go) in front of the standard one.
//
// The fast engine takes the standard engine's Server itself as its
// fallback (std.Handoff), not an interface: there is exactly one engine
// to fall back to, the hand-off must keep its framing checks and limits
// (the fast engine applies the fallback's ServerOptions), and both
// listeners shut down together. An interface in the core would make the
// core speak of connections for the sake of one implementation.
type Server struct {
	std   *std.Server
	front *fastFront  // nil on EngineStd
	tls   *tls.Config // ServeTLS's
	keys  *std.TicketKeys
}

// NewServer returns the plain-HTTP listener over std, which serves
// what the fast engine hands over. Run it with Serve; stop it with
// Shutdown (which shuts std down too).
func NewServer(fallback *std.Server, opts Options) *Server {
	s := &Server{std: fallback, keys: opts.TicketKeys}
	if s.keys == nil {
		s.keys = std.NewTicketKeys()
	}
	certs := opts.Certs
	if certs == nil {
		certs = router.NewCerts()
	}
	s.tls = std.TLSConfig(certs, s.keys)
	switch opts.Engine {
	case "", EngineFast:
		if fallback.Router().Options().AccessLog == nil { // the access log is the standard engine's
			s.front = newFastFront(fallback, opts.Certs, s.tls)
		}
	case EngineStd:
	default:
		fallback.Options().Logger.Error("router: unknown engine, serving with the standard one", "engine", opts.Engine, "want", EngineFast+" or "+EngineStd)
	}
	return s
}

// Serve accepts connections on ln until Shutdown; it then returns nil.
func (s *Server) Serve(ln net.Listener) error {
	if s.front != nil {
		return s.front.serve(ln, false)
	}
	return s.std.Serve(ln)
}

// ServeTLS is Serve for the HTTPS listener: certificates by SNI from
// Options.Certs, TLS 1.2 at least and 1.3 preferred, session tickets under
// TicketKeys. On the fast engine, a connection whose handshake chose
// HTTP/1.1 (or no protocol) is served as a plain one, with the same
// framing, limits and hand-offs, and X-Forwarded-Proto: https; one that
// chose h2 goes to the standard engine's HTTP/2 server.
func (s *Server) ServeTLS(ln net.Listener) error {
	if s.front != nil {
		return s.front.serve(ln, true)
	}
	return s.std.ServeTLS(ln, s.tls)
}

// TicketKeys are the TLS listener's session-ticket keys: a successor
// taking the listener over sets them on its own (TicketKeys.SetKeys), so
// that clients resume their sessions across the hand-over.
func (s *Server) TicketKeys() *std.TicketKeys { return s.keys }

// Shutdown stops accepting, closes idle connections, lets in-flight
// requests finish (their responses carry Connection: close, so keep-alive
// clients go elsewhere for the next one), and returns when they have. When
// ctx ends first, it closes every connection and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	var fastErr error
	var wg sync.WaitGroup
	if s.front != nil {
		wg.Go(func() { fastErr = s.front.shutdown(ctx) })
	}
	err := s.std.Shutdown(ctx)
	wg.Wait()
	if err == nil && fastErr != nil {
		s.std.Close()
		err = fmt.Errorf("router: shutdown: %w", fastErr)
	}
	return err
}

// Open returns the number of client connections the fast engine holds
// (those it handed to the standard engine are the standard engine's).
func (s *Server) Open() int {
	if s.front == nil {
		return 0
	}
	s.front.mu.Lock()
	defer s.front.mu.Unlock()
	return len(s.front.conns)
}

// Engines of the plain-HTTP listener (ServerOptions.Engine).
const (
	// EngineFast serves plain HTTP/1.1 on the fast engine (this package) and
	// hands every other request to the standard one.
	EngineFast = "fast"
	// EngineStd serves everything with net/http and httputil.ReverseProxy.
	EngineStd = "std"
)

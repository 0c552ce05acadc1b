package proxy

import (
	"net"
	"net/netip"
)

// The proxy's part in a hand-over between generations of Slipway: the old
// one passes its listeners on (Listeners), the new one opens them from
// those (Options.Listen), and once the new one serves, the old one stops
// accepting and lets its connections end (Unlisten, Open) before Close.

// Listeners returns the listeners open now, by VIP:port. They stay the
// proxy's: a caller passes on duplicates of their sockets.
func (p *Proxy) Listeners() map[netip.AddrPort]net.Listener {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	out := make(map[netip.AddrPort]net.Listener, len(p.listeners))
	for addr, l := range p.listeners {
		out[addr] = l.ln
	}
	return out
}

// Unlisten closes every listener (a socket another process holds too goes
// on taking connections, for it) and opens none from then on; it returns
// once no connection is being accepted. The table stays, so a connection
// accepted before still reaches an endpoint; every endpoint is marked
// leaving, so an open connection is closed when its client starts a new
// request, as for a pod leaving (see the package comment).
func (p *Proxy) Unlisten() {
	p.applyMu.Lock()
	p.unlistened = true
	for addr, l := range p.listeners {
		l.ln.Close()
		delete(p.listeners, addr)
	}
	p.applyMu.Unlock()
	p.acceptW.Wait()
	p.epMu.Lock()
	for _, ep := range p.eps {
		ep.leaving.Store(true)
	}
	p.epMu.Unlock()
}

// Open returns the number of client connections open.
func (p *Proxy) Open() int { return int(p.clients.Load()) }

package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// accept serves one listener until it is closed.
func (p *Proxy) accept(l *listener) {
	defer p.acceptW.Done()
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: back off instead of spinning, as
			// net/http's Server does.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			p.log.Warn("accept failed; retrying", "addr", l.addr, "err", err, "retryIn", delay)
			select {
			case <-time.After(delay):
			case <-p.ctx.Done():
				return
			}
			continue
		}
		delay = 0
		if !p.track(c) {
			c.Close()
			return
		}
		p.connW.Add(1)
		p.clients.Add(1)
		go p.serve(l.addr, c)
	}
}

// track registers c so that Close can cut it; false once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.connMu.Lock()
	defer p.connMu.Unlock()
	if p.ctx.Err() != nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.connMu.Lock()
	delete(p.conns, c)
	p.connMu.Unlock()
}

// serve connects the client to an endpoint of vip's port and splices the
// two until both sides are done.
func (p *Proxy) serve(vip netip.AddrPort, client net.Conn) {
	defer p.connW.Done()
	defer p.clients.Add(-1)
	defer p.untrack(client)
	defer client.Close()
	upstream, ep, f := p.connect(vip)
	if upstream == nil {
		return // no endpoint reachable: the client sees the connection closed
	}
	defer p.release(ep)
	defer ep.removeFlow(f)
	defer upstream.Close()
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	p.splice(client, upstream, f, ep)
}

// release ends one connection's claim on ep.
func (p *Proxy) release(ep *endpoint) {
	if ep.active.Add(-1) == 0 {
		p.tables.Broadcast()
	}
}

// connect picks endpoints of the current table for vip, least connections
// first, until one accepts. It holds the table's gate throughout, which is
// what lets Apply promise that a removed endpoint gets no new connection.
// The connection's flow is registered before the gate is released, so that
// WaitDrained, which may start as soon as Apply returns, sees it: an
// unregistered connection would let the pod stop while the connection sits
// in its accept queue, and the client would get a reset.
func (p *Proxy) connect(vip netip.AddrPort) (net.Conn, *endpoint, *flow) {
	t := p.tables.Pick()
	defer p.tables.Done(t)
	pt := t.ports[vip]
	if pt == nil || len(pt.endpoints) == 0 {
		p.log.Debug("no endpoints", "addr", vip)
		return nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.dialTimeout)
	defer cancel()
	tried := make([]bool, len(pt.endpoints))
	for range pt.endpoints {
		ep := pt.pick(tried)
		if p.testHookPicked != nil {
			p.testHookPicked(ep.addr)
		}
		c, err := p.dialer.DialContext(ctx, "tcp", ep.addr.String())
		if err == nil {
			f := &flow{opened: p.nanotime()}
			ep.addFlow(f)
			return c, ep, f
		}
		p.release(ep)
		p.log.Debug("endpoint refused a connection; trying the next", "service", pt.service, "endpoint", ep.addr, "err", err)
		if ctx.Err() != nil {
			break
		}
	}
	p.log.Warn("no endpoint accepted the connection", "service", pt.service, "addr", vip, "endpoints", len(pt.endpoints))
	return nil, nil, nil
}

// pick claims the untried endpoint with the fewest connections; among
// equals, the rotating start makes it round robin.
func (pt *port) pick(tried []bool) *endpoint {
	n := len(pt.endpoints)
	start := int(pt.next.Add(1) % uint32(n))
	best := -1
	var bestN int64
	for i := range n {
		j := (start + i) % n
		if tried[j] {
			continue
		}
		if a := pt.endpoints[j].active.Load(); best < 0 || a < bestN {
			best, bestN = j, a
		}
	}
	tried[best] = true
	ep := pt.endpoints[best]
	ep.active.Add(1)
	return ep
}

// closeWriter is a connection that can pass on an EOF.
type closeWriter interface{ CloseWrite() error }

// splice copies both ways until both directions are done, marking in f
// when each side last spoke (what WaitDrained reads). An EOF is passed on
// as a half-close, so a client that shuts down its write side still gets
// the response; an error ends both directions.
func (p *Proxy) splice(client, upstream net.Conn, f *flow, ep *endpoint) {
	var wg sync.WaitGroup
	wg.Go(func() {
		p.half(upstream, client, &f.client, func() bool { return ep.leaving.Load() && f.newRequest() })
	})
	p.half(client, upstream, &f.upstream, nil)
	wg.Wait()
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// half copies src to dst. It copies through a pooled buffer rather than
// io.Copy's splice(2), because it must see each chunk to mark activity;
// measured on loopback, the two were within noise for small requests.
//
// cut, if set, is asked before passing on bytes: true closes both sides
// and drops them (a new request for a leaving endpoint).
func (p *Proxy) half(dst, src net.Conn, mark *atomic.Int64, cut func() bool) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	var err error
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if cut != nil && cut() {
				dst.Close()
				src.Close()
				return
			}
			mark.Store(p.nanotime())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				err = werr
				break
			}
		}
		if rerr != nil {
			if rerr != io.EOF {
				err = rerr
			}
			break
		}
	}
	if err == nil {
		if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
			return
		}
	}
	// A reset or a closed socket: nothing more can flow either way.
	// Closing both wakes the other direction's copy.
	dst.Close()
	src.Close()
}

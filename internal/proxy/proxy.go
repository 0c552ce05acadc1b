// Package proxy is the layer-4 service proxy: it listens on every service's
// virtual IP and port and splices each accepted TCP connection to one of the
// port's endpoints (pod IP and port).
//
// The proxy is driven by tables. Apply builds a new immutable table, swaps
// it in atomically and only then opens the listeners of new VIP:port pairs
// and closes those of pairs that are gone; a pair present in both tables
// keeps its listener, so clients never see it refused. Connections are
// balanced across a port's endpoints by least connections with a
// round-robin tie-break. Established connections are never cut by a table
// change: they end when either side ends them.
//
// Drain contract (the node agent's half of ordered termination): when Apply
// returns, no connect to an endpoint absent from the new table is in
// progress or will be started; WaitDrained then waits until no connection
// open to it is in flight. A layer-4 proxy sees bytes, not requests, so
// "in flight" is read from the bytes: a connection is busy while its client
// has sent bytes the endpoint has not answered yet (a request awaits its
// response), or while bytes moved within the last DrainQuiet; otherwise it
// is an idle keep-alive connection. And a leaving endpoint gets no new
// request on a connection already open either: when the client of such a
// connection starts a new request (sends bytes after the endpoint answered
// last), the proxy closes the connection instead of passing the request
// on, as a server closing an idle keep-alive connection does; HTTP clients
// retry a request that met a keep-alive connection being closed. So once
// WaitDrained returns, the endpoint has nothing in flight and will be sent
// nothing more, and even an app that exits at once on SIGTERM loses no
// request. (For protocols where the server speaks first or unprompted, the
// same rule may cut a session at a quiet moment: the endpoint is leaving.)
// The caller still bounds the wait (the grace period).
//
// This package imports nothing of the store or the controllers: the
// dataplane package feeds it tables built from Services and Endpoints.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"slipway.dev/slipway/internal/drain"
)

// DefaultDialTimeout bounds a connection's connect to its endpoints (every
// attempt together). On loopback a connect succeeds or is refused at once;
// the bound matters only when a listener's backlog is full.
const DefaultDialTimeout = 2 * time.Second

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("proxy: closed")

// Options configures a Proxy.
type Options struct {
	Logger *slog.Logger
	// DialTimeout bounds the connect of one client connection to an
	// endpoint, retries included (DefaultDialTimeout when 0). Apply waits
	// at most this long for connects begun on the table it replaces.
	DialTimeout time.Duration
	// DrainQuiet is how long a connection must have moved no bytes, with
	// its endpoint having answered last, to count as idle rather than in
	// flight (DefaultDrainQuiet when 0).
	DrainQuiet time.Duration
	// Listen opens a VIP:port's listener (net.Listen when nil): a new
	// generation of Slipway takes the sockets the old one handed over
	// (handover.go).
	Listen func(addr netip.AddrPort) (net.Listener, error)
}

// DefaultDrainQuiet: well above a loopback round trip, well below a grace
// period.
const DefaultDrainQuiet = 100 * time.Millisecond

// Table is everything the proxy serves.
type Table struct {
	Services []Service
}

// Service is one virtual IP and its ports. Key names it in logs and errors
// (project/name).
type Service struct {
	Key   string
	VIP   netip.Addr
	Ports []Port
}

// Port is one listening port of a service and the endpoints it balances
// across. Protocol is "TCP" (or empty, meaning TCP).
type Port struct {
	Port      uint16
	Protocol  string
	Endpoints []netip.AddrPort
}

// Proxy is the service proxy. Its methods are safe for concurrent use.
type Proxy struct {
	log         *slog.Logger
	dialTimeout time.Duration
	drainQuiet  time.Duration
	started     time.Time
	dialer      net.Dialer
	ctx         context.Context // cancelled by Close: aborts connects
	cancel      context.CancelFunc

	// applyMu serialises Apply and Close; it guards listeners and closed.
	applyMu   sync.Mutex
	listeners map[netip.AddrPort]*listener
	closed    bool
	// unlistened: the proxy drains for a hand-over and opens no listener.
	unlistened bool
	listen     func(netip.AddrPort) (net.Listener, error)

	// tables holds the table new connections use and the newest one none
	// of whose predecessors has a connect in progress: an endpoint in
	// neither gets no new connection, ever, until a table adds it again.
	tables drain.Tables[table, *table]

	// eps holds every endpoint of a table, or with connections open, so
	// that its count survives table swaps.
	epMu sync.Mutex
	eps  map[netip.AddrPort]*endpoint

	// testHookPicked, when set by a test, runs after a connection picked
	// its endpoint and before it connects.
	testHookPicked func(ep netip.AddrPort)

	connMu  sync.Mutex
	conns   map[net.Conn]struct{}
	acceptW sync.WaitGroup // accept loops
	connW   sync.WaitGroup // connection handlers
	clients atomic.Int64   // client connections open
}

// table is immutable once swapped in, except for its gate and counters.
type table struct {
	// The gate is held for reading by every connection while it picks an
	// endpoint and connects; Apply takes it for writing after the swap, so
	// that it returns only once no connect on the old table is in progress.
	drain.Gate
	ports   map[netip.AddrPort]*port // by VIP:port
	members map[netip.AddrPort]bool  // every endpoint of the table
}

// Holds reports whether t lists an endpoint match accepts.
func (t *table) Holds(match func(netip.AddrPort) bool) bool { return drain.Holds(t.members, match) }

type port struct {
	service   string
	endpoints []*endpoint
	next      atomic.Uint32 // rotates the tie-break
}

type endpoint struct {
	addr   netip.AddrPort
	active atomic.Int64 // connections open or being opened
	// leaving: the endpoint is in no table. A connection to it is closed
	// when its client starts a new request (sends bytes after the
	// endpoint answered last) instead of passing that request on.
	leaving atomic.Bool

	flowMu sync.Mutex
	flows  map[*flow]struct{} // the open connections' activity
}

// flow is the activity of one spliced connection, in monotonic nanoseconds
// since the proxy started.
type flow struct {
	opened   int64        // when the connection was made
	client   atomic.Int64 // the last time the client sent bytes (0: never)
	upstream atomic.Int64 // the last time the endpoint sent bytes (0: never)
}

// busy reports whether the connection is in flight at now: its client spoke
// last (a request awaits its answer) or it opened or moved bytes within
// quiet.
func (f *flow) busy(now, quiet int64) bool {
	c, u := f.client.Load(), f.upstream.Load()
	if c == 0 && u == 0 {
		// Nothing moved yet: the client's first request is most likely
		// in a socket buffer that a starved goroutine has not read. Give
		// it longer than a pause between requests, so the endpoint is not
		// stopped with the connection in its accept queue.
		return now-f.opened < max(quiet, int64(freshQuiet))
	}
	return c > u || now-max(c, u, f.opened) < quiet
}

// freshQuiet is how long a connection that has carried nothing yet counts
// as in flight.
const freshQuiet = time.Second

// newRequest reports whether bytes from the client now would start a new
// request on a connection that has already carried one: the endpoint has
// answered and spoken last. The first request of a connection never counts:
// its client cannot have seen the connection work, so it would not retry.
func (f *flow) newRequest() bool {
	u := f.upstream.Load()
	return u != 0 && f.client.Load() <= u
}

func (e *endpoint) addFlow(f *flow) {
	e.flowMu.Lock()
	if e.flows == nil {
		e.flows = map[*flow]struct{}{}
	}
	e.flows[f] = struct{}{}
	e.flowMu.Unlock()
}

func (e *endpoint) removeFlow(f *flow) {
	e.flowMu.Lock()
	delete(e.flows, f)
	e.flowMu.Unlock()
}

// busyFlows counts the connections in flight at now.
func (e *endpoint) busyFlows(now, quiet int64) int {
	e.flowMu.Lock()
	defer e.flowMu.Unlock()
	n := 0
	for f := range e.flows {
		if f.busy(now, quiet) {
			n++
		}
	}
	return n
}

type listener struct {
	addr netip.AddrPort
	ln   net.Listener
}

func emptyTable() *table {
	return &table{ports: map[netip.AddrPort]*port{}, members: map[netip.AddrPort]bool{}}
}

// New returns a Proxy serving an empty table.
func New(opts Options) *Proxy {
	p := &Proxy{
		log:         opts.Logger,
		dialTimeout: opts.DialTimeout,
		drainQuiet:  opts.DrainQuiet,
		started:     time.Now(),
		listeners:   map[netip.AddrPort]*listener{},
		eps:         map[netip.AddrPort]*endpoint{},
		conns:       map[net.Conn]struct{}{},
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.dialTimeout <= 0 {
		p.dialTimeout = DefaultDialTimeout
	}
	if p.drainQuiet <= 0 {
		p.drainQuiet = DefaultDrainQuiet
	}
	p.listen = opts.Listen
	if p.listen == nil {
		p.listen = func(a netip.AddrPort) (net.Listener, error) { return net.Listen("tcp", a.String()) }
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.tables.Init(emptyTable(), drain.Words{Owner: "proxy", Table: "service table", InFlight: "connections"})
	return p
}

// Apply makes t the table the proxy serves. Entries that are invalid
// (a UDP port, a duplicate VIP:port, a bad address) and listeners that
// cannot be opened (each a *ListenError) are reported in the returned error; everything else is
// applied regardless, and a listener that failed is tried again on the
// next Apply. When Apply returns, no connection will be opened to an
// endpoint t lacks.
func (p *Proxy) Apply(t Table) error {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	if p.closed {
		return ErrClosed
	}
	next, errs := p.build(t)

	// Wait out every connect that picked from the old table. Later
	// connections load next; one that loaded old just before the swap
	// sees the swap once it holds the gate and starts over.
	p.tables.Swap(next)

	for addr, l := range p.listeners {
		if _, keep := next.ports[addr]; !keep {
			l.ln.Close()
			delete(p.listeners, addr)
			p.log.Info("closed service listener", "addr", addr)
		}
	}
	for addr, pt := range next.ports {
		if _, open := p.listeners[addr]; open {
			continue
		}
		if p.unlistened {
			break
		}
		ln, err := p.listen(addr)
		if err != nil {
			errs = append(errs, listenError(pt.service, addr, err))
			continue
		}
		l := &listener{addr: addr, ln: ln}
		p.listeners[addr] = l
		p.acceptW.Add(1)
		go p.accept(l)
		p.log.Info("opened service listener", "service", pt.service, "addr", addr)
	}

	// Endpoints out of the table are leaving: their connections are cut
	// at the next request boundary. Forget those that have none left.
	p.epMu.Lock()
	for addr, ep := range p.eps {
		ep.leaving.Store(!next.members[addr])
		if !next.members[addr] && ep.active.Load() == 0 {
			delete(p.eps, addr)
		}
	}
	p.epMu.Unlock()
	p.tables.Broadcast()
	return errors.Join(errs...)
}

// build validates t and turns it into a table, reusing the endpoint
// counters of endpoints already known.
func (p *Proxy) build(t Table) (*table, []error) {
	next := emptyTable()
	var errs []error
	p.epMu.Lock()
	defer p.epMu.Unlock()
	for _, s := range t.Services {
		if !s.VIP.IsValid() || s.VIP.Zone() != "" {
			errs = append(errs, fmt.Errorf("service %s: invalid VIP %q", s.Key, s.VIP))
			continue
		}
		for _, sp := range s.Ports {
			switch sp.Protocol {
			case "", "TCP":
			case "UDP":
				errs = append(errs, fmt.Errorf("service %s port %d: protocol UDP is not supported by the service proxy (TCP only)", s.Key, sp.Port))
				continue
			default:
				errs = append(errs, fmt.Errorf("service %s port %d: unknown protocol %q (supported: TCP)", s.Key, sp.Port, sp.Protocol))
				continue
			}
			if sp.Port == 0 {
				errs = append(errs, fmt.Errorf("service %s: port 0 is not a valid service port", s.Key))
				continue
			}
			addr := netip.AddrPortFrom(s.VIP.Unmap(), sp.Port)
			if other, dup := next.ports[addr]; dup {
				errs = append(errs, fmt.Errorf("service %s: %s is already served for service %s", s.Key, addr, other.service))
				continue
			}
			pt := &port{service: s.Key}
			seen := map[netip.AddrPort]bool{}
			for _, e := range sp.Endpoints {
				if !e.IsValid() || e.Port() == 0 {
					errs = append(errs, fmt.Errorf("service %s port %d: invalid endpoint %q", s.Key, sp.Port, e))
					continue
				}
				e = netip.AddrPortFrom(e.Addr().Unmap(), e.Port())
				if seen[e] {
					continue
				}
				seen[e] = true
				ep := p.eps[e]
				if ep == nil {
					ep = &endpoint{addr: e}
					p.eps[e] = ep
				}
				pt.endpoints = append(pt.endpoints, ep)
				next.members[e] = true
			}
			next.ports[addr] = pt
		}
	}
	return next, errs
}

// Close stops listening, aborts connects and cuts every connection, and
// waits for its goroutines. It is for shutting Slipway down; draining a pod
// is Apply and WaitDrained.
func (p *Proxy) Close() error {
	p.applyMu.Lock()
	if p.closed {
		p.applyMu.Unlock()
		return nil
	}
	p.closed = true
	p.cancel()
	for addr, l := range p.listeners {
		l.ln.Close()
		delete(p.listeners, addr)
	}
	p.applyMu.Unlock()
	p.acceptW.Wait() // no new handler starts after this
	p.connMu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.connMu.Unlock()
	p.connW.Wait()
	return nil
}

// Active returns the number of connections open (or being opened) to ep.
func (p *Proxy) Active(ep netip.AddrPort) int {
	p.epMu.Lock()
	e := p.eps[netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())]
	p.epMu.Unlock()
	if e == nil {
		return 0
	}
	return int(e.active.Load())
}

// InFlight returns the number of connections to ep carrying a request now
// (see the package comment).
func (p *Proxy) InFlight(ep netip.AddrPort) int {
	p.epMu.Lock()
	e := p.eps[netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())]
	p.epMu.Unlock()
	if e == nil {
		return 0
	}
	return e.busyFlows(p.nanotime(), int64(p.drainQuiet))
}

// nanotime is monotonic time since the proxy started.
func (p *Proxy) nanotime() int64 { return int64(time.Since(p.started)) }

// WaitDrained returns nil once ep is in no table the proxy may still
// connect from and none of its connections is in flight (open idle
// keep-alive connections do not count: see the package comment), or ctx's
// error (wrapped, with the count left) when ctx ends first.
func (p *Proxy) WaitDrained(ctx context.Context, ep netip.AddrPort) error {
	return p.tables.WaitDrained(ctx, ep, p.busy, p.drainQuiet/4)
}

// WaitDrainedIP is WaitDrained for every endpoint at ip, whatever its port:
// what the node agent needs, since a service may reach a pod on a port its
// containers never declared.
func (p *Proxy) WaitDrainedIP(ctx context.Context, ip netip.Addr) error {
	return p.tables.WaitDrainedIP(ctx, ip, p.busy, p.drainQuiet/4)
}

// busy counts the connections in flight to the endpoints match accepts.
// Idleness comes with time, not with an event: WaitDrained polls it while
// connections are open.
func (p *Proxy) busy(match func(netip.AddrPort) bool) int {
	n := 0
	now := p.nanotime()
	p.epMu.Lock()
	defer p.epMu.Unlock()
	for addr, e := range p.eps {
		if match(addr) {
			n += e.busyFlows(now, int64(p.drainQuiet))
		}
	}
	return n
}

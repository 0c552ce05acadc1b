package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestBalancesLeastConnections: connections held open spread evenly, and
// Active counts them per endpoint.
func TestBalancesLeastConnections(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	mustApply(t, p, oneService(vip, addrs(bs...)...))

	got := map[string]int{}
	var held []*rawConn
	for range 9 {
		c := dial(t, vip)
		got[servedBy(c.mustGet(t, "/"))]++
		held = append(held, c)
	}
	if diff := cmp.Diff(map[string]int{"a": 3, "b": 3, "c": 3}, got); diff != "" {
		t.Errorf("connections per backend (-want +got):\n%s", diff)
	}
	for _, b := range bs {
		if n := p.Active(b.addr); n != 3 {
			t.Errorf("Active(%s) = %d, want 3", b.name, n)
		}
	}
	// One backend loses its connections: the next three go to it.
	for _, c := range held {
		if body := c.mustGet(t, "/"); servedBy(body) == "b" {
			c.c.Close()
		}
	}
	waitFor(t, "b's connections released", func() bool { return p.Active(bs[1].addr) == 0 })
	got = map[string]int{}
	for range 3 {
		got[servedBy(dial(t, vip).mustGet(t, "/"))]++
	}
	if diff := cmp.Diff(map[string]int{"b": 3}, got); diff != "" {
		t.Errorf("after b's connections closed (-want +got):\n%s", diff)
	}
}

// TestBalancesShortConnections: among endpoints with equal counts, picks
// rotate (the round-robin tie-break): one connection at a time, each
// released before the next, spreads exactly evenly and in turn.
func TestBalancesShortConnections(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	bs := []*backend{startBackend(t, "a"), startBackend(t, "b"), startBackend(t, "c")}
	mustApply(t, p, oneService(vip, addrs(bs...)...))
	got := map[string]int{}
	var order []string
	for range 60 {
		c := dial(t, vip)
		name := servedBy(c.mustGet(t, "/"))
		got[name]++
		order = append(order, name)
		c.c.Close()
		waitFor(t, "the connection released", func() bool { return p.Active(bs[0].addr)+p.Active(bs[1].addr)+p.Active(bs[2].addr) == 0 })
	}
	if diff := cmp.Diff(map[string]int{"a": 20, "b": 20, "c": 20}, got); diff != "" {
		t.Errorf("connections per backend (-want +got):\n%s", diff)
	}
	for i := 3; i < len(order); i++ {
		if order[i] != order[i-3] {
			t.Fatalf("picks do not rotate: %v", order)
		}
	}
}

// TestRemovedEndpointGetsNoNewConnection: from the moment Apply returns,
// not one connection reaches a removed endpoint, though connections are
// being opened concurrently throughout.
func TestRemovedEndpointGetsNoNewConnection(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	// A counts the connections its kernel queued, in order: a marker
	// connection dialled directly is accepted after every connection the
	// proxy made before it.
	lnA, err := net.Listen("tcp", backendIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer lnA.Close()
	a := netip.MustParseAddrPort(lnA.Addr().String())
	type accepted struct {
		marker bool
	}
	acceptedCh := make(chan accepted, 10000)
	go func() {
		for {
			c, err := lnA.Accept()
			if err != nil {
				close(acceptedCh)
				return
			}
			buf := make([]byte, 1)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _ := c.Read(buf)
			acceptedCh <- accepted{marker: n == 1 && buf[0] == 'M'}
			c.Close()
		}
	}()
	b := startBackend(t, "b")
	mustApply(t, p, oneService(vip, a, b.addr))

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", vip.String())
				if err != nil {
					continue
				}
				fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c) // A closes at once, B after its answer
				c.Close()
			}
		})
	}
	// Let the load reach A before removing it.
	for range 20 {
		<-acceptedCh
	}
	mustApply(t, p, oneService(vip, b.addr))
	marker := func() {
		c, err := net.Dial("tcp", a.String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("M"))
		c.Close()
	}
	marker()
	for ev := range acceptedCh {
		if ev.marker {
			break
		}
	}
	// Everything the proxy opened to A before Apply returned is accepted
	// by now. Keep the load going; A must see nothing but the next marker.
	base := b.accepted.Load()
	waitFor(t, "200 more connections through the proxy", func() bool { return b.accepted.Load() >= base+200 })
	marker()
	var after int
	for ev := range acceptedCh {
		if ev.marker {
			break
		}
		after++
	}
	close(stop)
	wg.Wait()
	if after != 0 {
		t.Errorf("%d connections reached the removed endpoint after Apply returned", after)
	}
	if n := b.accepted.Load(); n == 0 {
		t.Errorf("the remaining endpoint got no connection: the load did not run")
	}
}

// TestApplyWaitsForConnectsInProgress: a connection that picked an
// endpoint from the old table but has not connected yet holds Apply back,
// so that when Apply returns no connect to a removed endpoint is pending.
func TestApplyWaitsForConnectsInProgress(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	a, b := startBackend(t, "a"), startBackend(t, "b")
	picked := make(chan netip.AddrPort, 1)
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the proxy's Close, which waits for the parked connect
	p.testHookPicked = func(ep netip.AddrPort) {
		if ep == a.addr {
			picked <- ep
			<-release
		}
	}
	mustApply(t, p, oneService(vip, a.addr))
	result := make(chan string, 1)
	go func() {
		c, err := net.Dial("tcp", vip.String())
		if err != nil {
			result <- err.Error()
			return
		}
		defer c.Close()
		rc := &rawConn{c: c, r: bufio.NewReader(c)}
		body, err := rc.get("/")
		if err != nil {
			result <- err.Error()
			return
		}
		result <- servedBy(body)
	}()
	if ep := <-picked; ep != a.addr {
		t.Fatalf("picked %s, want a %s", ep, a.addr)
	}
	applied := make(chan error, 1)
	go func() { applied <- p.Apply(oneService(vip, b.addr)) }()
	waitFor(t, "the table swap", func() bool { return p.tables.Current().members[b.addr] })
	select {
	case err := <-applied:
		t.Fatalf("Apply returned (%v) while a connect to the removed endpoint was in progress", err)
	case <-time.After(200 * time.Millisecond):
		// Still waiting, as it must: the window a broken barrier would
		// need is microseconds, so 200 ms tells them apart without flaking.
	}
	unblock()
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	// The connect that began before Apply returned completes to A.
	if got := <-result; got != "a" {
		t.Errorf("the pending connection was served by %q, want a", got)
	}
	if got := servedBy(dial(t, vip).mustGet(t, "/")); got != "b" {
		t.Errorf("a new connection was served by %q, want b", got)
	}
}

// TestEstablishedConnectionSurvives: changes that keep a connection's
// endpoint do not touch it; once its endpoint leaves, the idle connection
// does not hold up the drain, and it is closed when its client starts a new
// request (which a new connection then carries to a current endpoint).
func TestEstablishedConnectionSurvives(t *testing.T) {
	p := newProxy(t)
	vip, other := freeVIP(t), freeVIP(t)
	a, b := startBackend(t, "a"), startBackend(t, "b")
	mustApply(t, p, oneService(vip, a.addr))
	c := dial(t, vip)
	first := c.mustGet(t, "/")
	if servedBy(first) != "a" {
		t.Fatalf("served by %q, want a", first)
	}
	unrelated := []Table{
		{Services: append(oneService(vip, a.addr).Services, Service{Key: "default/other", VIP: other.Addr(), Ports: []Port{{Port: other.Port(), Endpoints: []netip.AddrPort{b.addr}}}})},
		oneService(vip, a.addr, b.addr),
		oneService(vip, a.addr),
	}
	for i, tb := range unrelated {
		mustApply(t, p, tb)
		if got := c.mustGet(t, "/"); got != first {
			t.Fatalf("after unrelated change %d the connection got %q, want %q (same backend, same connection)", i, got, first)
		}
	}

	mustApply(t, p, oneService(vip, b.addr)) // a leaves
	if got := servedBy(dial(t, vip).mustGet(t, "/")); got != "b" {
		t.Errorf("a new connection went to %q, want b", got)
	}
	if n := p.Active(a.addr); n != 1 {
		t.Errorf("Active(a) = %d, want 1 (the idle connection stays open)", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitDrained(ctx, a.addr); err != nil {
		t.Errorf("WaitDrained with only an idle keep-alive connection open: %v", err)
	}
	if body, err := c.get("/"); err == nil {
		t.Fatalf("a new request on the connection to the leaving endpoint was passed on (%q); want the connection closed", body)
	}
	before := a.requests.Load()
	waitFor(t, "a's connection closed", func() bool { return p.Active(a.addr) == 0 })
	if a.requests.Load() != before {
		t.Error("the leaving endpoint received the new request")
	}
}

// TestWaitDrainedWaitsForARequestInFlight: a connection whose client sent
// a request not yet answered is in flight until the answer has gone back.
func TestWaitDrainedWaitsForARequestInFlight(t *testing.T) {
	p := New(Options{DialTimeout: time.Second, DrainQuiet: 20 * time.Millisecond})
	t.Cleanup(func() { p.Close() })
	vip := freeVIP(t)
	release := make(chan struct{})
	arrived := make(chan struct{})
	ln, err := net.Listen("tcp", backendIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		<-release
		fmt.Fprint(w, "slow")
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	ep := netip.MustParseAddrPort(ln.Addr().String())
	mustApply(t, p, oneService(vip, ep))
	c := dial(t, vip)
	got := make(chan string, 1)
	go func() { body, _ := c.get("/"); got <- body }()
	<-arrived
	mustApply(t, p, Table{}) // the endpoint leaves; its request is still running

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = p.WaitDrained(ctx, ep)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still has 1 connections in flight") {
		t.Fatalf("WaitDrained while a request is unanswered = %v, want a deadline error naming 1 connection in flight", err)
	}
	// By address, whatever the port: what the node agent asks.
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = p.WaitDrainedIP(ctx, ep.Addr())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still have 1 connections in flight") {
		t.Fatalf("WaitDrainedIP while a request is unanswered = %v, want a deadline error naming 1 connection in flight", err)
	}
	close(release)
	if body := <-got; body != "slow" {
		t.Fatalf("the request in flight got %q", body)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.WaitDrained(ctx, ep); err != nil {
		t.Fatalf("WaitDrained after the answer went back: %v", err)
	}
	if err := p.WaitDrainedIP(ctx, ep.Addr()); err != nil {
		t.Fatalf("WaitDrainedIP after the answer went back: %v", err)
	}
}

// TestHalfClose: a client that shuts down its write side after the request
// still receives the whole response.
func TestHalfClose(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	a := startBackend(t, "a")
	mustApply(t, p, oneService(vip, a.addr))
	c, err := net.Dial("tcp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.1 200 OK") || !strings.Contains(string(resp), "\r\n\r\na ") {
		t.Errorf("response after half-close = %q", resp)
	}
}

// TestListenerKeptAcrossApplies: a VIP:port in every table keeps its very
// listener (never closed and reopened) through 100 Applies.
func TestListenerKeptAcrossApplies(t *testing.T) {
	p := newProxy(t)
	vip, other := freeVIP(t), freeVIP(t)
	a, b := startBackend(t, "a"), startBackend(t, "b")
	mustApply(t, p, oneService(vip, a.addr))
	p.applyMu.Lock()
	ln := p.listeners[vip].ln
	p.applyMu.Unlock()
	held := dial(t, vip)
	held.mustGet(t, "/")
	for i := range 100 {
		tb := oneService(vip, a.addr, b.addr)
		if i%2 == 1 {
			tb = oneService(vip, b.addr)
			tb.Services = append(tb.Services, Service{Key: "default/other", VIP: other.Addr(), Ports: []Port{{Port: other.Port(), Endpoints: []netip.AddrPort{a.addr}}}})
		}
		mustApply(t, p, tb)
		p.applyMu.Lock()
		got := p.listeners[vip]
		_, otherOpen := p.listeners[other]
		p.applyMu.Unlock()
		if got == nil || got.ln != ln {
			t.Fatalf("apply %d: the listener of %s was replaced", i, vip)
		}
		if otherOpen != (i%2 == 1) {
			t.Fatalf("apply %d: listener of the other service open = %v", i, otherOpen)
		}
		if i%10 == 0 {
			if _, err := dial(t, vip).get("/"); err != nil {
				t.Fatalf("apply %d: new connection failed: %v", i, err)
			}
		}
	}
	if _, err := held.get("/"); err != nil {
		t.Errorf("connection held across 100 applies: %v", err)
	}
	// A VIP:port that is gone is closed: connections are refused.
	mustApply(t, p, Table{})
	if c, err := net.DialTimeout("tcp", vip.String(), time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after its service was removed", vip)
	}
}

// TestRefusedEndpointSkipped: an endpoint that refuses connections is
// skipped; the client never notices while another endpoint answers.
func TestRefusedEndpointSkipped(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	ln, err := net.Listen("tcp", backendIP()+":0")
	if err != nil {
		t.Fatal(err)
	}
	refused := netip.MustParseAddrPort(ln.Addr().String())
	ln.Close()
	a := startBackend(t, "a")
	mustApply(t, p, oneService(vip, refused, a.addr))
	for i := range 20 {
		c := dial(t, vip)
		body, err := c.get("/")
		if err != nil || servedBy(body) != "a" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
		c.c.Close()
	}
	waitFor(t, "connections released", func() bool { return p.Active(a.addr) == 0 })
	if n := p.Active(refused); n != 0 {
		t.Errorf("Active(refused) = %d, want 0", n)
	}
	// With only the refusing endpoint, the client sees its connection closed.
	mustApply(t, p, oneService(vip, refused))
	if _, err := dial(t, vip).get("/"); err == nil {
		t.Errorf("request with no reachable endpoint succeeded")
	}
}

// TestWaitDrained: WaitDrained returns only once the endpoint has left the
// table and its last connection has closed.
func TestWaitDrained(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	a, b := startBackend(t, "a"), startBackend(t, "b")
	mustApply(t, p, oneService(vip, a.addr))
	c1, c2 := dial(t, vip), dial(t, vip)
	c1.mustGet(t, "/")
	c2.mustGet(t, "/")

	done := make(chan error, 1)
	go func() { done <- p.WaitDrained(context.Background(), a.addr) }()
	mustApply(t, p, oneService(vip, b.addr))
	c1.c.Close()
	waitFor(t, "one connection left", func() bool { return p.Active(a.addr) == 1 })
	select {
	case err := <-done:
		t.Fatalf("WaitDrained returned %v with a connection still open", err)
	default:
	}
	c2.c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitDrained = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitDrained did not return after the last connection closed")
	}
	if n := p.Active(a.addr); n != 0 {
		t.Errorf("Active after drain = %d", n)
	}

	// An endpoint still in the table is not drained, even with no connection.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.WaitDrained(ctx, b.addr); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "still in the service table") {
		t.Errorf("WaitDrained of an endpoint in the table = %v", err)
	}
}

// TestApplyReportsBadEntries: UDP and invalid entries are reported by name
// while the valid rest of the table is served.
func TestApplyReportsBadEntries(t *testing.T) {
	p := newProxy(t)
	vip := freeVIP(t)
	a := startBackend(t, "a")
	tb := oneService(vip, a.addr)
	tb.Services[0].Ports = append(tb.Services[0].Ports,
		Port{Port: 53, Protocol: "UDP", Endpoints: []netip.AddrPort{a.addr}},
		Port{Port: vip.Port(), Endpoints: []netip.AddrPort{a.addr}},
		Port{Port: 0, Endpoints: []netip.AddrPort{a.addr}},
	)
	tb.Services = append(tb.Services, Service{Key: "default/novip"})
	err := p.Apply(tb)
	want := []string{
		"service default/test port 53: protocol UDP is not supported by the service proxy (TCP only)",
		fmt.Sprintf("service default/test: %s is already served for service default/test", vip),
		"service default/test: port 0 is not a valid service port",
		`service default/novip: invalid VIP "invalid IP"`,
	}
	if err == nil {
		t.Fatal("Apply accepted a UDP port")
	}
	if diff := cmp.Diff(want, strings.Split(err.Error(), "\n")); diff != "" {
		t.Errorf("errors (-want +got):\n%s", diff)
	}
	if got := servedBy(dial(t, vip).mustGet(t, "/")); got != "a" {
		t.Errorf("the valid port is not served: %q", got)
	}
}

// TestClose: Close cuts connections and later Applies fail.
func TestClose(t *testing.T) {
	p := New(Options{})
	vip := freeVIP(t)
	a := startBackend(t, "a")
	mustApply(t, p, oneService(vip, a.addr))
	c := dial(t, vip)
	c.mustGet(t, "/")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get("/"); err == nil {
		t.Error("a connection survived Close")
	}
	if err := p.Apply(oneService(vip, a.addr)); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close = %v, want ErrClosed", err)
	}
	if conn, err := net.DialTimeout("tcp", vip.String(), time.Second); err == nil {
		conn.Close()
		t.Error("the listener survived Close")
	}
}

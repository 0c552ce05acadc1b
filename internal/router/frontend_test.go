package router_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"

	"github.com/google/go-cmp/cmp"
)

// bodyEcho is a real backend that counts requests and answers with what
// it received of the body and its framing.
type bodyEcho struct {
	addr netip.AddrPort
	hits atomic.Int64
}

func newBodyEcho(t testing.TB) *bodyEcho {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &bodyEcho{addr: netip.MustParseAddrPort(ln.Addr().String())}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		b, err := io.ReadAll(r.Body)
		w.Header().Set("X-Backend", "echo")
		if err != nil {
			w.WriteHeader(http.StatusTeapot) // the test sees the backend got a broken body
		}
		fmt.Fprintf(w, "%s %s cl=%d te=%v body=%q", r.Method, r.URL.Path, r.ContentLength, r.TransferEncoding, b)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return e
}

// serveFrontend serves a Router for host bad.test (bodies up to 16 bytes)
// and fuzz.test (no route limit) on a real listener.
func serveFrontend(t testing.TB, backend netip.AddrPort, opts std.ServerOptions) (string, *router.Router) {
	t.Helper()
	return serveFrontendOn(t, backend, opts, testEngine)
}

// serveFrontendOn is serveFrontend on engine.
func serveFrontendOn(t testing.TB, backend netip.AddrPort, opts std.ServerOptions, engine string) (string, *router.Router) {
	t.Helper()
	r := router.New(router.Options{})
	r.Apply(frontTable(t, backend))
	return serveEngine(t, r, opts, engine), r
}

// serveEngine serves r with the frontend (opts) and engine on a plain
// listener, or on the TLS listener when testTLS, and returns its address
// for dialFront ("tls://" and the address on TLS).
func serveEngine(t testing.TB, r *router.Router, opts std.ServerOptions, engine string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fopts := fast.Options{Engine: engine}
	serve, addr := (*fast.Server).Serve, ln.Addr().String()
	if testTLS {
		fopts.Certs = testCerts(t)
		serve, addr = (*fast.Server).ServeTLS, "tls://"+addr
	}
	s := fast.NewServer(std.NewServer(r, opts), fopts)
	done := make(chan error, 1)
	go func() { done <- serve(s, ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return addr
}

func frontTable(t testing.TB, backend netip.AddrPort) *router.Table {
	small := router.OneBackend("p/bad", "bad.test", "", backend.String())
	small.MaxBodyBytes = 16
	tb, errs := router.Build(router.Input{Routes: []router.RouteConfig{small, router.OneBackend("p/fuzz", "fuzz.test", "", backend.String())}})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return tb
}

// exchange writes raw to a new connection to addr, half-closes it when
// halfClose, and reads every response until the server closes the
// connection. net/http takes the half-close for the client leaving and
// cancels a request then in flight: use it only where none is proxied or
// where that is expected.
func exchange(t testing.TB, addr string, raw []byte, halfClose bool) ([]*http.Response, []string, error) {
	c := dialFront(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(raw); err != nil {
		return nil, nil, err
	}
	if halfClose {
		c.(interface{ CloseWrite() error }).CloseWrite()
	}
	br := bufio.NewReader(c)
	var resps []*http.Response
	var bodies []string
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			return resps, bodies, nil
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, bodies, err
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return resps, bodies, err
		}
		resps = append(resps, resp)
		bodies = append(bodies, string(b))
	}
}

func TestBadRequestCorpus(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{MaxHeaderBytes: 1024})
	files, err := filepath.Glob("testdata/badrequests/*.txt")
	if err != nil || len(files) < 15 {
		t.Fatalf("corpus: %d files, %v", len(files), err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			first, raw, _ := bytes.Cut(b, []byte("\n"))
			want, err := strconv.Atoi(string(first))
			if err != nil {
				t.Fatalf("first line %q: want the expected status", first)
			}
			before := be.hits.Load()
			resps, bodies, err := exchange(t, addr, raw, true)
			if err != nil {
				t.Fatalf("exchange: %v (responses %d)", err, len(resps))
			}
			if len(resps) != 1 {
				t.Fatalf("got %d responses %q, want exactly 1 and the connection closed", len(resps), bodies)
			}
			if resps[0].StatusCode != want || !resps[0].Close {
				t.Errorf("got %d (Connection: close %v) %q, want %d and close", resps[0].StatusCode, resps[0].Close, bodies[0], want)
			}
			if n := be.hits.Load() - before; n != 0 {
				t.Errorf("backend saw %d requests, want 0", n)
			}
		})
	}
}

// TestGoodFramingPasses proves the checks refuse only what they name:
// valid bodies of each framing, pipelined on one connection, all reach
// the backend intact.
func TestGoodFramingPasses(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{BufferBodyBytes: 8})
	long := strings.Repeat("x", 20)
	raw := "POST /cl HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 5\r\n\r\nhello" +
		"OPTIONS * HTTP/1.1\r\nHost: fuzz.test\r\n\r\n" +
		"POST /chunked HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n" +
		"POST /chunked-long HTTP/1.1\r\nHost: fuzz.test\r\nTransfer-Encoding: Chunked\r\n\r\n14\r\n" + long + "\r\n0\r\n\r\n" +
		"POST /limit HTTP/1.1\r\nHost: bad.test\r\nContent-Length: 16\r\n\r\n0123456789abcdef" +
		"GET /last HTTP/1.1\r\nHost: fuzz.test\r\nConnection: close\r\n\r\n"
	resps, bodies, err := exchange(t, addr, []byte(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, r := range resps {
		got = append(got, fmt.Sprintf("%d %s", r.StatusCode, bodies[i]))
	}
	want := []string{
		`200 POST /cl cl=5 te=[] body="hello"`,
		`200 `,
		`200 POST /chunked cl=5 te=[] body="abcde"`, // buffered whole, sent with a length
		`200 POST /chunked-long cl=-1 te=[chunked] body="` + long + `"`,
		`200 POST /limit cl=16 te=[] body="0123456789abcdef"`,
		`200 GET /last cl=0 te=[] body=""`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
	if n := be.hits.Load(); n != 5 {
		t.Errorf("backend hits = %d, want 5", n)
	}
}

// TestStreamedBodyOverLimit: a body longer than the buffer streams, and
// the route's cap still ends it with 413.
func TestStreamedBodyOverLimit(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{BufferBodyBytes: 4})
	raw := "POST / HTTP/1.1\r\nHost: bad.test\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n" + strings.Repeat("y", 32) + "\r\n0\r\n\r\n"
	resps, bodies, err := exchange(t, addr, []byte(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(resps) != 1 || resps[0].StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("got %d responses %q, want one 413", len(resps), bodies)
	}
}

func TestSlowHeaderIsCutOff(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{ReadHeaderTimeout: 200 * time.Millisecond})
	c := dialFront(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: fuzz.test\r\n") // and never the end of the head
	start := time.Now()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v after %v (want the server to close)", err, time.Since(start))
	}
	if len(b) != 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 408")) {
		t.Errorf("got %q, want nothing or a 408", b)
	}
	if be.hits.Load() != 0 {
		t.Errorf("backend hits = %d, want 0", be.hits.Load())
	}
}

func TestSlowBodyIsCutOff(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{BodyReadTimeout: 200 * time.Millisecond})
	c := dialFront(t, addr)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "POST / HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 10\r\n\r\nabc")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestTimeout || !resp.Close {
		t.Errorf("got %d close=%v, want 408 and close", resp.StatusCode, resp.Close)
	}
	if be.hits.Load() != 0 {
		t.Errorf("backend hits = %d, want 0", be.hits.Load())
	}
}

// TestShutdownIsGraceful: during Shutdown the listener stops accepting, an
// idle keep-alive connection is closed, and an in-flight request on a
// keep-alive connection completes with 200 and Connection: close.
func TestShutdownIsGraceful(t *testing.T) {
	u := newUpstream(t, "u")
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/s", "s.test", "", u.addr.String()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: testEngine})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	addr := ln.Addr().String()

	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c, bufio.NewReader(c)
	}
	roundTrip := func(c net.Conn, br *bufio.Reader, path string) *http.Response {
		t.Helper()
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: s.test\r\n\r\n", path)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	busy, busyR := dial()
	idle, idleR := dial()
	for _, c := range []struct {
		c  net.Conn
		br *bufio.Reader
	}{{busy, busyR}, {idle, idleR}} {
		if resp := roundTrip(c.c, c.br, "/"); resp.StatusCode != 200 || resp.Close {
			t.Fatalf("before shutdown: %d close=%v, want 200 keep-alive", resp.StatusCode, resp.Close)
		}
	}
	slow := make(chan *http.Response, 1)
	go func() {
		fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: s.test\r\n\r\n")
		resp, err := http.ReadResponse(busyR, nil)
		if err != nil {
			t.Errorf("slow request failed: %v", err)
			slow <- nil
			return
		}
		io.Copy(io.Discard, resp.Body)
		slow <- resp
	}()
	<-u.entered

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	waitFor(t, "the listener to stop accepting", func() bool {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if _, err := idleR.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle keep-alive connection: read %v, want EOF (closed by the server)", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	default:
	}
	close(u.block)
	resp := <-slow
	if resp == nil {
		t.FailNow()
	}
	if resp.StatusCode != 200 || !resp.Close {
		t.Errorf("in-flight request: %d close=%v, want 200 with Connection: close", resp.StatusCode, resp.Close)
	}
	if _, err := busyR.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("busy connection after its last response: read %v, want EOF", err)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

// TestShutdownDeadline: a request still running at the deadline does not
// hold Shutdown past it.
func TestShutdownDeadline(t *testing.T) {
	u := newUpstream(t, "u")
	t.Cleanup(func() { close(u.block) })
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/s", "s.test", "", u.addr.String()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: testEngine})
	go s.Serve(ln)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /slow HTTP/1.1\r\nHost: s.test\r\n\r\n")
	<-u.entered
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want DeadlineExceeded", err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Errorf("client connection: %v, want closed by the server", err)
	}
}

// TestServeTLS: the standard engine's TLS listener serves HTTP/1.1 and h2
// through the same checks, and the Router sees the connection as TLS.
func TestServeTLS(t *testing.T) {
	u := newUpstream(t, "u")
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/s", "s.test", "", u.addr.String()))
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS() // only for its certificate and a client that trusts it
	defer ts.Close()
	cfg := ts.TLS.Clone()
	cfg.NextProtos = []string{"h2", "http/1.1"} // as TLSConfig offers them
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := std.NewServer(r, std.ServerOptions{})
	served := make(chan error, 1)
	go func() { served <- s.ServeTLS(ln, cfg) }()
	client := ts.Client()
	client.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	resp, body, err := get(client, "https://"+ln.Addr().String(), "s.test", "/")
	if err != nil {
		t.Fatal(err)
	}
	var e echo
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("%d %q: %v", resp.StatusCode, body, err)
	}
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || e.Header.Get("X-Forwarded-Proto") != "https" {
		t.Errorf("got %d over %s with X-Forwarded-Proto %q, want 200 over HTTP/2 (chosen by ALPN) and https", resp.StatusCode, resp.Proto, e.Header.Get("X-Forwarded-Proto"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeTLS: %v", err)
	}
}

// TestRefusalAfterOptionsStar: net/http answers "OPTIONS *" without the
// handler; the refusal still lands on the bad request that follows.
func TestRefusalAfterOptionsStar(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFrontend(t, be.addr, std.ServerOptions{})
	raw := "OPTIONS * HTTP/1.1\r\nHost: fuzz.test\r\n\r\n" +
		"GET / HTTP/1.1\r\nHost: fuzz.test\r\nFoo: x\r\n y\r\n\r\n"
	resps, bodies, err := exchange(t, addr, []byte(raw), true)
	if err != nil {
		t.Fatal(err)
	}
	var got []int
	for _, r := range resps {
		got = append(got, r.StatusCode)
	}
	if diff := cmp.Diff([]int{200, 400}, got); diff != "" {
		t.Errorf("statuses (-want +got):\n%s\nbodies %q", diff, bodies)
	}
	if n := be.hits.Load(); n != 0 {
		t.Errorf("backend hits = %d, want 0", n)
	}
}

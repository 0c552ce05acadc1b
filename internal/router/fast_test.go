package router_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"

	"github.com/google/go-cmp/cmp"
)

// fastBackend is a real upstream whose handler the test chooses.
func fastBackend(t *testing.T, h http.HandlerFunc, mod ...func(*http.Server)) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	for _, m := range mod {
		m(srv)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// serveFast serves a Router with one route for host to backend on the fast
// engine and returns the listener's address and the Router.
func serveFast(t *testing.T, host string, backend netip.AddrPort, opts std.ServerOptions) (string, *router.Router) {
	t.Helper()
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/f", host, "", backend.String()))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := fast.NewServer(std.NewServer(r, opts), fast.Options{Engine: fast.EngineFast})
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String(), r
}

// TestFastEngineResponseFramings: each way an upstream frames its answer
// reaches the client whole, with the router's own framing where needed,
// hop-by-hop headers removed, a Date added when the app sent none, and
// the client connection kept.
func TestFastEngineResponseFramings(t *testing.T) {
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "part1,")
			w.(http.Flusher).Flush()
			io.WriteString(w, "part2")
			w.Header().Set("X-Sum", "42")
		case "/close":
			// An HTTP/1.0-style answer: no length, ends when the app closes.
			c, brw, _ := http.NewResponseController(w).Hijack()
			brw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\nX-App: 1\r\n\r\nuntil-close")
			brw.Flush()
			c.Close()
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/hints":
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "after hints")
		case "/head":
			w.Header().Set("Content-Length", "11")
		case "/split":
			// The head arrives in two reads.
			c, brw, _ := http.NewResponseController(w).Hijack()
			defer c.Close()
			brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Part: ")
			brw.Flush()
			time.Sleep(20 * time.Millisecond) // not synchronisation: the gap under test
			brw.WriteString("2\r\n\r\nsplit")
			brw.Flush()
		case "/bighead":
			// A head larger than the upstream read buffer.
			w.Header().Set("X-Big", strings.Repeat("b", 10000))
			io.WriteString(w, "big")
		}
	})
	addr, _ := serveFast(t, "f.test", be, std.ServerOptions{})
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	var got []string
	for _, tc := range []struct{ method, path string }{
		{"GET", "/length"}, {"GET", "/chunked"}, {"GET", "/close"}, {"GET", "/empty"}, {"GET", "/hints"}, {"HEAD", "/head"}, {"GET", "/split"}, {"GET", "/bighead"}, {"GET", "/length"},
	} {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
		req.Host = "f.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.method, tc.path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("%s %s: body: %v", tc.method, tc.path, err)
		}
		line := fmt.Sprintf("%s %s: %d %q len=%d te=%v trailer=%q date=%v close=%v", tc.method, tc.path, resp.StatusCode, b,
			resp.ContentLength, resp.TransferEncoding, resp.Trailer.Get("X-Sum"), resp.Header.Get("Date") != "", resp.Close)
		if big := resp.Header.Get("X-Big"); big != "" {
			line += fmt.Sprintf(" x-big=%d", len(big))
		}
		got = append(got, line)
	}
	want := []string{
		`GET /length: 200 "hello" len=5 te=[] trailer="" date=true close=false`,
		`GET /chunked: 200 "part1,part2" len=-1 te=[chunked] trailer="42" date=true close=false`,
		`GET /close: 200 "until-close" len=-1 te=[chunked] trailer="" date=true close=false`,
		`GET /empty: 204 "" len=0 te=[] trailer="" date=true close=false`,
		`GET /hints: 200 "after hints" len=11 te=[] trailer="" date=true close=false`,
		`HEAD /head: 200 "" len=11 te=[] trailer="" date=true close=false`,
		`GET /split: 200 "split" len=5 te=[] trailer="" date=true close=false`,
		`GET /bighead: 200 "big" len=3 te=[] trailer="" date=true close=false x-big=10000`,
		`GET /length: 200 "hello" len=5 te=[] trailer="" date=true close=false`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("responses (-want +got):\n%s", d)
	}
}

// TestFastEngineStreamsUnbuffered: a streamed answer reaches the client
// piece by piece; the backend sends its second event only once the client
// has read the first, so a router holding the stream back would hang.
func TestFastEngineStreamsUnbuffered(t *testing.T) {
	read := make(chan struct{})
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			return
		}
		io.WriteString(w, "data: 2\n\n")
	})
	addr, _ := serveFast(t, "f.test", be, std.ServerOptions{})
	req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
	req.Host = "f.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || first != "data: 1\n" {
		t.Fatalf("first event: %q %v", first, err)
	}
	close(read)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: 2\n\n" {
		t.Fatalf("rest: %q %v", rest, err)
	}
}

// TestFastEngineHandsOff: what the fast engine does not serve itself
// reaches the standard engine on the same connection and is served there:
// a WebSocket upgrade (bytes then flow both ways), HTTP/1.0, a body sent
// after "Expect: 100-continue", a chunked request body.
func TestFastEngineHandsOff(t *testing.T) {
	var hits atomic.Int64
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Upgrade") == "websocket" {
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
			line, _ := brw.ReadString('\n')
			brw.WriteString("echo " + line)
			brw.Flush()
			return
		}
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %q", r.Method, r.Proto, b)
	})
	addr, _ := serveFast(t, "f.test", be, std.ServerOptions{})

	t.Run("websocket", func(t *testing.T) {
		before := hits.Load()
		defer func() {
			if n := hits.Load() - before; n != 1 {
				t.Errorf("backend hits = %d, want 1", n)
			}
		}()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: f.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		io.WriteString(c, "ping\n")
		line, err := br.ReadString('\n')
		if err != nil || line != "echo ping\n" {
			t.Fatalf("after the upgrade: %q %v", line, err)
		}
	})
	for _, tc := range []struct{ name, raw, want string }{
		{"http/1.0", "GET /old HTTP/1.0\r\nHost: f.test\r\n\r\n", `200 GET HTTP/1.1 ""`},
		{"expect 100-continue", "POST /e HTTP/1.1\r\nHost: f.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc", `200 POST HTTP/1.1 "abc"`},
		{"chunked body", "POST /c HTTP/1.1\r\nHost: f.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n", `200 POST HTTP/1.1 "abc"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := hits.Load()
			resps, bodies, err := exchange(t, addr, []byte(tc.raw), false)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, r := range resps {
				if r.StatusCode != http.StatusContinue {
					got = append(got, fmt.Sprintf("%d %s", r.StatusCode, bodies[i]))
				}
			}
			if d := cmp.Diff([]string{tc.want}, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if n := hits.Load() - before; n != 1 {
				t.Errorf("backend hits = %d, want 1", n)
			}
		})
	}
}

// TestFastEngineSplitRequestHead: a request head and body that arrive in
// pieces are read whole.
func TestFastEngineSplitRequestHead(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFast(t, "f.test", be.addr, std.ServerOptions{})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	for _, parts := range [][]string{
		{"POST /a HTTP/1.1\r\nHo", "st: f.test\r\nContent-Length: 4\r", "\n\r\nab", "cd"},
		{"GET /b HTTP/1.1\r\nHost: f.test\r\n\r", "\n"},
	} {
		for _, p := range parts {
			io.WriteString(c, p)
			time.Sleep(10 * time.Millisecond) // not synchronisation: the gaps under test
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasSuffix(string(b), `body="abcd"`) && !strings.HasPrefix(string(b), "GET /b") {
			t.Errorf("%q: %d %q", parts, resp.StatusCode, b)
		}
	}
}

// TestFastEnginePipelining: requests sent back to back on one connection
// are answered in order, bodies intact.
func TestFastEnginePipelining(t *testing.T) {
	be := newBodyEcho(t)
	addr, _ := serveFast(t, "f.test", be.addr, std.ServerOptions{})
	raw := "GET /1 HTTP/1.1\r\nHost: f.test\r\n\r\n" +
		"POST /2 HTTP/1.1\r\nHost: f.test\r\nContent-Length: 5\r\n\r\nhello" +
		"GET /3?q=1 HTTP/1.1\r\nHost: F.TEST:80\r\n\r\n" +
		"GET /4 HTTP/1.1\r\nHost: f.test\r\nConnection: close\r\n\r\n"
	resps, bodies, err := exchange(t, addr, []byte(raw), false)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i, r := range resps {
		got = append(got, fmt.Sprintf("%d %s", r.StatusCode, bodies[i]))
	}
	want := []string{
		`200 GET /1 cl=0 te=[] body=""`,
		`200 POST /2 cl=5 te=[] body="hello"`,
		`200 GET /3 cl=0 te=[] body=""`,
		`200 GET /4 cl=0 te=[] body=""`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !resps[len(resps)-1].Close {
		t.Errorf("last response lacks Connection: close")
	}
}

// TestFastEngineStalePooledConnection: the app closes idle keep-alive
// connections sooner than the router's pool would (its keep-alive timeout
// shorter than the pool's idle timeout). Each request is sent only once
// the app has closed the connection the last one used: none fails, GET or
// POST.
func TestFastEngineStalePooledConnection(t *testing.T) {
	var closed atomic.Int64
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.Method, b)
	}, func(s *http.Server) {
		s.IdleTimeout = 150 * time.Millisecond
		s.ConnState = func(_ net.Conn, st http.ConnState) {
			if st == http.StateClosed {
				closed.Add(1)
			}
		}
	})
	addr, r := serveFast(t, "f.test", be, std.ServerOptions{})
	c := &http.Client{}
	for i := range 20 {
		method, body := "GET", ""
		if i%2 == 1 {
			method, body = "POST", "n="+strconv.Itoa(i)
		}
		req, _ := http.NewRequest(method, "http://"+addr+"/", strings.NewReader(body))
		req.Host = "f.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != method+" "+body {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
		want := int64(i + 1)
		waitFor(t, "the app to close its idle connection", func() bool { return closed.Load() >= want })
	}
	st, _ := r.Stats("p/f")
	if st.Total.UpstreamErrors != 0 || st.Total.Requests[2] != 20 {
		t.Errorf("stats: %d upstream errors, %d 2xx; want 0 and 20", st.Total.UpstreamErrors, st.Total.Requests[2])
	}
}

// TestFastEngineInsecurePolicy: plain requests for TLS routes go through
// the Handler (InsecurePolicy) on the standard engine; others stay fast.
func TestFastEngineInsecurePolicy(t *testing.T) {
	u := newUpstream(t, "u")
	r := router.New(router.Options{})
	apply(t, r,
		router.OneBackend("p/r", "r.test", "", u.addr.String()),
		router.OneBackend("p/n", "n.test", "", u.addr.String()),
		router.OneBackend("p/a", "a.test", "", u.addr.String()),
		router.OneBackend("p/plain", "plain.test", "", u.addr.String()))
	certs := router.NewCerts()
	certs.Apply(router.TLSInput{Routes: []router.TLSRoute{
		{Key: "p/r", Host: "r.test", Insecure: router.InsecureRedirect},
		{Key: "p/n", Host: "n.test", Insecure: router.InsecureNone},
		{Key: "p/a", Host: "a.test", Insecure: router.InsecureAllow},
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := fast.NewServer(std.NewServer(r, std.ServerOptions{Handler: std.InsecurePolicy(std.NewHandler(r), r, certs, 8443)}), fast.Options{Engine: fast.EngineFast, Certs: certs})
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	got := map[string]string{}
	for _, host := range []string{"r.test", "n.test", "a.test", "plain.test"} {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/x?y=1", nil)
		req.Host = host
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got[host] = strconv.Itoa(resp.StatusCode) + " " + resp.Header.Get("Location") + resp.Header.Get("X-Upstream")
	}
	want := map[string]string{
		"r.test":     "301 https://r.test:8443/x?y=1",
		"n.test":     "404 ",
		"a.test":     "200 u",
		"plain.test": "200 u",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

// TestFastEngineAndStdAgree sends the same requests through both engines
// and compares what the upstream received and what the client got back
// (headers the engines may legitimately differ on aside).
func TestFastEngineAndStdAgree(t *testing.T) {
	u := newUpstream(t, "u")
	results := map[string][]string{}
	for _, engine := range []string{fast.EngineStd, fast.EngineFast} {
		r := router.New(router.Options{})
		apply(t, r, router.RouteConfig{Key: "p/m", Host: "m.test", Affinity: router.Affinity{CookieName: "sw"},
			Match:    []router.MatchRule{{Kind: router.MatchHeader, Name: "X-Canary", Value: "always", Backend: 0}},
			Backends: []router.BackendConfig{{Service: "p/u", Weight: 1, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{u.addr}}}}}})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: engine})
		go s.Serve(ln)
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s.Shutdown(ctx)
		}()
		raw := "GET /p/a%20b?q=1&q=2 HTTP/1.1\r\nHost: m.test\r\nX-Canary: always\r\nCookie: a=1; sw=zz\r\nX-Multi: 1\r\nX-Multi: 2\r\nConnection: keep-alive, X-Drop\r\nX-Drop: d\r\nTe: trailers, deflate\r\n\r\n" +
			"POST /form HTTP/1.1\r\nHost: m.test\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
		resps, bodies, err := exchange(t, ln.Addr().String(), []byte(raw), false)
		if err != nil {
			t.Fatal(err)
		}
		for i, resp := range resps {
			var e echo
			if err := json.Unmarshal([]byte(bodies[i]), &e); err != nil {
				t.Fatalf("%s: %q: %v", engine, bodies[i], err)
			}
			delete(e.Header, "Accept-Encoding")
			// Each engine is on its own listener: the port it reports is
			// its own, the rest must agree.
			if _, port, _ := net.SplitHostPort(ln.Addr().String()); e.Header.Get("X-Forwarded-Port") != port {
				t.Errorf("%s: X-Forwarded-Port %q, want the listener's %s", engine, e.Header.Get("X-Forwarded-Port"), port)
			}
			e.Header["X-Forwarded-Port"] = []string{"the listener's"}
			cookies := resp.Header.Values("Set-Cookie")
			results[engine] = append(results[engine], fmt.Sprintf("%d host=%s header=%v set-cookie=%d keep-alive=%q", resp.StatusCode, e.Host, e.Header, len(cookies), resp.Header.Get("Keep-Alive")))
		}
	}
	if d := cmp.Diff(results[fast.EngineStd], results[fast.EngineFast]); d != "" {
		t.Errorf("std (-) and fast (+) differ:\n%s", d)
	}
}

// TestFastEngineUnderChurnWithNewConnections is the load test on the fast
// engine with more connection churn than TestNoFailedRequestUnderChurn:
// besides 64 keep-alive clients, 4 clients open a new connection per
// request, while the table flips weights and endpoints come and go.
func TestFastEngineUnderChurnWithNewConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("load test")
	}
	ups := []*upstream{newUpstream(t, "x0"), newUpstream(t, "y0")}
	r := router.New(router.Options{})
	addr, _ := func() (string, *router.Router) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return serveFastEngine(t, r, ln)[len("http://"):], r
	}()
	var mu sync.Mutex
	set := func(flip bool, eps []*upstream) {
		rc := router.RouteConfig{Key: "p/c", Host: "c.test"}
		half := len(eps) / 2
		for i, group := range [][]*upstream{eps[:half], eps[half:]} {
			w := int32(100)
			if flip == (i == 0) {
				w = 0
			}
			var as []netip.AddrPort
			for _, u := range group {
				as = append(as, u.addr)
			}
			rc.Backends = append(rc.Backends, router.BackendConfig{Service: fmt.Sprintf("p/s%d", i), Weight: w, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: as}}})
		}
		apply(t, r, rc)
	}
	set(false, ups)
	ctx, stop := context.WithTimeout(context.Background(), 3*time.Second)
	defer stop()
	var ok, failed atomic.Int64
	client := func(c *http.Client) {
		for ctx.Err() == nil {
			req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
			req.Host = "c.test"
			resp, err := c.Do(req)
			if err != nil {
				if failed.Add(1) <= 3 {
					t.Errorf("request: %v", err)
				}
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !strings.Contains(string(body), `"X-Forwarded-For":["127.0.0.1"]`) {
				if failed.Add(1) <= 3 {
					t.Errorf("response: %d %q %v", resp.StatusCode, body, err)
				}
				continue
			}
			ok.Add(1)
		}
	}
	var wg sync.WaitGroup
	keep := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer keep.CloseIdleConnections()
	for range 64 {
		wg.Go(func() { client(keep) })
	}
	for range 4 {
		wg.Go(func() { client(&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}) })
	}
	var drains sync.WaitGroup
	flip := false
	for i := 0; ctx.Err() == nil; i++ {
		mu.Lock()
		flip = !flip
		ups = append(ups, newUpstream(t, fmt.Sprintf("n%d", i)))
		var gone *upstream
		if len(ups) > 4 {
			gone, ups = ups[0], ups[1:]
		}
		set(flip, ups)
		mu.Unlock()
		if gone != nil {
			drains.Go(func() {
				dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := r.WaitDrained(dctx, gone.addr); err != nil {
					t.Errorf("WaitDrained: %v", err)
				}
				gone.shutdown(t)
			})
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	wg.Wait()
	drains.Wait()
	t.Logf("%d requests answered, %d failed", ok.Load(), failed.Load())
	if failed.Load() != 0 || ok.Load() < 500 {
		t.Fatalf("%d failed of %d", failed.Load(), ok.Load()+failed.Load())
	}
}

// TestFastEngineClientGoneMidAnswer: a client that leaves while a long
// answer is relayed leaves the rest of it unread on the upstream
// connection, which must then not serve another request.
func TestFastEngineClientGoneMidAnswer(t *testing.T) {
	big := strings.Repeat("x", 16<<20)
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, "small")
	})
	addr, _ := serveFast(t, "f.test", be, std.ServerOptions{})
	c := &http.Client{}
	for i := range 5 {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, "GET /big HTTP/1.1\r\nHost: f.test\r\n\r\n")
		var b [1024]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil {
			t.Fatal(err)
		}
		conn.Close() // with most of the answer unread
		req, _ := http.NewRequest("GET", "http://"+addr+"/small", nil)
		req.Host = "f.test"
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "small" {
			t.Fatalf("round %d: %d %q", i, resp.StatusCode, body)
		}
	}
}

// TestFastEngineReplaysBufferedPost: behind a Server the frontend holds a
// small body, so a POST that reached an endpoint which then dropped the
// connection is sent again, once, as the standard engine does: the
// client gets 200 from the other endpoint, and the retry is counted.
func TestFastEngineReplaysBufferedPost(t *testing.T) {
	good := newUpstream(t, "good")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	breaker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		io.Copy(io.Discard, req.Body)
		dropped.Add(1)
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	})}
	go breaker.Serve(ln)
	t.Cleanup(func() { breaker.Close() })
	for _, engine := range []string{fast.EngineStd, fast.EngineFast} {
		t.Run(engine, func(t *testing.T) {
			r := router.New(router.Options{})
			lnf, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: engine})
			go s.Serve(lnf)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				s.Shutdown(ctx)
			})
			apply(t, r, router.OneBackend("p/x", "x.test", "", good.addr.String(), ln.Addr().String()))
			before := dropped.Load()
			for i := range 40 {
				req, _ := http.NewRequest("POST", "http://"+lnf.Addr().String()+"/", strings.NewReader("order"))
				req.Host = "x.test"
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Fatalf("request %d: status %d", i, resp.StatusCode)
				}
			}
			var st router.RouteStats
			waitFor(t, "40 requests counted", func() bool { st, _ = r.Stats("p/x"); return st.Total.Total() == 40 })
			if n := dropped.Load() - before; n == 0 || st.Total.Retries != n {
				t.Errorf("breaker dropped %d, retries %d: want one retry per drop, and some", n, st.Total.Retries)
			}
		})
	}
}

// TestFastEngineWaitsWithoutLosingBytes: between requests the fast engine
// waits for the poller's word rather than read (driveRaw). A request that
// arrives while the previous one is being served, an idle spell longer
// than that wait's glance, and a client that half-closes after its
// request are each seen at once, long before the idle timeout.
func TestFastEngineWaitsWithoutLosingBytes(t *testing.T) {
	started, release := make(chan struct{}, 1), make(chan struct{})
	be := fastBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, r.URL.Path)
	})
	addr, _ := serveFast(t, "f.test", be, std.ServerOptions{IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute})
	dial := func() (net.Conn, *bufio.Reader) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(5 * time.Second)) // far below the idle timeout
		return c, bufio.NewReader(c)
	}
	get := func(c net.Conn, path string) {
		if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: f.test\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
	}
	expect := func(br *bufio.Reader, path string) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer to %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != path {
			t.Fatalf("answer to %s: %d %q", path, resp.StatusCode, b)
		}
	}

	// The second request is in the router's socket while the first is
	// served (loopback delivers it within the write).
	c, br := dial()
	get(c, "/hold")
	<-started
	get(c, "/second")
	close(release)
	expect(br, "/hold")
	expect(br, "/second")

	// Idle for longer than the glance, then another request.
	time.Sleep(3 * fast.IdleGlance) // the idle spell under test, not synchronisation
	get(c, "/after-idle")
	expect(br, "/after-idle")

	// A half-close with the request: the answer, then the close.
	c2, br2 := dial()
	get(c2, "/last")
	c2.(*net.TCPConn).CloseWrite()
	expect(br2, "/last")
	if _, err := br2.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after a half-close: %v, want EOF well before the idle timeout", err)
	}
}

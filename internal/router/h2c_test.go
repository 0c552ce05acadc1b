package router_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// TestH2CPriorKnowledge: an HTTP/2 client speaking cleartext with prior
// knowledge (h2c, as gRPC and curl --http2-prior-knowledge do) is served
// on the plain listener by both engines: concurrent streams on one
// connection, bodies both ways, forwarded to the app as HTTP/1.1, and a
// route's body limit enforced on HTTP/2 too (413, never proxied).
func TestH2CPriorKnowledge(t *testing.T) {
	for _, engine := range []string{fast.EngineFast, fast.EngineStd} {
		t.Run(engine, func(t *testing.T) {
			be := newBodyEcho(t)
			addr, _ := serveFrontendOn(t, be.addr, std.ServerOptions{}, engine)
			var protos http.Protocols
			protos.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &protos}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr, Timeout: 10 * time.Second}

			var wg sync.WaitGroup
			errs := make(chan error, 40)
			for i := range 40 {
				wg.Go(func() {
					body := strings.Repeat("x", i)
					req, _ := http.NewRequest("POST", fmt.Sprintf("http://%s/h2/%d", addr, i), strings.NewReader(body))
					req.Host = "fuzz.test"
					resp, err := c.Do(req)
					if err != nil {
						errs <- err
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					want := fmt.Sprintf("POST /h2/%d cl=%d te=[] body=%q", i, i, body)
					if resp.ProtoMajor != 2 || resp.StatusCode != 200 || string(b) != want || resp.Header.Get("X-Backend") != "echo" {
						errs <- fmt.Errorf("request %d: HTTP/%d %d %q, want HTTP/2 200 %q", i, resp.ProtoMajor, resp.StatusCode, b, want)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			before := be.hits.Load()
			// Over the route's 16-byte limit on bad.test: refused, not proxied.
			req, _ := http.NewRequest("POST", "http://"+addr+"/big", strings.NewReader(strings.Repeat("y", 64)))
			req.Host = "bad.test"
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Errorf("oversized body over h2c: HTTP/%d %d, want HTTP/2 413", resp.ProtoMajor, resp.StatusCode)
			}
			if got := be.hits.Load() - before; got != 0 {
				t.Errorf("the backend saw %d requests of the refused body", got)
			}
		})
	}
}

// TestH2CShutdownSendsGOAWAY: as on the HTTPS server, an h2c client with a
// request in flight gets a GOAWAY, then its answer, when the plain
// listener shuts down; with each engine (the fast one hands h2c over).
func TestH2CShutdownSendsGOAWAY(t *testing.T) {
	for _, engine := range []string{fast.EngineFast, fast.EngineStd} {
		t.Run(engine, func(t *testing.T) {
			u := newUpstream(t, "u")
			r := router.New(router.Options{})
			apply(t, r, router.OneBackend("p/h2c", "h2c.test", "", u.addr.String()))
			s := fast.NewServer(std.NewServer(r, std.ServerOptions{}), fast.Options{Engine: engine})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go s.Serve(ln)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			shutdownSendsGOAWAY(t, c, u, "http", "h2c.test", s.Shutdown)
		})
	}
}

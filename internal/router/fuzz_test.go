package router_test

import (
	"bytes"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// FuzzRouterRequest writes arbitrary bytes to a real frontend on loopback
// in front of a healthy counting backend. Whatever the bytes: the
// connection ends within the deadline, the router answers no 5xx of its
// own (501 and 505 are net/http's protocol answers for unknown
// transfer-codings and versions), and when it refused a request
// (400/408/413/431) the backend saw no request that did not get its own
// answer back to the client (or an answer dropped because the client
// half-closed, see below).
func FuzzRouterRequest(f *testing.F) { fuzzRouterRequest(f) }

// FuzzRouterRequestTLS is FuzzRouterRequest on the fast engine's TLS
// listener: the same bytes, decrypted, get the same answers.
func FuzzRouterRequestTLS(f *testing.F) {
	testTLS = true
	f.Cleanup(func() { testTLS = false })
	fuzzRouterRequest(f)
}

func fuzzRouterRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/badrequests/*.txt")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		_, raw, _ := bytes.Cut(b, []byte("\n"))
		f.Add(raw)
	}
	f.Add([]byte("GET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: fuzz.test\r\nContent-Length: 3\r\n\r\nabcGET /y HTTP/1.1\r\nHost: fuzz.test\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: bad.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: fuzz.test\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: fuzz.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))

	// The fast engine: it hands what it does not serve to the standard one,
	// so both are fuzzed.
	addr, r := serveFrontendOn(f, newBodyEcho(f).addr, std.ServerOptions{MaxHeaderBytes: 2048}, fast.EngineFast)
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A backend of its own: a request of an earlier input, cancelled
		// by its half-close, may still arrive at that input's backend.
		be := newBodyEcho(t)
		r.Apply(frontTable(t, be.addr))
		before := be.hits.Load()
		resps, bodies, err := exchange(t, addr, raw, true)
		if err != nil && isTimeout(err) {
			t.Fatalf("connection hung: %v after %d responses", err, len(resps))
		}
		fromBackend, dropped, refused := 0, 0, false
		for i, r := range resps {
			if r.Header.Get("X-Backend") != "" {
				fromBackend++
				continue
			}
			if r.StatusCode == http.StatusOK && bodies[i] == "" {
				// The half-close reads as the client leaving; net/http
				// cancels the request in flight, whose answer is dropped
				// and replaced by an empty 200, whether or not it
				// reached the backend.
				dropped++
				continue
			}
			switch r.StatusCode {
			case http.StatusBadRequest, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusRequestHeaderFieldsTooLarge:
				refused = true
			}
			if r.StatusCode >= 500 && r.StatusCode != http.StatusNotImplemented && r.StatusCode != http.StatusHTTPVersionNotSupported {
				t.Fatalf("router answered %d", r.StatusCode)
			}
		}
		if hits := int(be.hits.Load() - before); refused && (hits < fromBackend || hits > fromBackend+dropped) {
			t.Fatalf("a request was refused, yet the backend saw %d requests, answered %d, %d dropped", hits, fromBackend, dropped)
		}
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

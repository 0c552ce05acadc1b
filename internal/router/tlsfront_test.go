package router_test

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// testTLS makes serveEngine serve the TLS listener instead of the plain
// one: set by TestFastEngineTLS and FuzzRouterRequestTLS.
var testTLS bool

// testCerts is the TLS listener's certificate for every *.test host of
// the tests.
func testCerts(t testing.TB) *router.Certs {
	t.Helper()
	c := router.NewCerts()
	if errs := c.Apply(router.TLSInput{Routes: []router.TLSRoute{{Key: "p/tls", Host: "*.test", Cert: selfSigned(t, 1, "*.test")}}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	return c
}

// dialFront connects to a frontend serveEngine started: over TLS
// (HTTP/1.1 by ALPN, the handshake done) for a "tls://" address.
func dialFront(t testing.TB, addr string) net.Conn {
	t.Helper()
	if a, ok := strings.CutPrefix(addr, "tls://"); ok {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", a,
			&tls.Config{ServerName: "fuzz.test", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestFastEngineTLS runs on the fast engine's TLS listener the tests of the
// framing corpus and the limits that talk raw HTTP/1.1 to serveFrontend:
// each refusal, status and timeout of the plain listener holds over TLS.
func TestFastEngineTLS(t *testing.T) {
	testEngine, testTLS = fast.EngineFast, true
	t.Cleanup(func() { testEngine, testTLS = fast.EngineStd, false })
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"BadRequestCorpus", TestBadRequestCorpus},
		{"GoodFramingPasses", TestGoodFramingPasses},
		{"StreamedBodyOverLimit", TestStreamedBodyOverLimit},
		{"SlowHeaderIsCutOff", TestSlowHeaderIsCutOff},
		{"SlowBodyIsCutOff", TestSlowBodyIsCutOff},
		{"RefusalAfterOptionsStar", TestRefusalAfterOptionsStar},
		{"ForwardedProtoIsHTTPS", testForwardedProtoOverTLS},
	} {
		t.Run(tc.name, tc.test)
	}
}

// testForwardedProtoOverTLS: a request served by the fast engine over TLS
// reaches the app with X-Forwarded-Proto: https and proto=https in
// Forwarded, whatever the client claimed.
func testForwardedProtoOverTLS(t *testing.T) {
	be := newUpstream(t, "u")
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/fuzz", "fuzz.test", "", be.addr.String()))
	addr := serveEngine(t, r, std.ServerOptions{}, testEngine)
	resps, bodies, err := exchange(t, addr, []byte("GET / HTTP/1.1\r\nHost: fuzz.test\r\nX-Forwarded-Proto: http\r\nConnection: close\r\n\r\n"), false)
	if err != nil || len(resps) != 1 || resps[0].StatusCode != http.StatusOK {
		t.Fatalf("got %d responses (%v), err %v", len(resps), bodies, err)
	}
	if !strings.Contains(bodies[0], `"X-Forwarded-Proto":["https"]`) || !strings.Contains(bodies[0], `proto=https`) {
		t.Errorf("the app got %s, want X-Forwarded-Proto https and Forwarded proto=https", bodies[0])
	}
}

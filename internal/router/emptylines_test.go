package router_test

import (
	"fmt"
	"testing"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// TestLeadingEmptyLinesIgnored: empty lines before a request line are
// ignored (RFC 9112, section 2.2), first on a connection and between
// requests, on both engines.
func TestLeadingEmptyLinesIgnored(t *testing.T) {
	be := uriEcho(t)
	for _, engine := range []string{fast.EngineFast, fast.EngineStd} {
		t.Run(engine, func(t *testing.T) {
			r := router.New(router.Options{})
			apply(t, r, router.OneBackend("p/pub", "pub.test", "/public", be.String()))
			addr := serveEngine(t, r, std.ServerOptions{}, engine)
			raw := "\r\n\r\nGET /public/1 HTTP/1.1\r\nHost: pub.test\r\n\r\n" +
				"\r\nGET /public/2 HTTP/1.1\r\nHost: pub.test\r\nConnection: close\r\n\r\n"
			resps, bodies, err := exchange(t, addr, []byte(raw), false)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for i, resp := range resps {
				got = append(got, fmt.Sprintf("%d %s", resp.StatusCode, bodies[i]))
			}
			if want := "[200 /public/1 200 /public/2]"; fmt.Sprint(got) != want {
				t.Errorf("got %v, want %s", got, want)
			}
		})
	}
}

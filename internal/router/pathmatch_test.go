package router_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

// uriEcho answers with the request target it received.
func uriEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RequestURI)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

// TestPathsMatchCanonical: a route for /public is reached by what is
// /public and by nothing else, the app gets the path that was matched,
// and encoded slashes are refused, on every engine and over h2c.
func TestPathsMatchCanonical(t *testing.T) {
	be := uriEcho(t)
	cases := []struct{ target, want string }{
		{"/public", "200 /public"},
		{"/%70ublic/x?q=%2F", "200 /public/x?q=%2F"},
		{"/public/./a/../b", "200 /public/b"},
		{"/public/../admin", "404"},
		{"/public/%2e%2e/admin", "404"},
		{"/public/%2E%2E/admin", "404"},
		{"/public%2f..%2fadmin", "400"},
		{"/public/a%2Fb", "400"},
		{"/public/a%5Cb", "400"},
	}
	for _, mode := range []string{fast.EngineFast, fast.EngineStd, "h2c"} {
		t.Run(mode, func(t *testing.T) {
			r := router.New(router.Options{})
			apply(t, r, router.OneBackend("p/pub", "pub.test", "/public", be.String()))
			engine := mode
			if mode == "h2c" {
				engine = fast.EngineFast
			}
			addr := serveEngine(t, r, std.ServerOptions{}, engine)
			for _, tc := range cases {
				var got string
				if mode == "h2c" {
					req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
					req.URL.Opaque = tc.target // sent as the :path, untouched
					req.Host = "pub.test"
					resp, err := h2cClient(t).Do(req)
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.ProtoMajor != 2 {
						t.Fatalf("HTTP/%d", resp.ProtoMajor)
					}
					got = fmt.Sprint(resp.StatusCode)
					if resp.StatusCode == 200 {
						got += " " + string(b)
					}
				} else {
					raw := "GET " + tc.target + " HTTP/1.1\r\nHost: pub.test\r\nConnection: close\r\n\r\n"
					resps, bodies, err := exchange(t, addr, []byte(raw), false)
					if err != nil || len(resps) != 1 {
						t.Fatalf("%s: %d responses, %v", tc.target, len(resps), err)
					}
					got = fmt.Sprint(resps[0].StatusCode)
					if resps[0].StatusCode == 200 {
						got += " " + bodies[0]
					}
				}
				if got != tc.want {
					t.Errorf("%s: got %q, want %q", tc.target, got, tc.want)
				}
			}
		})
	}
}

// TestH2CPathWithSpaceRefused: a :path with a space is malformed (RFC
// 9113, section 8.3.1): 400, and nothing reaches the app.
func TestH2CPathWithSpaceRefused(t *testing.T) {
	be := uriEcho(t)
	r := router.New(router.Options{})
	apply(t, r, router.OneBackend("p/pub", "pub.test", "/public", be.String()))
	addr := serveEngine(t, r, std.ServerOptions{}, fast.EngineFast)
	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.URL.Opaque = "/public/a b"
	req.Host = "pub.test"
	resp, err := h2cClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("HTTP/%d %d, want HTTP/2 400", resp.ProtoMajor, resp.StatusCode)
	}
}

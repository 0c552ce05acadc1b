package router_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/router/fast"
	"slipway.dev/slipway/internal/router/std"
)

func h2cClient(t *testing.T) *http.Client {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// spoofAll sets every forwarding header, and an underscore spelling of
// one, to "spoofed".
func spoofAll(req *http.Request) {
	for _, h := range router.ForwardingHeaders {
		req.Header[h.Name] = []string{"spoofed"}
	}
	req.Header["X_Real_IP"] = []string{"spoofed"}
}

// checkForwarding checks what the app received: from an untrusted peer
// none of the client's forwarding headers, the router's own set from the
// connection; from a trusted one the peer's, appended to where they are
// lists.
func checkForwarding(t *testing.T, e echo, trusted bool, port, proto string) {
	t.Helper()
	underscore := ""
	for name := range e.Header {
		if strings.EqualFold(name, "X_Real_IP") {
			underscore = name
		}
	}
	if !trusted {
		want := map[string]string{
			"X-Forwarded-For":   "127.0.0.1",
			"X-Forwarded-Host":  "fw.test",
			"X-Forwarded-Proto": proto,
			"Forwarded":         `for=127.0.0.1;host="fw.test";proto=` + proto,
			"X-Real-Ip":         "127.0.0.1",
			"X-Forwarded-Port":  port,
		}
		for _, h := range router.ForwardingHeaders {
			got := strings.Join(e.Header[h.Name], ", ")
			if got != want[h.Name] {
				t.Errorf("%s: app got %q, want %q", h.Name, got, want[h.Name])
			}
		}
		if underscore != "" {
			t.Errorf("%s reached the app: %q", underscore, e.Header[underscore])
		}
		return
	}
	for _, h := range router.ForwardingHeaders {
		got, want := strings.Join(e.Header[h.Name], ", "), "spoofed"
		switch h.Name {
		case "X-Forwarded-For":
			want = "spoofed, 127.0.0.1"
		case "Forwarded":
			want = `spoofed, for=127.0.0.1;host="fw.test";proto=` + proto
		}
		if got != want {
			t.Errorf("%s from a trusted proxy: app got %q, want %q", h.Name, got, want)
		}
	}
	if underscore == "" {
		t.Errorf("X_Real_IP from a trusted proxy did not reach the app")
	}
}

// TestForwardingHeaders holds router.ForwardingHeaders on every path: the
// fast engine, the standard one, h2c and the TLS listener.
func TestForwardingHeaders(t *testing.T) {
	u := newUpstream(t, "u")
	for _, trusted := range []bool{false, true} {
		for _, path := range []string{"fast", "std", "h2c"} {
			t.Run(path+"/trusted="+strconv.FormatBool(trusted), func(t *testing.T) {
				var opts router.Options
				if trusted {
					opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
				}
				r := router.New(opts)
				apply(t, r, router.OneBackend("p/fw", "fw.test", "", u.addr.String()))
				engine, c := fast.EngineFast, &http.Client{Timeout: 10 * time.Second}
				switch path {
				case "std":
					engine = fast.EngineStd
				case "h2c":
					c = h2cClient(t)
				}
				addr := serveEngine(t, r, std.ServerOptions{}, engine)
				_, port, _ := net.SplitHostPort(addr)
				resp, body, err := get(c, "http://"+addr, "fw.test", "/", spoofAll)
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]int{true: 2, false: 1}[path == "h2c"]; resp.ProtoMajor != want {
					t.Fatalf("served over HTTP/%d, want %d", resp.ProtoMajor, want)
				}
				var e echo
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
				}
				checkForwarding(t, e, trusted, port, "http")
			})
		}
	}
	for _, h2 := range []bool{false, true} {
		t.Run("tls/h2="+strconv.FormatBool(h2), func(t *testing.T) {
			env := startTLS(t, "fw.test")
			env.apply(t, router.TLSRoute{Key: "p/r0", Host: "fw.test", Cert: selfSigned(t, 1, "fw.test")})
			_, port, _ := net.SplitHostPort(env.https)
			resp, body, err := get(env.client(t, h2), "https://fw.test", "fw.test", "/", spoofAll)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			var e echo
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
			}
			checkForwarding(t, e, false, port, "https")
		})
	}
}

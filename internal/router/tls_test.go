package router_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
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

	"github.com/google/go-cmp/cmp"
)

// selfSigned makes a certificate for names, signed by its own key; serial
// tells certificates for the same names apart.
func selfSigned(t testing.TB, serial int64, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsEnv is a Router with one upstream behind every route given, served
// on a real HTTPS listener (TLSConfig) and a plain one (InsecurePolicy).
type tlsEnv struct {
	rt     *router.Router
	certs  *router.Certs
	https  string // host:port
	plain  string // host:port
	roots  *x509.CertPool
	closed chan struct{}
}

func startTLS(t *testing.T, hosts ...string) *tlsEnv {
	t.Helper()
	up := newUpstream(t, "app")
	e := &tlsEnv{rt: router.New(router.Options{}), certs: router.NewCerts(), roots: x509.NewCertPool()}
	var in router.Input
	for i, h := range hosts {
		in.Routes = append(in.Routes, router.RouteConfig{Key: "p/r" + strconv.Itoa(i), Project: "p", Host: h,
			Backends: []router.BackendConfig{{Service: "p/app", Weight: 1, Revisions: []router.RevisionConfig{{Revision: 1, Endpoints: []netip.AddrPort{up.addr}}}}}})
	}
	tab, errs := router.Build(in)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	e.rt.Apply(tab)

	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.https, e.plain = tln.Addr().String(), pln.Addr().String()
	port := tln.Addr().(*net.TCPAddr).Port
	// The HTTPS listener as slipway up serves it: the fast engine's TLS
	// listener (h2 handed to the standard engine).
	ssrv := fast.NewServer(std.NewServer(e.rt, std.ServerOptions{}), fast.Options{Certs: e.certs})
	psrv := &http.Server{Handler: std.InsecurePolicy(std.NewHandler(e.rt), e.rt, e.certs, port), ReadHeaderTimeout: 10 * time.Second}
	go ssrv.ServeTLS(tln)
	go psrv.Serve(pln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ssrv.Shutdown(ctx)
		psrv.Shutdown(ctx)
	})
	return e
}

func (e *tlsEnv) apply(t *testing.T, routes ...router.TLSRoute) {
	t.Helper()
	for _, r := range routes {
		if r.Cert != nil {
			e.roots.AddCert(r.Cert.Leaf)
		}
	}
	if errs := e.certs.Apply(router.TLSInput{Routes: routes}); len(errs) > 0 {
		t.Fatal(errs)
	}
}

// client dials the HTTPS listener whatever the URL's host, trusting the
// certificates applied so far.
func (e *tlsEnv) client(t *testing.T, h2 bool) *http.Client {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: e.roots},
		ForceAttemptHTTP2: h2,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, e.https)
		},
	}
	// Registered after the servers' cleanup, so it runs first: Shutdown
	// then finds no idle HTTP/2 connection to wait for.
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// peerName is the first DNS name of the certificate served for sni, or the
// handshake error.
func (e *tlsEnv) peerName(sni string) string {
	c, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		return "error: " + err.Error()
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames[0]
}

// TestCertsSNI: the certificate is chosen by server name, exact before
// wildcard, a wildcard covering one label only; an unknown name or no
// name fails the handshake.
func TestCertsSNI(t *testing.T) {
	e := startTLS(t, "a.test", "*.w.test", "x.w.test")
	e.apply(t,
		router.TLSRoute{Key: "p/r0", Host: "a.test", Cert: selfSigned(t, 1, "a.test")},
		router.TLSRoute{Key: "p/r1", Host: "*.w.test", Cert: selfSigned(t, 2, "*.w.test")},
		router.TLSRoute{Key: "p/r2", Host: "X.w.test", Cert: selfSigned(t, 3, "x.w.test")},
	)
	got := map[string]string{}
	for _, sni := range []string{"a.test", "A.TEST.", "b.w.test", "x.w.test", "deep.b.w.test", "w.test", "other.test"} {
		got[sni] = e.peerName(sni)
	}
	want := map[string]string{
		"a.test":        "a.test",
		"A.TEST.":       "a.test",
		"b.w.test":      "*.w.test",
		"x.w.test":      "x.w.test",
		"deep.b.w.test": `error: remote error: tls: internal error`,
		"w.test":        `error: remote error: tls: internal error`,
		"other.test":    `error: remote error: tls: internal error`,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("served certificates (-want +got):\n%s", d)
	}
	// The server's side of a refusal names the server name.
	_, err := e.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.test"})
	if err == nil || err.Error() != `slipway router: no certificate for server name "other.test"` {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := e.certs.GetCertificate(&tls.ClientHelloInfo{}); err != router.ErrNoServerName {
		t.Errorf("no SNI: %v, want ErrNoServerName", err)
	}

	// A real client verifying the chain gets the route's answer over h2.
	resp, err := e.client(t, true).Get("https://b.w.test/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"app"`) {
		t.Errorf("h2 request: proto %s status %d body %s", resp.Proto, resp.StatusCode, body)
	}
	if resp.TLS.NegotiatedProtocol != "h2" {
		t.Errorf("ALPN: %q, want h2", resp.TLS.NegotiatedProtocol)
	}
}

// TestTLSMinimumVersion: a TLS 1.1 client is refused, a TLS 1.2 one served.
func TestTLSMinimumVersion(t *testing.T) {
	e := startTLS(t, "a.test")
	e.apply(t, router.TLSRoute{Key: "p/r0", Host: "a.test", Cert: selfSigned(t, 1, "a.test")})
	_, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true,
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.1 handshake: %v, want a protocol version alert", err)
	}
	c, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "a.test", InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS 1.2 handshake: %v", err)
	}
	if v := c.ConnectionState().Version; v != tls.VersionTLS12 {
		t.Errorf("version %x, want TLS 1.2", v)
	}
	c.Close()
}

// TestCertsSwapKeepsConnections: a new certificate is served to new
// handshakes at once, while a connection made with the old one goes on
// serving requests, over HTTP/1.1 and HTTP/2.
func TestCertsSwapKeepsConnections(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		t.Run("h2="+strconv.FormatBool(h2), func(t *testing.T) {
			e := startTLS(t, "a.test")
			old := selfSigned(t, 1, "a.test")
			e.apply(t, router.TLSRoute{Key: "p/r0", Host: "a.test", Cert: old})
			cl := e.client(t, h2)
			serial := func() (string, error) {
				resp, err := cl.Get("https://a.test/")
				if err != nil {
					return "", err
				}
				defer resp.Body.Close()
				io.Copy(io.Discard, resp.Body)
				if resp.StatusCode != 200 {
					return "", &url500{resp.StatusCode}
				}
				return resp.TLS.PeerCertificates[0].SerialNumber.String() + " " + resp.Proto, nil
			}
			proto := "HTTP/1.1"
			if h2 {
				proto = "HTTP/2.0"
			}
			if got, err := serial(); err != nil || got != "1 "+proto {
				t.Fatalf("before the swap: %q %v", got, err)
			}
			e.apply(t, router.TLSRoute{Key: "p/r0", Host: "a.test", Cert: selfSigned(t, 2, "a.test")})
			if got := e.peerName("a.test"); got != "a.test" {
				t.Fatalf("new handshake: %s", got)
			}
			c, err := tls.Dial("tcp", e.https, &tls.Config{ServerName: "a.test", RootCAs: e.roots})
			if err != nil {
				t.Fatal(err)
			}
			if s := c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s != 2 {
				t.Errorf("new handshake got certificate %d, want 2", s)
			}
			c.Close()
			// The pooled connection, made with certificate 1, still serves.
			for range 5 {
				if got, err := serial(); err != nil || got != "1 "+proto {
					t.Fatalf("established connection after the swap: %q %v", got, err)
				}
			}
		})
	}
}

type url500 struct{ status int }

func (e *url500) Error() string { return "status " + strconv.Itoa(e.status) }

// TestInsecurePolicy: on the plain listener, Redirect sends GET to https
// with 301 and other methods with 308 (path and query kept, the HTTPS
// port named), None refuses with 404, Allow and routes without TLS are
// served; over HTTPS every policy serves.
func TestInsecurePolicy(t *testing.T) {
	e := startTLS(t, "r.test", "n.test", "a.test", "plain.test")
	e.apply(t,
		router.TLSRoute{Key: "p/r0", Host: "r.test", Cert: selfSigned(t, 1, "r.test"), Insecure: router.InsecureRedirect},
		router.TLSRoute{Key: "p/r1", Host: "n.test", Cert: selfSigned(t, 2, "n.test"), Insecure: router.InsecureNone},
		router.TLSRoute{Key: "p/r2", Host: "a.test", Cert: selfSigned(t, 3, "a.test"), Insecure: router.InsecureAllow},
	)
	_, port, _ := net.SplitHostPort(e.https)
	noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, host, target string) string {
		req, _ := http.NewRequest(method, "http://"+e.plain+target, strings.NewReader("body"))
		req.Host = host
		resp, err := noFollow.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if loc := resp.Header.Get("Location"); loc != "" {
			return strconv.Itoa(resp.StatusCode) + " " + loc
		}
		if resp.StatusCode == 200 {
			return "200"
		}
		return strconv.Itoa(resp.StatusCode) + " " + string(b)
	}
	got := map[string]string{
		"GET redirect":    do("GET", "R.test:80", "/a/b?x=1&y=%20"),
		"HEAD redirect":   do("HEAD", "r.test", "/"),
		"POST redirect":   do("POST", "r.test", "/form"),
		"GET none":        do("GET", "n.test", "/"),
		"POST allow":      do("POST", "a.test", "/"),
		"GET no TLS":      do("GET", "plain.test", "/"),
		"GET no route":    do("GET", "nobody.test", "/"),
		"GET over HTTPS?": "",
	}
	resp, err := e.client(t, false).Get("https://n.test/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got["GET over HTTPS?"] = strconv.Itoa(resp.StatusCode)
	want := map[string]string{
		"GET redirect":    "301 https://r.test:" + port + "/a/b?x=1&y=%20",
		"HEAD redirect":   "301 https://r.test:" + port + "/",
		"POST redirect":   "308 https://r.test:" + port + "/form",
		"GET none":        "404 slipway router: route p/r1 is served over HTTPS only (insecureEdgeTerminationPolicy None)\n",
		"POST allow":      "200",
		"GET no TLS":      "200",
		"GET no route":    "404 slipway router: no route for host \"nobody.test\" and path \"/\"\n",
		"GET over HTTPS?": "200",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("plain listener (-want +got):\n%s", d)
	}

	// Port 443 is implied; a route without a certificate keeps its policy.
	rec := &recorder{header: http.Header{}}
	req, _ := http.NewRequest("GET", "http://r.test/x", nil)
	e.certs.Apply(router.TLSInput{Routes: []router.TLSRoute{{Key: "p/r0", Host: "r.test", Insecure: router.InsecureRedirect}}})
	std.InsecurePolicy(std.NewHandler(e.rt), e.rt, e.certs, 443).ServeHTTP(rec, req)
	if rec.status != 301 || rec.header.Get("Location") != "https://r.test/x" {
		t.Errorf("port 443 redirect: %d %q", rec.status, rec.header.Get("Location"))
	}
	if got := e.peerName("r.test"); got != "error: remote error: tls: internal error" {
		t.Errorf("route without certificate: %s", got)
	}
}

type recorder struct {
	header http.Header
	status int
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(s int)           { r.status = s }

// TestCertsApplyErrors: invalid entries are reported and left out; the
// smallest key provides a host's certificate.
func TestCertsApplyErrors(t *testing.T) {
	c := router.NewCerts()
	first, second := selfSigned(t, 1, "a.test"), selfSigned(t, 2, "a.test")
	errs := c.Apply(router.TLSInput{Routes: []router.TLSRoute{
		{Key: "p/b", Host: "a.test", Cert: second},
		{Key: "p/a", Host: "a.test", Cert: first},
		{Key: "p/bad", Host: "bad_host", Cert: first},
		{Key: "p/pol", Host: "b.test", Insecure: "Sometimes"},
	}})
	var msgs []string
	for _, err := range errs {
		msgs = append(msgs, err.Error())
	}
	want := []string{
		`route p/bad: host "bad_host": label "bad_host" must be 1-63 letters, digits or '-', not starting or ending with '-'`,
		`route p/pol: insecureEdgeTerminationPolicy "Sometimes": must be one of Redirect, Allow, None`,
	}
	if d := cmp.Diff(want, msgs); d != "" {
		t.Errorf("errors (-want +got):\n%s", d)
	}
	got, err := c.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"})
	if err != nil || got != first {
		t.Errorf("a.test: got serial %v (%v), want the certificate of p/a", got.Leaf.SerialNumber, err)
	}
	if c.Len() != 1 {
		t.Errorf("Len %d, want 1", c.Len())
	}
	if p, ok := c.Policy("p/b"); p != router.InsecureNone || !ok {
		t.Errorf("default policy: %q %v, want None", p, ok)
	}
	if _, ok := c.Policy("p/pol"); ok {
		t.Error("invalid policy applied")
	}
	var zero router.Certs
	if _, err := zero.GetCertificate(&tls.ClientHelloInfo{ServerName: "a.test"}); err == nil {
		t.Error("zero Certs served a certificate")
	}
}

// BenchmarkGetCertificate: SNI lookup among 10,000 hosts, half of them
// wildcards, hitting a wildcard (the longer path).
func BenchmarkGetCertificate(b *testing.B) {
	cert := &tls.Certificate{}
	var in router.TLSInput
	for i := range 10000 {
		h := "h" + strconv.Itoa(i) + ".test"
		if i%2 == 1 {
			h = "*.w" + strconv.Itoa(i) + ".test"
		}
		in.Routes = append(in.Routes, router.TLSRoute{Key: "p/" + strconv.Itoa(i), Host: h, Cert: cert})
	}
	c := router.NewCerts()
	if errs := c.Apply(in); len(errs) > 0 {
		b.Fatal(errs)
	}
	hello := &tls.ClientHelloInfo{ServerName: "app.w9999.test"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.GetCertificate(hello); err != nil {
			b.Fatal(err)
		}
	}
}

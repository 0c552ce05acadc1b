package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// selfSigned makes a certificate and key for host, in PEM.
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pool
}

// TestTLSRoute serves the sample app at https://secure.test through the
// router with a certificate from a Secret: SNI picks it, HTTP/2 is
// negotiated, and plain HTTP for the host is redirected.
func TestTLSRoute(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "hello.yaml", helloManifest(1, 5)))
	certPEM, keyPEM, pool := selfSigned(t, "secure.test")
	secret, _ := json.Marshal(map[string]any{
		"apiVersion": "slipway.dev/v1", "kind": "Secret", "metadata": map[string]string{"name": "secure-cert"}, "type": "kubernetes.io/tls",
		"data": map[string]string{"tls.crt": string(certPEM), "tls.key": string(keyPEM)},
	})
	p.ok("apply", "-f", writeFile(t, dir, "secret.json", string(secret)))
	p.ok("apply", "-f", writeFile(t, dir, "route.yaml", `apiVersion: slipway.dev/v1
kind: Route
metadata: {name: secure}
spec:
  host: secure.test
  to: {service: hello}
  tls: {termination: edge, secretName: secure-cert, insecureEdgeTerminationPolicy: Redirect}
`))
	p.waitApp("hello", 1, 60*time.Second)

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: "secure.test"},
		ForceAttemptHTTP2: true,
	}}
	url := "https://" + p.https + "/"
	var resp *http.Response
	waitUntil(t, 20*time.Second, "the route answers over HTTPS", func() bool {
		req, _ := http.NewRequest("GET", url, nil)
		req.Host = "secure.test"
		r, err := client.Do(req)
		if err != nil {
			return false
		}
		if r.StatusCode != 200 {
			r.Body.Close()
			return false
		}
		resp = r
		return true
	})
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(body), "hello from v1") {
		t.Errorf("HTTPS body %q", body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("protocol %s, want HTTP/2 negotiated by ALPN", resp.Proto)
	}
	if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != "secure.test" {
		t.Errorf("served certificate for %v, want secure.test", got)
	}

	// Plain HTTP for the host redirects to HTTPS.
	noFollow := &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+p.router+"/some/path?q=1", nil)
	req.Host = "secure.test"
	r, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	_, port, _ := net.SplitHostPort(p.https)
	if want := "https://secure.test:" + port + "/some/path?q=1"; r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d Location %q, want 301 to %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	// The route reports its certificate loaded.
	if out := p.ok("describe", "route", "secure"); !strings.Contains(out, "TLSReady") || !strings.Contains(out, "True") {
		t.Errorf("describe route lacks TLSReady True:\n%s", out)
	}
	// Secrets stay secret.
	if out := p.ok("get", "secret", "secure-cert", "-o", "yaml"); strings.Contains(out, "PRIVATE KEY") {
		t.Error("get secret printed the private key")
	}
}

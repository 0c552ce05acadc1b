package dataplane

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router/std"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/router"
	"slipway.dev/slipway/internal/store/bolt"
)

func TestRouterInput(t *testing.T) {
	ptr := func(n int32) *int32 { return &n }
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	meta := func(project, name string, age int) api.ObjectMeta {
		return api.ObjectMeta{Project: project, Name: name, CreationTimestamp: t0.Add(time.Duration(age) * time.Minute)}
	}
	routes := []*api.Route{
		{Metadata: meta("default", "web", 1), Spec: api.RouteSpec{
			To:                api.RouteBackend{Service: "web"},
			AlternateBackends: []api.RouteBackend{{Service: "web2", Weight: ptr(0)}},
			Match:             []api.RouteMatch{{Header: &api.KeyMatch{Name: "X-Canary", Value: "always"}, Service: "web2"}},
			SessionAffinity:   &api.SessionAffinity{Type: api.AffinityCookie, TTL: "1h"},
			Timeouts:          &api.RouteTimeouts{Response: "30s"},
			Retries:           &api.RouteRetries{Attempts: 2, OnStatus: []int32{502, 503}},
			Mirror:            &api.RouteMirror{Service: "web2", Percent: 10},
		}},
		{Metadata: meta("default", "api", 2), Spec: api.RouteSpec{Host: "api.example.com", Path: "/v1", To: api.RouteBackend{Service: "missing", Weight: ptr(7)}}},
		{Metadata: meta("other", "steal", 3), Spec: api.RouteSpec{Host: "API.example.com", To: api.RouteBackend{Service: "x"}}},
	}
	services := []*api.Service{
		{Metadata: meta("default", "web", 0), Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"},
			Ports: []api.ServicePort{{Port: 53, Protocol: "UDP"}, {Port: 80}}}},
		{Metadata: meta("default", "web2", 0), Spec: api.ServiceSpec{Selector: map[string]string{"app": "web", "revision": "2"},
			Ports: []api.ServicePort{{Port: 80}}}},
	}
	addr := func(ip string, rev int64, ready bool, target int32) api.EndpointAddress {
		return api.EndpointAddress{IP: ip, Revision: rev, Ready: ready, Ports: []api.EndpointPort{{Port: 80, TargetPort: target}, {Port: 53, TargetPort: 5353, Protocol: "UDP"}}}
	}
	endpoints := []*api.Endpoints{
		{Metadata: meta("default", "web", 0), Addresses: []api.EndpointAddress{
			addr("127.20.0.1", 1, true, 8080), addr("127.20.0.2", 1, true, 8080), addr("127.20.0.3", 2, true, 8081), addr("127.20.0.4", 2, false, 8081)}},
		{Metadata: meta("default", "web2", 0), Addresses: []api.EndpointAddress{addr("127.20.0.3", 2, true, 8081)}},
	}
	apps := []*api.App{{Metadata: meta("default", "web", 0), Status: api.AppStatus{Traffic: []api.TrafficTarget{{Revision: 1, Weight: 90}, {Revision: 2, Weight: 10}, {Revision: 3, Weight: 0}}}}}

	in, verdicts := RouterInput(routes, services, endpoints, apps, "apps.test")
	ap := netip.MustParseAddrPort
	want := router.Input{Routes: []router.RouteConfig{{
		Key: "default/api", Project: "default", Created: t0.Add(2 * time.Minute), Host: "api.example.com", Path: "/v1",
		Backends: []router.BackendConfig{{Service: "default/missing", Weight: 7}},
	}, {
		Key: "default/web", Project: "default", Created: t0.Add(time.Minute), Host: "web-default.apps.test",
		Backends: []router.BackendConfig{
			{Service: "default/web", App: "default/web", Weight: 100, RevisionWeights: true, Revisions: []router.RevisionConfig{
				{Revision: 1, Weight: 90, Endpoints: []netip.AddrPort{ap("127.20.0.1:8080"), ap("127.20.0.2:8080")}},
				{Revision: 2, Weight: 10, Endpoints: []netip.AddrPort{ap("127.20.0.3:8081")}},
			}},
			{Service: "default/web2", Weight: 0, Revisions: []router.RevisionConfig{{Revision: 2, Endpoints: []netip.AddrPort{ap("127.20.0.3:8081")}}}},
		},
		Match:    []router.MatchRule{{Kind: router.MatchHeader, Name: "X-Canary", Value: "always", Backend: 1}},
		Affinity: router.Affinity{CookieName: "slipway-web", TTL: time.Hour},
		Timeouts: router.Timeouts{Response: 30 * time.Second},
		Retries:  router.Retries{Attempts: 2, OnStatus: []int{502, 503}},
		Mirror:   &router.MirrorConfig{Service: "default/web2", Percent: 10, Endpoints: []netip.AddrPort{ap("127.20.0.3:8081")}},
	}}}
	opts := cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })
	if d := cmp.Diff(want, in, opts); d != "" {
		t.Errorf("input (-want +got):\n%s", d)
	}
	wantV := map[string]verdict{
		"default/web": {status: api.RouteStatus{Host: "web-default.apps.test"}},
		"default/api": {status: api.RouteStatus{Host: "api.example.com"}},
		"other/steal": {status: api.RouteStatus{Host: "API.example.com"}, refusal: &router.Refusal{Reason: router.ReasonHostClaimed,
			Message: `host "api.example.com" is owned by project "default" (route default/api claims "api.example.com")`}},
	}
	if d := cmp.Diff(wantV, verdicts, cmp.AllowUnexported(verdict{})); d != "" {
		t.Errorf("verdicts (-want +got):\n%s", d)
	}
}

// TestRouterInputTagsBackendsWithTheirApp: a backend whose Service selects
// an App (app=<name>, no revision) is tagged with it, with or without ready
// endpoints and whether or not the App exists, so that the router counts
// the App's traffic itself; a Service pinned to a revision, or missing, is
// not tagged. (TestRouterInput and TestPreviewRules check the tags too.)
func TestRouterInputTagsBackendsWithTheirApp(t *testing.T) {
	meta := func(name string) api.ObjectMeta { return api.ObjectMeta{Project: "shop", Name: name} }
	svc := func(name string, sel map[string]string) *api.Service {
		return &api.Service{Metadata: meta(name), Spec: api.ServiceSpec{Selector: sel, Ports: []api.ServicePort{{Port: 80}}}}
	}
	services := []*api.Service{svc("idle", map[string]string{"app": "idle"}), svc("pinned", map[string]string{"app": "idle", "revision": "3"}),
		svc("plain", map[string]string{"tier": "web"})}
	var routes []*api.Route
	for _, name := range []string{"idle", "pinned", "plain", "missing"} {
		routes = append(routes, &api.Route{Metadata: meta(name), Spec: api.RouteSpec{To: api.RouteBackend{Service: name}}})
	}
	in, _ := RouterInput(routes, services, nil, nil, "apps.test")
	got := map[string]string{}
	for _, rc := range in.Routes {
		got[rc.Backends[0].Service] = rc.Backends[0].App
	}
	want := map[string]string{"shop/idle": "shop/idle", "shop/pinned": "", "shop/plain": "", "shop/missing": ""}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("backend → App tag (-want +got):\n%s", d)
	}
}

// routeEnv runs Routes over a registry on a fresh bolt file and serves its
// router on a real listener, until the test ends.
type routeEnv struct {
	reg   *registry.Registry
	rt    *router.Router
	certs *router.Certs
	base  string
}

func startRoutes(t *testing.T) *routeEnv {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e := &routeEnv{reg: registry.New(st, registry.Options{}), rt: router.New(router.Options{Logger: log}), certs: router.NewCerts()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.base = "http://" + ln.Addr().String()
	srv := &http.Server{Handler: std.NewHandler(e.rt), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := (&Routes{Reg: e.reg, Router: e.rt, Certs: e.certs, Log: log}).Run(ctx); err != nil {
			t.Errorf("Routes.Run: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		st.Close()
	})
	return e
}

func routeUpstream(t *testing.T, ip, name string) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(ln.Addr().String())
}

func (e *routeEnv) body(host string) string {
	req, _ := http.NewRequest("GET", e.base+"/", nil)
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

func waitUntil(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, msg)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not synchronisation
	}
}

// TestRoutesFeedsRouter: Routes, Services and Endpoints written to the
// store are served by the router and follow changes; admission is written
// to each Route's status, and a host claimed by another project is refused.
func TestRoutesFeedsRouter(t *testing.T) {
	e := startRoutes(t)
	ctx := context.Background()
	a, b := routeUpstream(t, "127.20.250.1", "a"), routeUpstream(t, "127.20.250.2", "b")
	if _, err := e.reg.Create(ctx, &api.Project{Metadata: api.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Create(ctx, &api.Service{Metadata: api.ObjectMeta{Name: "web"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Port: 80}}}}); err != nil {
		t.Fatal(err)
	}
	addr := func(ep netip.AddrPort) api.EndpointAddress {
		return api.EndpointAddress{IP: ep.Addr().String(), Revision: 1, Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: int32(ep.Port())}}}
	}
	epObj, err := e.reg.Create(ctx, &api.Endpoints{Metadata: api.ObjectMeta{Name: "web"}, Addresses: []api.EndpointAddress{addr(a)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Create(ctx, &api.Route{Metadata: api.ObjectMeta{Name: "web"}, Spec: api.RouteSpec{To: api.RouteBackend{Service: "web"}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "served by a", func() string {
		if got := e.body("web-default.localhost:8080"); got != "200 a" {
			return got
		}
		return ""
	})
	admission := func(project, name string) string {
		o, err := e.reg.Get(ctx, routeKind, project, name)
		if err != nil {
			return err.Error()
		}
		st := o.(*api.Route).Status
		c := api.FindCondition(st.Conditions, ConditionAdmitted)
		if c == nil {
			return "host " + st.Host + ": no condition"
		}
		return fmt.Sprintf("host %s: %s %s %s", st.Host, c.Status, c.Reason, c.Message)
	}
	waitUntil(t, "route admitted", func() string {
		if got := admission("default", "web"); got != "host web-default.localhost: True Admitted the router serves this route" {
			return got
		}
		return ""
	})

	if _, err := e.reg.Create(ctx, &api.Route{Metadata: api.ObjectMeta{Name: "steal", Project: "other"},
		Spec: api.RouteSpec{Host: "web-default.localhost", To: api.RouteBackend{Service: "web"}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "other project's claim refused", func() string {
		want := `host web-default.localhost: False HostAlreadyClaimed host "web-default.localhost" is owned by project "default" (route default/web claims "web-default.localhost")`
		if got := admission("other", "steal"); got != want {
			return got
		}
		return ""
	})

	ep := epObj.(*api.Endpoints)
	ep.Addresses = []api.EndpointAddress{addr(b)}
	if _, err := e.reg.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "served by b", func() string {
		if got := e.body("web-default.localhost"); got != "200 b" {
			return got
		}
		return ""
	})
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.rt.WaitDrained(dctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Delete(ctx, routeKind, "default", "web", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the other project's route admitted once the host is free", func() string {
		if got := admission("other", "steal"); got != "host web-default.localhost: True Admitted the router serves this route" {
			return got
		}
		return ""
	})
	// It is served: its service (in project other) has no endpoint.
	if got := e.body("web-default.localhost"); got != "503 slipway router: route other/steal has no ready endpoint\n" {
		t.Errorf("host taken over: %q", got)
	}
	if _, err := e.reg.Delete(ctx, routeKind, "other", "steal", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "no route: 404", func() string {
		if got := e.body("web-default.localhost"); got != `404 slipway router: no route for host "web-default.localhost" and path "/"`+"\n" {
			return got
		}
		return ""
	})
}

// pemPair makes a self-signed certificate for names and returns it and its
// key as PEM, as a Secret holds them.
func pemPair(t *testing.T, serial int64, names ...string) (crt, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2036, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

// TestRoutesTLS: a TLS route's certificate comes from its Secret and
// follows it (missing, incomplete, invalid, for another host, renewed,
// deleted), with the TLSReady condition saying which and naming the
// Secret and key; a refused route's certificate is never served; a route
// that drops spec.tls loses the condition and its policy.
func TestRoutesTLS(t *testing.T) {
	e := startRoutes(t)
	ctx := context.Background()
	if _, err := e.reg.Create(ctx, &api.Project{Metadata: api.ObjectMeta{Name: "other"}}); err != nil {
		t.Fatal(err)
	}
	_, err := e.reg.Create(ctx, &api.Route{Metadata: api.ObjectMeta{Name: "web"}, Spec: api.RouteSpec{Host: "a.test", To: api.RouteBackend{Service: "web"},
		TLS: &api.RouteTLS{Termination: api.TLSEdge, SecretName: "web-tls", InsecureEdgeTerminationPolicy: api.InsecureRedirect}}})
	if err != nil {
		t.Fatal(err)
	}
	tlsReady := func(project, name string) string {
		o, err := e.reg.Get(ctx, routeKind, project, name)
		if err != nil {
			return err.Error()
		}
		c := api.FindCondition(o.(*api.Route).Status.Conditions, ConditionTLSReady)
		if c == nil {
			return "none"
		}
		return fmt.Sprintf("%s %s: %s", c.Status, c.Reason, c.Message)
	}
	serial := func(sni string) string {
		c, err := e.certs.GetCertificate(&tls.ClientHelloInfo{ServerName: sni})
		if err != nil {
			return err.Error()
		}
		return c.Leaf.SerialNumber.String()
	}
	expect := func(what, cond, cert string) {
		t.Helper()
		waitUntil(t, what, func() string {
			if got := tlsReady("default", "web"); got != cond {
				return "condition " + got
			}
			if got := serial("a.test"); got != cert {
				return "certificate " + got
			}
			return ""
		})
	}
	noCert := `slipway router: no certificate for server name "a.test"`
	expect("secret missing", `False SecretNotFound: secret "web-tls" not found in project "default"`, noCert)
	if p, ok := e.certs.Policy("default/web"); p != router.InsecureRedirect || !ok {
		t.Errorf("policy %q %v, want Redirect", p, ok)
	}

	crt1, key1 := pemPair(t, 1, "a.test")
	secObj, err := e.reg.Create(ctx, &api.Secret{Metadata: api.ObjectMeta{Name: "web-tls"}, Data: map[string]string{"tls.crt": crt1}})
	if err != nil {
		t.Fatal(err)
	}
	expect("key missing", `False SecretKeyMissing: secret "web-tls" has no key tls.key (a PEM certificate chain in tls.crt and its PEM private key in tls.key are required)`, noCert)

	sec := secObj.(*api.Secret)
	sec.Data = map[string]string{"tls.crt": crt1, "tls.key": "hunter2-not-pem"}
	if secObj, err = e.reg.Update(ctx, sec); err != nil {
		t.Fatal(err)
	}
	// The message names the secret and keys, never their values.
	expect("invalid key", `False InvalidCertificate: secret "web-tls" keys tls.crt and tls.key: tls: failed to find any PEM data in key input`, noCert)

	update := func(crt, key string) {
		t.Helper()
		sec := secObj.(*api.Secret)
		sec.Data = map[string]string{"tls.crt": crt, "tls.key": key}
		if secObj, err = e.reg.Update(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	update(crt1, key1)
	loaded := `True CertificateLoaded: serving the certificate in secret "web-tls" for host "a.test", valid until 2036-01-01T00:00:00Z`
	expect("valid certificate", loaded, "1")

	crt2, key2 := pemPair(t, 2, "a.test")
	update(crt2, key2)
	expect("renewed certificate", loaded, "2")

	crtB, keyB := pemPair(t, 3, "b.test")
	update(crtB, keyB)
	expect("certificate for another host", `False CertificateHostMismatch: the certificate in secret "web-tls" (key tls.crt, names b.test) does not cover host "a.test"`, noCert)
	update(crt2, key2)
	expect("back", loaded, "2")

	// Another project claiming a.test with a valid certificate: refused,
	// and its certificate is not served.
	crtO, keyO := pemPair(t, 9, "a.test")
	if _, err := e.reg.Create(ctx, &api.Secret{Metadata: api.ObjectMeta{Name: "mine", Project: "other"}, Data: map[string]string{"tls.crt": crtO, "tls.key": keyO}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Create(ctx, &api.Route{Metadata: api.ObjectMeta{Name: "steal", Project: "other"}, Spec: api.RouteSpec{Host: "a.test", To: api.RouteBackend{Service: "web"},
		TLS: &api.RouteTLS{Termination: api.TLSEdge, SecretName: "mine"}}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "refused route's certificate", func() string {
		if got := tlsReady("other", "steal"); got != `False RouteNotAdmitted: the certificate in secret "mine" is not served while the route is not admitted` {
			return got
		}
		return ""
	})
	if got := serial("a.test"); got != "2" {
		t.Errorf("a.test served certificate %s after another project's claim, want 2", got)
	}
	if _, ok := e.certs.Policy("other/steal"); ok {
		t.Error("a refused route's policy is in force")
	}

	if _, err := e.reg.Delete(ctx, secretKind, "default", "web-tls", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	expect("secret deleted", `False SecretNotFound: secret "web-tls" not found in project "default"`, noCert)

	o, err := e.reg.Get(ctx, routeKind, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	rt := o.(*api.Route)
	rt.Spec.TLS = nil
	if _, err := e.reg.Update(ctx, rt); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "TLS dropped", func() string {
		if got := tlsReady("default", "web"); got != "none" {
			return got
		}
		if _, ok := e.certs.Policy("default/web"); ok {
			return "policy still in force"
		}
		return ""
	})
}

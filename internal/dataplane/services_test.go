package dataplane

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/proxy"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/services"
	"slipway.dev/slipway/internal/store/bolt"
)

func TestTable(t *testing.T) {
	svc := func(name, ip string, ports ...api.ServicePort) *api.Service {
		return &api.Service{Metadata: api.ObjectMeta{Name: name, Project: "default"},
			Spec: api.ServiceSpec{Ports: ports}, Status: api.ServiceStatus{ClusterIP: ip}}
	}
	http80 := api.ServicePort{Name: "http", Port: 80, Protocol: "TCP"}
	dns := api.ServicePort{Name: "dns", Port: 53, Protocol: "UDP"}
	ep := func(name string, addrs ...api.EndpointAddress) *api.Endpoints {
		return &api.Endpoints{Metadata: api.ObjectMeta{Name: name, Project: "default"}, Addresses: addrs}
	}
	got := Table(
		[]*api.Service{
			svc("web", "127.30.0.2", http80, dns),
			svc("api", "127.30.0.1", http80),
			svc("pending", "", http80), // no VIP yet: not served
			svc("empty", "127.30.0.3", http80),
		},
		[]*api.Endpoints{
			ep("web",
				api.EndpointAddress{IP: "127.20.0.2", Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080, Protocol: "TCP"}, {Port: 53, TargetPort: 5353, Protocol: "UDP"}}},
				api.EndpointAddress{IP: "127.20.0.1", Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8081, Protocol: "TCP"}}},
				api.EndpointAddress{IP: "127.20.0.3", Ready: false, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080, Protocol: "TCP"}}},
			),
			ep("api", api.EndpointAddress{IP: "127.20.0.9", Ready: true, Ports: []api.EndpointPort{{Port: 81, TargetPort: 8080, Protocol: "TCP"}}}),
			ep("orphan", api.EndpointAddress{IP: "127.20.0.7", Ready: true, Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080, Protocol: "TCP"}}}),
		},
	)
	ap := netip.MustParseAddrPort
	want := proxy.Table{Services: []proxy.Service{
		{Key: "default/api", VIP: netip.MustParseAddr("127.30.0.1"), Ports: []proxy.Port{{Port: 80, Protocol: "TCP"}}},
		{Key: "default/empty", VIP: netip.MustParseAddr("127.30.0.3"), Ports: []proxy.Port{{Port: 80, Protocol: "TCP"}}},
		{Key: "default/web", VIP: netip.MustParseAddr("127.30.0.2"), Ports: []proxy.Port{
			{Port: 80, Protocol: "TCP", Endpoints: []netip.AddrPort{ap("127.20.0.2:8080"), ap("127.20.0.1:8081")}},
			{Port: 53, Protocol: "UDP", Endpoints: []netip.AddrPort{ap("127.20.0.2:5353")}},
		}},
	}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

// backend is a real HTTP server on its own loopback address answering with
// its name.
type backend struct {
	name string
	addr netip.AddrPort
}

var backendN = 0

func startBackend(t *testing.T, name string) backend {
	t.Helper()
	backendN++
	ln, err := net.Listen("tcp", fmt.Sprintf("127.20.251.%d:0", backendN))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return backend{name: name, addr: netip.MustParseAddrPort(ln.Addr().String())}
}

type env struct {
	reg *registry.Registry
	px  *proxy.Proxy
}

// start runs the dataplane (and the services controller, when withController)
// over a registry on a fresh bolt file, until the test ends.
func start(t *testing.T, withController bool) *env {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	e := &env{reg: registry.New(st, registry.Options{}), px: proxy.New(proxy.Options{Logger: log})}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	dp := &Services{Reg: e.reg, Proxy: e.px, Log: log, ListenRetry: 50 * time.Millisecond}
	go func() {
		if err := dp.Run(ctx); err != nil {
			t.Errorf("dataplane Run: %v", err)
		}
		done <- struct{}{}
	}()
	n := 1
	if withController {
		n = 2
		c := &services.Controller{Reg: e.reg, Log: log, VIPRange: netip.MustParsePrefix("127.30.251.0/24")}
		go func() {
			c.Run(ctx)
			done <- struct{}{}
		}()
	}
	t.Cleanup(func() {
		cancel()
		for range n {
			<-done
		}
		e.px.Close()
		st.Close()
	})
	return e
}

// service writes the Service name (selecting app=name) on vip:port, as
// the services controller would have given it the address.
func (e *env) service(t *testing.T, name, vip string, port int32) {
	t.Helper()
	ctx := context.Background()
	obj, err := e.reg.Create(ctx, &api.Service{Metadata: api.ObjectMeta{Name: name},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": name}, Ports: []api.ServicePort{{Port: port}}}})
	if err != nil {
		t.Fatal(err)
	}
	svc := obj.(*api.Service)
	svc.Status.ClusterIP = vip
	if _, err := e.reg.UpdateStatus(ctx, svc); err != nil {
		t.Fatal(err)
	}
}

// get makes one request on a new connection and returns the body.
func get(addr string) (string, error) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func eventually(t *testing.T, what string, cond func() string) {
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

func servedBy(addr, want string) func() string {
	return func() string {
		body, err := get(addr)
		if err != nil || body != want {
			return fmt.Sprintf("got %q, %v; want %q", body, err, want)
		}
		return ""
	}
}

// freePort returns a port free on ip right now.
func freePort(t *testing.T, ip string) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestServicesFeedsProxy: Services and Endpoints written to the store are
// served by the proxy, and follow every change.
func TestServicesFeedsProxy(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	a, b := startBackend(t, "a"), startBackend(t, "b")
	const vip = "127.30.252.1"
	port := freePort(t, vip)
	vipAddr := net.JoinHostPort(vip, fmt.Sprint(port))

	e.service(t, "web", vip, port)
	addr := func(be backend, ready bool) api.EndpointAddress {
		return api.EndpointAddress{IP: be.addr.Addr().String(), Ready: ready, Ports: []api.EndpointPort{{Port: port, TargetPort: int32(be.addr.Port())}}}
	}
	epObj, err := e.reg.Create(ctx, &api.Endpoints{Metadata: api.ObjectMeta{Name: "web"}, Addresses: []api.EndpointAddress{addr(a, true), addr(b, false)}})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "served by a", servedBy(vipAddr, "a"))

	ep := epObj.(*api.Endpoints)
	ep.Addresses = []api.EndpointAddress{addr(a, false), addr(b, true)}
	if _, err := e.reg.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "served by b once a is not ready", servedBy(vipAddr, "b"))
	eventually(t, "a drained", func() string {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := e.px.WaitDrained(dctx, a.addr); err != nil {
			return err.Error()
		}
		return ""
	})
	for range 10 {
		if body, err := get(vipAddr); body != "b" || err != nil {
			t.Fatalf("after a left: %q, %v", body, err)
		}
	}

	if _, err := e.reg.Delete(ctx, mustKind("Service"), "default", "web", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "VIP closed with its service", func() string {
		c, err := net.DialTimeout("tcp", vipAddr, time.Second)
		if err == nil {
			c.Close()
			return "still accepting"
		}
		return ""
	})
}

// TestEndToEndTermination: Service and Pods in the store, the services
// controller, the dataplane and the proxy together. A pod the node agent
// withdraws (Ready False, reason Terminating) gets no new connection, keeps
// its open one, and is drained once that one closes.
func TestEndToEndTermination(t *testing.T) {
	e := start(t, true)
	ctx := context.Background()
	a, b := startBackend(t, "a"), startBackend(t, "b")
	port := freePort(t, "127.30.251.1")
	if _, err := e.reg.Create(ctx, &api.Service{Metadata: api.ObjectMeta{Name: "web"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []api.ServicePort{{Name: "http", Port: port, TargetPort: api.FromString("http")}}}}); err != nil {
		t.Fatal(err)
	}
	for _, be := range []backend{a, b} {
		pod := &api.Pod{
			Metadata: api.ObjectMeta{Name: "web-1-" + be.name, Labels: map[string]string{"app": "web"}},
			Spec: api.PodSpec{App: "web", Revision: 1, Containers: []api.Container{{Name: "web", Command: []string{"./web"},
				Ports: []api.ContainerPort{{Name: "http", Port: int32(be.addr.Port())}}}}},
			Status: api.PodStatus{Phase: api.PodRunning, PodIP: be.addr.Addr().String(),
				Conditions: []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue}}},
		}
		if _, err := e.reg.CreateWithStatus(ctx, pod); err != nil {
			t.Fatal(err)
		}
	}
	vipAddr := net.JoinHostPort("127.30.251.1", fmt.Sprint(port))
	eventually(t, "both pods served", func() string {
		seen := map[string]bool{}
		for range 4 {
			body, err := get(vipAddr)
			if err != nil {
				return err.Error()
			}
			seen[body] = true
		}
		if !seen["a"] || !seen["b"] {
			return fmt.Sprintf("served by %v", seen)
		}
		return ""
	})

	// A keep-alive connection lands on a (the only endpoint with none).
	held := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	var onA bool
	for range 10 {
		body, err := keepAliveGet(held, vipAddr)
		if err != nil {
			t.Fatal(err)
		}
		if onA = body == "a"; onA {
			break
		}
		held.CloseIdleConnections()
	}
	if !onA {
		t.Fatal("no connection reached a")
	}

	obj, err := e.reg.Get(ctx, mustKind("Pod"), "default", "web-1-a")
	if err != nil {
		t.Fatal(err)
	}
	pod := obj.(*api.Pod)
	pod.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionFalse, Reason: services.ReasonTerminating}}
	if _, err := e.reg.UpdateStatus(ctx, pod); err != nil {
		t.Fatal(err)
	}
	// What the node agent does next: wait, bounded, for the proxy to let
	// go. The held connection is idle (its response came back), so the
	// drain completes once a has left the table, while the connection
	// stays open for the app's graceful shutdown to close.
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := e.px.WaitDrained(dctx, a.addr); err != nil {
		t.Fatalf("WaitDrained(a) with only an idle connection open: %v", err)
	}
	if n := e.px.Active(a.addr); n != 1 {
		t.Errorf("Active(a) = %d after the drain, want 1 (the idle connection is kept)", n)
	}
	for range 10 {
		if body, err := get(vipAddr); body != "b" || err != nil {
			t.Fatalf("new connection after a was withdrawn: %q, %v", body, err)
		}
	}
	// The held connection's next request is not passed to the leaving a:
	// the proxy closes the connection and the client's retry lands on b.
	if body, err := keepAliveGet(held, vipAddr); body != "b" || err != nil {
		t.Fatalf("a new request on the connection held to a: %q, %v (want it retried on b)", body, err)
	}
	held.CloseIdleConnections()
	eventually(t, "a's connection closed", func() string {
		if n := e.px.Active(a.addr); n != 0 {
			return fmt.Sprintf("Active(a) = %d", n)
		}
		return ""
	})
}

func keepAliveGet(c *http.Client, addr string) (string, error) {
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestRunEndsWhenProxyClosed: a closed proxy ends Run with ErrClosed
// though its context is still live.
func TestRunEndsWhenProxyClosed(t *testing.T) {
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	px := proxy.New(proxy.Options{})
	px.Close()
	dp := &Services{Reg: registry.New(st, registry.Options{}), Proxy: px}
	done := make(chan error, 1)
	go func() { done <- dp.Run(context.Background()) }()
	select {
	case err := <-done:
		if !errors.Is(err, proxy.ErrClosed) {
			t.Errorf("Run = %v, want proxy.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the proxy was closed")
	}
}

package services

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

// startController runs a Controller over a registry on a fresh bolt file
// until the test ends.
func startController(t *testing.T, setup func(reg *registry.Registry)) *registry.Registry {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{NoFsync: true})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(st, registry.Options{})
	if setup != nil {
		setup(reg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := &Controller{Reg: reg, Log: slog.New(slog.DiscardHandler)}
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		st.Close()
	})
	return reg
}

// eventually polls cond until it returns "" or the deadline passes; the
// last non-empty answer says what was wrong.
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

func getService(t *testing.T, reg *registry.Registry, name string) *api.Service {
	t.Helper()
	obj, err := reg.Get(context.Background(), serviceKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Service)
}

func clusterIP(reg *registry.Registry, name string) string {
	obj, err := reg.Get(context.Background(), serviceKind, "default", name)
	if err != nil {
		return "error: " + err.Error()
	}
	return obj.(*api.Service).Status.ClusterIP
}

func newService(name string, ports ...api.ServicePort) *api.Service {
	if len(ports) == 0 {
		ports = []api.ServicePort{httpPort}
	}
	return &api.Service{
		Metadata: api.ObjectMeta{Name: name, Labels: map[string]string{"team": "a"}},
		Spec:     api.ServiceSpec{Selector: map[string]string{"app": "hello"}, Ports: ports},
	}
}

// storePod is testPod made valid for the registry (a command to run).
func storePod(name, ip string, mutate ...func(*api.Pod)) *api.Pod {
	p := testPod(name, ip, mutate...)
	for i := range p.Spec.Containers {
		p.Spec.Containers[i].Command = []string{"./hello"}
	}
	return p
}

// endpointsOf returns the stored Endpoints' addresses, or a description of
// why there are none.
func endpointsOf(reg *registry.Registry, name string) ([]api.EndpointAddress, map[string]string, error) {
	obj, err := reg.Get(context.Background(), endpointsKind, "default", name)
	if err != nil {
		return nil, nil, err
	}
	ep := obj.(*api.Endpoints)
	return ep.Addresses, ep.Metadata.Labels, nil
}

func wantEndpoints(t *testing.T, reg *registry.Registry, name string, want []api.EndpointAddress) {
	t.Helper()
	eventually(t, "endpoints of "+name, func() string {
		got, _, err := endpointsOf(reg, name)
		if err != nil {
			return err.Error()
		}
		if diff := cmp.Diff(want, got); diff != "" {
			return "(-want +got):\n" + diff
		}
		return ""
	})
}

func TestControllerAllocatesStableVIPs(t *testing.T) {
	reg := startController(t, nil)
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		if _, err := reg.Create(ctx, newService(name)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "VIPs", func() string {
		if a, b := clusterIP(reg, "a"), clusterIP(reg, "b"); !(a == "127.30.0.1" && b == "127.30.0.2" || a == "127.30.0.2" && b == "127.30.0.1") {
			return fmt.Sprintf("a=%q b=%q", a, b)
		}
		return ""
	})
	ipA, ipB := clusterIP(reg, "a"), clusterIP(reg, "b")

	// A spec change is reconciled (endpoints gain the port) and keeps the VIP.
	svc := getService(t, reg, "a")
	svc.Spec.Ports = []api.ServicePort{httpPort, metricsPort}
	if _, err := reg.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateWithStatus(ctx, storePod("p1", "127.20.0.1")); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(t, reg, "a", []api.EndpointAddress{{IP: "127.20.0.1", Pod: "p1", Revision: 1, Ready: true,
		Ports: []api.EndpointPort{httpEP(8080), {Name: "metrics", Port: 9000, TargetPort: 9090, Protocol: "TCP"}}}})
	if got := clusterIP(reg, "a"); got != ipA {
		t.Errorf("after update a has clusterIP %q, want %q", got, ipA)
	}

	// A freed VIP goes to the next service, never one still held.
	if _, err := reg.Delete(ctx, serviceKind, "default", "a", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "endpoints of a deleted with it", func() string {
		if _, _, err := endpointsOf(reg, "a"); !api.IsNotFound(err) {
			return fmt.Sprintf("err = %v", err)
		}
		return ""
	})
	if _, err := reg.Create(ctx, newService("c")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "VIP of c", func() string {
		if got := clusterIP(reg, "c"); got != ipA {
			return fmt.Sprintf("c=%q, want the freed %q", got, ipA)
		}
		return ""
	})
	if got := clusterIP(reg, "b"); got != ipB {
		t.Errorf("b's clusterIP changed to %q, want %q", got, ipB)
	}
}

// TestControllerReplacesForeignVIP: a clusterIP outside the range (written
// by hand, or by an older range) is replaced by one of the range; a valid
// one is kept across a controller restart (it lives in the store).
func TestControllerReplacesForeignVIP(t *testing.T) {
	reg := startController(t, func(reg *registry.Registry) {
		ctx := context.Background()
		for name, ip := range map[string]string{"kept": "127.30.0.7", "foreign": "10.0.0.1"} {
			obj, err := reg.Create(ctx, newService(name))
			if err != nil {
				t.Fatal(err)
			}
			s := obj.(*api.Service)
			s.Status.ClusterIP = ip
			if _, err := reg.UpdateStatus(ctx, s); err != nil {
				t.Fatal(err)
			}
		}
	})
	eventually(t, "VIPs", func() string {
		if k, f := clusterIP(reg, "kept"), clusterIP(reg, "foreign"); k != "127.30.0.7" || f != "127.30.0.1" {
			return fmt.Sprintf("kept=%q foreign=%q", k, f)
		}
		return ""
	})
}

func TestControllerEndpointsFollowPods(t *testing.T) {
	reg := startController(t, nil)
	ctx := context.Background()
	if _, err := reg.Create(ctx, newService("hello")); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(t, reg, "hello", nil)
	_, labels, _ := endpointsOf(reg, "hello")
	if diff := cmp.Diff(map[string]string{"team": "a"}, labels); diff != "" {
		t.Errorf("endpoints labels (-want +got):\n%s", diff)
	}

	for _, p := range []*api.Pod{
		storePod("ready", "127.20.0.1"),
		storePod("unready", "127.20.0.2", notReady("ContainersNotReady")),
		storePod("pending", ""),
		storePod("other", "127.20.0.3", func(p *api.Pod) { p.Metadata.Labels = map[string]string{"app": "bye"} }),
	} {
		if _, err := reg.CreateWithStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	ready := api.EndpointAddress{IP: "127.20.0.1", Pod: "ready", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}
	unready := api.EndpointAddress{IP: "127.20.0.2", Pod: "unready", Revision: 1, Ready: false, Ports: []api.EndpointPort{httpEP(8080)}}
	wantEndpoints(t, reg, "hello", []api.EndpointAddress{ready, unready})

	// The unready pod becomes ready.
	setStatus(t, reg, "unready", func(p *api.Pod) {
		p.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue}}
	})
	unready.Ready = true
	wantEndpoints(t, reg, "hello", []api.EndpointAddress{ready, unready})

	// The node agent withdraws a pod to stop it: it leaves at once.
	setStatus(t, reg, "ready", notReady(ReasonTerminating))
	wantEndpoints(t, reg, "hello", []api.EndpointAddress{unready})

	// A relabelled pod leaves the service it no longer matches.
	obj, err := reg.Get(ctx, podKind, "default", "unready")
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*api.Pod)
	p.Metadata.Labels = map[string]string{"app": "elsewhere"}
	if _, err := reg.Update(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(t, reg, "hello", nil)

	// Pending pod gets its IP; then it is deleted.
	setStatus(t, reg, "pending", func(p *api.Pod) { p.Status.PodIP = "127.20.0.9" })
	wantEndpoints(t, reg, "hello", []api.EndpointAddress{{IP: "127.20.0.9", Pod: "pending", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}})
	if _, err := reg.Delete(ctx, podKind, "default", "pending", registry.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	wantEndpoints(t, reg, "hello", nil)
}

func setStatus(t *testing.T, reg *registry.Registry, pod string, mutate func(*api.Pod)) {
	t.Helper()
	obj, err := reg.Get(context.Background(), podKind, "default", pod)
	if err != nil {
		t.Fatal(err)
	}
	p := obj.(*api.Pod)
	mutate(p)
	if _, err := reg.UpdateStatus(context.Background(), p); err != nil {
		t.Fatal(err)
	}
}

// TestControllerRemovesOrphanEndpoints: Endpoints whose service was
// deleted while no controller ran are removed; hand edits are undone.
func TestControllerRemovesOrphanEndpoints(t *testing.T) {
	ctx := context.Background()
	reg := startController(t, func(reg *registry.Registry) {
		orphan := &api.Endpoints{Metadata: api.ObjectMeta{Name: "gone"}, Addresses: []api.EndpointAddress{{IP: "127.20.0.1", Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}}}
		if _, err := reg.Create(ctx, orphan); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Create(ctx, newService("hello")); err != nil {
			t.Fatal(err)
		}
	})
	eventually(t, "orphan removed", func() string {
		if _, _, err := endpointsOf(reg, "gone"); !api.IsNotFound(err) {
			return fmt.Sprintf("err = %v", err)
		}
		return ""
	})
	wantEndpoints(t, reg, "hello", nil)
	obj, err := reg.Get(ctx, endpointsKind, "default", "hello")
	if err != nil {
		t.Fatal(err)
	}
	ep := obj.(*api.Endpoints)
	ep.Addresses = []api.EndpointAddress{{IP: "127.20.0.200", Ready: true, Ports: []api.EndpointPort{httpEP(1)}}}
	if _, err := reg.Update(ctx, ep); err != nil {
		t.Fatal(err)
	}
	eventually(t, "hand edit undone", func() string {
		got, _, err := endpointsOf(reg, "hello")
		if err != nil || len(got) != 0 {
			return fmt.Sprintf("addresses %v, err %v", got, err)
		}
		return ""
	})
}

// TestControllerVIPsUnique: many services created at once, reconciled by
// several workers, get distinct addresses: exactly the first n of the range.
func TestControllerVIPsUnique(t *testing.T) {
	reg := startController(t, nil)
	ctx := context.Background()
	const n = 40
	for i := range n {
		if _, err := reg.Create(ctx, newService(fmt.Sprintf("s%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "distinct VIPs", func() string {
		seen := map[string]string{}
		for i := range n {
			name := fmt.Sprintf("s%d", i)
			ip := clusterIP(reg, name)
			last, ok := strings.CutPrefix(ip, "127.30.0.")
			if idx, err := strconv.Atoi(last); !ok || err != nil || idx < 1 || idx > n {
				return fmt.Sprintf("%s has %q, want one of 127.30.0.1-%d", name, ip, n)
			}
			if other, dup := seen[ip]; dup {
				return fmt.Sprintf("%s and %s share %s", other, name, ip)
			}
			seen[ip] = name
		}
		return ""
	})
}

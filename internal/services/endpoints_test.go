package services

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// testPod is a running pod of app hello, revision 1, with an "http" port
// 8080 and a "metrics" port 9090, ready unless changed.
func testPod(name, ip string, mutate ...func(*api.Pod)) *api.Pod {
	p := &api.Pod{
		Metadata: api.ObjectMeta{Name: name, Project: "default", Labels: map[string]string{"app": "hello", "tier": "web"}},
		Spec: api.PodSpec{App: "hello", Revision: 1, Containers: []api.Container{
			{Name: "web", Ports: []api.ContainerPort{{Name: "http", Port: 8080, Protocol: "TCP"}}},
			{Name: "side", Ports: []api.ContainerPort{{Name: "metrics", Port: 9090, Protocol: "TCP"}}},
		}},
		Status: api.PodStatus{Phase: api.PodRunning, PodIP: ip, Conditions: []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue}}},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func notReady(reason string) func(*api.Pod) {
	return func(p *api.Pod) {
		p.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionFalse, Reason: reason}}
	}
}

func testService(ports ...api.ServicePort) *api.Service {
	s := &api.Service{
		Metadata: api.ObjectMeta{Name: "hello", Project: "default"},
		Spec:     api.ServiceSpec{Selector: map[string]string{"app": "hello"}, Ports: ports},
	}
	api.SetDefaults(s)
	return s
}

var (
	httpPort    = api.ServicePort{Name: "http", Port: 80, TargetPort: api.FromString("http")}
	metricsPort = api.ServicePort{Name: "metrics", Port: 9000, TargetPort: api.FromInt(9090)}
)

func httpEP(target int32) api.EndpointPort {
	return api.EndpointPort{Name: "http", Port: 80, TargetPort: target, Protocol: "TCP"}
}

func TestComputeEndpoints(t *testing.T) {
	deleting := func(p *api.Pod) { p.Metadata.DeletionTimestamp = &t0 }
	for _, tc := range []struct {
		name string
		svc  *api.Service
		pods []*api.Pod
		want []api.EndpointAddress
	}{
		{"no pods", testService(httpPort), nil, nil},
		{"ready pods sorted by IP, named port resolved", testService(httpPort, metricsPort), []*api.Pod{
			testPod("b", "127.20.0.10"),
			testPod("a", "127.20.0.9"),
		}, []api.EndpointAddress{
			{IP: "127.20.0.9", Pod: "a", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080), {Name: "metrics", Port: 9000, TargetPort: 9090, Protocol: "TCP"}}},
			{IP: "127.20.0.10", Pod: "b", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080), {Name: "metrics", Port: 9000, TargetPort: 9090, Protocol: "TCP"}}},
		}},
		{"selector must match every key; other projects ignored", testService(httpPort), []*api.Pod{
			testPod("other-app", "127.20.0.1", func(p *api.Pod) { p.Metadata.Labels = map[string]string{"app": "bye"} }),
			testPod("no-labels", "127.20.0.2", func(p *api.Pod) { p.Metadata.Labels = nil }),
			testPod("other-project", "127.20.0.3", func(p *api.Pod) { p.Metadata.Project = "team" }),
			testPod("match", "127.20.0.4"),
		}, []api.EndpointAddress{{IP: "127.20.0.4", Pod: "match", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}}},
		{"pod without IP is left out", testService(httpPort), []*api.Pod{
			testPod("pending", "", func(p *api.Pod) { p.Status.Phase = api.PodPending }),
		}, nil},
		{"not ready pod is listed, not ready", testService(httpPort), []*api.Pod{
			testPod("starting", "127.20.0.5", notReady("ContainersNotReady")),
			testPod("no-condition", "127.20.0.6", func(p *api.Pod) { p.Status.Conditions = nil }),
		}, []api.EndpointAddress{
			{IP: "127.20.0.5", Pod: "starting", Revision: 1, Ready: false, Ports: []api.EndpointPort{httpEP(8080)}},
			{IP: "127.20.0.6", Pod: "no-condition", Revision: 1, Ready: false, Ports: []api.EndpointPort{httpEP(8080)}},
		}},
		{"terminating pods are left out entirely", testService(httpPort), []*api.Pod{
			testPod("deleting-but-ready", "127.20.0.1", deleting),
			testPod("withdrawn", "127.20.0.2", notReady(ReasonTerminating)),
			testPod("succeeded", "127.20.0.3", func(p *api.Pod) { p.Status.Phase = api.PodSucceeded }),
			testPod("failed", "127.20.0.4", func(p *api.Pod) { p.Status.Phase = api.PodFailed }),
			testPod("stays", "127.20.0.5"),
		}, []api.EndpointAddress{{IP: "127.20.0.5", Pod: "stays", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}}},
		{"named port resolved per pod; a pod lacking it skips that port only", testService(httpPort, metricsPort), []*api.Pod{
			testPod("rev2", "127.20.0.1", func(p *api.Pod) {
				p.Spec.Revision = 2
				p.Spec.Containers[0].Ports[0].Port = 8081
			}),
			testPod("no-http", "127.20.0.2", func(p *api.Pod) { p.Spec.Containers[0].Ports = nil }),
		}, []api.EndpointAddress{
			{IP: "127.20.0.1", Pod: "rev2", Revision: 2, Ready: true, Ports: []api.EndpointPort{httpEP(8081), {Name: "metrics", Port: 9000, TargetPort: 9090, Protocol: "TCP"}}},
			{IP: "127.20.0.2", Pod: "no-http", Revision: 1, Ready: true, Ports: []api.EndpointPort{{Name: "metrics", Port: 9000, TargetPort: 9090, Protocol: "TCP"}}},
		}},
		{"a pod resolving no port at all is left out", testService(httpPort), []*api.Pod{
			testPod("no-http", "127.20.0.2", func(p *api.Pod) { p.Spec.Containers[0].Ports = nil }),
		}, nil},
		{"named port must match the protocol", testService(api.ServicePort{Name: "dns", Port: 53, TargetPort: api.FromString("http"), Protocol: "UDP"}), []*api.Pod{
			testPod("tcp-only", "127.20.0.2"),
		}, nil},
		{"numeric targetPort needs no declaration", testService(api.ServicePort{Port: 7000, TargetPort: api.FromInt(7001)}), []*api.Pod{
			testPod("a", "127.20.0.2"),
		}, []api.EndpointAddress{{IP: "127.20.0.2", Pod: "a", Revision: 1, Ready: true, Ports: []api.EndpointPort{{Port: 7000, TargetPort: 7001, Protocol: "TCP"}}}}},
		{"a rollout hook's pod is never an endpoint, even when the selector matches", testService(httpPort), []*api.Pod{
			testPod("hello-2-hook-pre", "127.20.0.2", func(p *api.Pod) {
				p.Metadata.Labels[api.LabelHook] = "pre"
				p.Spec.RestartPolicy = api.RestartNever
			}),
			testPod("a", "127.20.0.3"),
		}, []api.EndpointAddress{{IP: "127.20.0.3", Pod: "a", Revision: 1, Ready: true, Ports: []api.EndpointPort{httpEP(8080)}}}},
		{"empty selector selects nothing", func() *api.Service { s := testService(httpPort); s.Spec.Selector = nil; return s }(), []*api.Pod{
			testPod("a", "127.20.0.2"),
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ComputeEndpoints(tc.svc, tc.pods)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("endpoints (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFirstFreeVIP(t *testing.T) {
	r := netip.MustParsePrefix("127.30.0.0/30") // .1 and .2 usable
	a := netip.MustParseAddr
	for _, tc := range []struct {
		used   []string
		want   string
		wantOK bool
	}{
		{nil, "127.30.0.1", true},
		{[]string{"127.30.0.1"}, "127.30.0.2", true},
		{[]string{"127.30.0.2"}, "127.30.0.1", true},
		{[]string{"127.30.0.1", "127.30.0.2"}, "invalid IP", false},
	} {
		used := map[netip.Addr]bool{}
		for _, u := range tc.used {
			used[a(u)] = true
		}
		got, ok := firstFreeVIP(r, used)
		if got.String() != tc.want || ok != tc.wantOK {
			t.Errorf("firstFreeVIP(used=%v) = %v, %v; want %s, %v", tc.used, got, ok, tc.want, tc.wantOK)
		}
	}
	for s, want := range map[string]bool{"127.30.0.1": true, "127.30.0.0": false, "127.30.0.3": false, "127.31.0.1": false, "": false, "x": false} {
		if _, ok := validVIP(r, s); ok != want {
			t.Errorf("validVIP(%q) = %v, want %v", s, ok, want)
		}
	}
}

package set

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/registry"
)

func service(t *testing.T, a *clitest.API, name string) *api.Service {
	t.Helper()
	obj, err := a.Reg.Get(context.Background(), cmdutil.ServiceKind, api.DefaultProject, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Service)
}

func route(t *testing.T, a *clitest.API, name string) *api.Route {
	t.Helper()
	obj, err := a.Reg.Get(context.Background(), cmdutil.RouteKind, api.DefaultProject, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Route)
}

// names lists the objects of a kind in the default project.
func names(t *testing.T, a *clitest.API, kind string) []string {
	t.Helper()
	info, _ := api.LookupKind(kind)
	objs, _, err := a.Reg.List(context.Background(), info, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		out = append(out, o.GetMeta().Name)
	}
	return out
}

// appWithPorts is an App whose containers declare the given ports.
func appWithPorts(name string, ports ...[]api.ContainerPort) *api.App {
	a := clitest.NewApp(name, 1)
	a.Spec.Template.Containers = nil
	for i, ps := range ports {
		a.Spec.Template.Containers = append(a.Spec.Template.Containers,
			api.Container{Name: "c" + strconv.Itoa(i), Command: []string{"/bin/true"}, Ports: ps})
	}
	return a
}

func weight(n int32) *int32 { return &n }

// stored is what a test compares: the user-owned parts of an object.
type stored struct {
	Labels map[string]string
	Spec   any
}

func TestExposeApp(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, appWithPorts("hello", []api.ContainerPort{{Name: "http", Port: 8080}, {Name: "admin", Port: 9090}}))

	out, errOut, code := a.RunOut(t, "expose", "app/hello")
	if code != 0 || out != "service/hello created\nroute/hello created\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	labels := map[string]string{"app": "hello"}
	wantSvc := stored{labels, api.ServiceSpec{
		Selector: map[string]string{"app": "hello"},
		Ports:    []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http"), Protocol: "TCP"}},
	}}
	wantRoute := stored{labels, api.RouteSpec{Path: "/", To: api.RouteBackend{Service: "hello", Weight: weight(100)}}}
	svc, rt := service(t, a, "hello"), route(t, a, "hello")
	if diff := cmp.Diff(wantSvc, stored{svc.Metadata.Labels, svc.Spec}); diff != "" {
		t.Errorf("service (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRoute, stored{rt.Metadata.Labels, rt.Spec}); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hello"}, names(t, a, "Service")); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}

	// A second run writes nothing.
	out, errOut, code = a.RunOut(t, "expose", "app", "hello")
	if code != 0 || out != "service/hello unchanged\nroute/hello unchanged\n" || errOut != "" {
		t.Fatalf("second run: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got := service(t, a, "hello").Metadata.ResourceVersion; got != svc.Metadata.ResourceVersion {
		t.Errorf("service resourceVersion moved from %d to %d on an unchanged expose", svc.Metadata.ResourceVersion, got)
	}
	if got := route(t, a, "hello").Metadata.ResourceVersion; got != rt.Metadata.ResourceVersion {
		t.Errorf("route resourceVersion moved from %d to %d on an unchanged expose", rt.Metadata.ResourceVersion, got)
	}

	// Other flags bring both back to what they say.
	out, _, code = a.RunOut(t, "expose", "app/hello", "--target-port", "admin", "--host", "hello.example.test")
	if code != 0 || out != "service/hello configured\nroute/hello configured\n" {
		t.Fatalf("changed flags: code %d, stdout %q", code, out)
	}
	if got := service(t, a, "hello").Spec.Ports; !cmp.Equal(got, []api.ServicePort{{Name: "admin", Port: 80, TargetPort: api.FromString("admin"), Protocol: "TCP"}}) {
		t.Errorf("service ports after --target-port admin: %+v", got)
	}
	if got := route(t, a, "hello").Spec.Host; got != "hello.example.test" {
		t.Errorf("route host %q, want hello.example.test", got)
	}
}

func TestExposeAppWithFlags(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, appWithPorts("api", []api.ContainerPort{{Port: 9000}}, []api.ContainerPort{{Name: "metrics", Port: 9100}}))

	out, errOut, code := a.RunOut(t, "expose", "app/api", "--port", "8080", "--host", "api.example.test", "--path", "/v1", "--name", "public")
	if code != 0 || out != "service/public created\nroute/public created\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	labels := map[string]string{"app": "api"}
	// The first container's first port is unnamed: the target is its number.
	wantSvc := stored{labels, api.ServiceSpec{
		Selector: map[string]string{"app": "api"},
		Ports:    []api.ServicePort{{Port: 8080, TargetPort: api.FromInt(9000), Protocol: "TCP"}},
	}}
	wantRoute := stored{labels, api.RouteSpec{Host: "api.example.test", Path: "/v1", To: api.RouteBackend{Service: "public", Weight: weight(100)}}}
	svc, rt := service(t, a, "public"), route(t, a, "public")
	if diff := cmp.Diff(wantSvc, stored{svc.Metadata.Labels, svc.Spec}); diff != "" {
		t.Errorf("service (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRoute, stored{rt.Metadata.Labels, rt.Spec}); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}

	// A named port of another container, and a number, are accepted too.
	for _, tc := range []struct {
		flag string
		want api.ServicePort
	}{
		{"metrics", api.ServicePort{Name: "metrics", Port: 80, TargetPort: api.FromString("metrics"), Protocol: "TCP"}},
		{"9200", api.ServicePort{Port: 80, TargetPort: api.FromInt(9200), Protocol: "TCP"}},
	} {
		name := "t" + tc.flag
		if _, errOut, code := a.RunOut(t, "expose", "app/api", "--target-port", tc.flag, "--name", name); code != 0 {
			t.Fatalf("--target-port %s: code %d, stderr %q", tc.flag, code, errOut)
		}
		if diff := cmp.Diff([]api.ServicePort{tc.want}, service(t, a, name).Spec.Ports); diff != "" {
			t.Errorf("--target-port %s: ports (-want +got):\n%s", tc.flag, diff)
		}
	}
}

func TestExposeService(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, &api.Service{Metadata: api.ObjectMeta{Name: "hello-v1", Labels: map[string]string{"app": "hello-v1", "tier": "web"}},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "hello-v1"}, Ports: []api.ServicePort{{Port: 80}}}})
	before := service(t, a, "hello-v1").Metadata.ResourceVersion

	out, errOut, code := a.RunOut(t, "expose", "svc/hello-v1", "--name", "hello", "--path", "/api")
	if code != 0 || out != "route/hello created\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	rt := route(t, a, "hello")
	want := stored{map[string]string{"app": "hello-v1", "tier": "web"}, api.RouteSpec{Path: "/api", To: api.RouteBackend{Service: "hello-v1", Weight: weight(100)}}}
	if diff := cmp.Diff(want, stored{rt.Metadata.Labels, rt.Spec}); diff != "" {
		t.Errorf("route (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"hello-v1"}, names(t, a, "Service")); diff != "" {
		t.Errorf("services (-want +got):\n%s", diff)
	}
	if got := service(t, a, "hello-v1").Metadata.ResourceVersion; got != before {
		t.Errorf("exposing a service rewrote it: resourceVersion %d, was %d", got, before)
	}
	out, _, code = a.RunOut(t, "expose", "service/hello-v1", "--name", "hello", "--path", "/api")
	if code != 0 || out != "route/hello unchanged\n" {
		t.Fatalf("second run: code %d, stdout %q", code, out)
	}
}

func TestExposeDryRunWritesNothing(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, appWithPorts("hello", []api.ContainerPort{{Name: "http", Port: 8080}}))
	out, errOut, code := a.RunOut(t, "expose", "app/hello", "--dry-run")
	if code != 0 || out != "service/hello created (dry run)\nroute/hello created (dry run)\n" || errOut != "" {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if s, r := names(t, a, "Service"), names(t, a, "Route"); len(s)+len(r) != 0 {
		t.Fatalf("a dry run wrote services %v and routes %v", s, r)
	}
}

func TestExposeRefusesBadInput(t *testing.T) {
	a := startTestAPI(t, nil, nil)
	a.Create(t, appWithPorts("hello", []api.ContainerPort{{Name: "http", Port: 8080}}))
	a.Create(t, appWithPorts("worker", nil))
	a.Create(t, appWithPorts("admin", []api.ContainerPort{{Port: 7000}}))
	a.Create(t, &api.Service{Metadata: api.ObjectMeta{Name: "db"},
		Spec: api.ServiceSpec{Selector: map[string]string{"app": "db"}, Ports: []api.ServicePort{{Port: 5432}}}})
	cases := []struct {
		args []string
		err  string
	}{
		{[]string{"expose"}, "error: must name a kind: one of " + view.KindList()},
		{[]string{"expose", "app/missing"}, `error: apps "missing" not found in project "default"`},
		{[]string{"expose", "svc/missing"}, `error: services "missing" not found in project "default"`},
		{[]string{"expose", "pod/hello"}, "error: pods cannot be exposed: expose app/NAME (a Service and a Route) or svc/NAME (a Route)"},
		{[]string{"expose", "app"}, "error: expose takes exactly one app or service: slipway expose app/NAME (got 0 names)"},
		{[]string{"expose", "app", "hello", "worker"}, "error: expose takes exactly one app or service: slipway expose app/NAME (got 2 names)"},
		{[]string{"expose", "app/hello", "--port", "0"}, "error: invalid --port 0: must be from 1 to 65535"},
		{[]string{"expose", "app/hello", "--port", "65536"}, "error: invalid --port 65536: must be from 1 to 65535"},
		{[]string{"expose", "app/hello", "--target-port", "0"}, "error: invalid --target-port 0: must be from 1 to 65535, or the name of a port of the app"},
		{[]string{"expose", "app/hello", "--target-port", "web"},
			`error: invalid --target-port "web": app hello declares no port of that name (its named ports: http); give a number or one of its port names`},
		{[]string{"expose", "app/admin", "--target-port", "web"},
			`error: invalid --target-port "web": app admin declares no port of that name (it names none); give a number or one of its port names`},
		{[]string{"expose", "app/worker"}, "error: app worker declares no port in its first container: give --target-port (the port its pods listen on)"},
		{[]string{"expose", "svc/db", "--port", "80"}, "error: --port applies to app/NAME only: a route serves the first port of service db"},
		{[]string{"expose", "svc/db", "--target-port", "80"}, "error: --target-port applies to app/NAME only: a route serves the first port of service db"},
		{[]string{"expose", "app/hello", "--path", "api"}, `error: Route "hello" is invalid: spec.path: Invalid value: "api": must start with '/'`},
		{[]string{"expose", "app/hello", "--host", "Bad_Host"}, `error: Route "hello" is invalid: spec.host: Invalid value: "Bad_Host": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`},
		{[]string{"expose", "app/hello", "--name", "Hello"}, `error: Service "Hello" is invalid: metadata.name: Invalid value: "Hello": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123')`},
	}
	for _, tc := range cases {
		out, errOut, code := a.RunOut(t, tc.args...)
		if code != 1 || out != "" || errOut != tc.err+"\n" {
			t.Errorf("%q: code %d, stdout %q, stderr %q; want 1 and %q", tc.args, code, out, errOut, tc.err)
		}
	}
	if diff := cmp.Diff([]string{"db"}, names(t, a, "Service")); diff != "" {
		t.Errorf("a refused expose wrote services (-want +got):\n%s", diff)
	}
	if r := names(t, a, "Route"); len(r) != 0 {
		t.Errorf("a refused expose wrote routes %v", r)
	}
}

package api_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/apitest"
)

func i32(n int32) *int32 { return &n }
func i64(n int64) *int64 { return &n }

func TestSetDefaultsApp(t *testing.T) {
	app := &api.App{
		Metadata: api.ObjectMeta{Name: "hello"},
		Spec: api.AppSpec{
			Template: api.PodTemplate{Containers: []api.Container{{
				Name:           "web",
				Command:        []string{"./server"},
				Ports:          []api.ContainerPort{{Name: "http", Port: 8080}},
				ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Port: api.FromString("http")}},
				LivenessProbe:  &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(8080)}, PeriodSeconds: 5},
			}}},
			Strategy: api.Strategy{
				Hooks: &api.Hooks{Pre: &api.Hook{Command: []string{"migrate"}}},
			},
		},
	}
	api.SetDefaults(app)
	want := &api.App{
		TypeMeta: api.TypeMeta{APIVersion: "slipway.dev/v1", Kind: "App"},
		Metadata: api.ObjectMeta{Name: "hello", Project: "default"},
		Spec: api.AppSpec{
			Replicas: i32(1),
			Template: api.PodTemplate{
				Containers: []api.Container{{
					Name:    "web",
					Command: []string{"./server"},
					Ports:   []api.ContainerPort{{Name: "http", Port: 8080, Protocol: "TCP"}},
					ReadinessProbe: &api.Probe{
						HTTPGet:       &api.HTTPGetAction{Path: "/", Port: api.FromString("http"), Scheme: "HTTP"},
						PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
					},
					LivenessProbe: &api.Probe{
						TCPSocket:     &api.TCPSocketAction{Port: api.FromInt(8080)},
						PeriodSeconds: 5, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3,
					},
				}},
				TerminationGracePeriodSeconds: i64(30),
			},
			Strategy: api.Strategy{
				Type: "Rolling",
				Rolling: &api.RollingStrategy{
					MaxSurge:       &api.IntOrString{IsString: true, StrVal: "25%"},
					MaxUnavailable: &api.IntOrString{},
				},
				Hooks: &api.Hooks{Pre: &api.Hook{Command: []string{"migrate"}, FailurePolicy: "Abort"}},
			},
			RevisionHistoryLimit:    i32(10),
			ProgressDeadlineSeconds: i32(600),
			Triggers:                []api.Trigger{{Type: "ConfigChange"}},
		},
	}
	if diff := cmp.Diff(want, app); diff != "" {
		t.Errorf("defaulted App (-want +got):\n%s", diff)
	}
}

func TestSetDefaultsStrategies(t *testing.T) {
	f := 0.99
	app := &api.App{Spec: api.AppSpec{Strategy: api.Strategy{
		Type: "Canary",
		Canary: &api.CanaryStrategy{
			Steps:    []api.CanaryStep{{SetWeight: i32(10)}, {Analysis: &api.Analysis{Metrics: []api.AnalysisMetric{{Name: "ok", Type: "successRate", Min: &f}}}}},
			Analysis: &api.Analysis{Metrics: []api.AnalysisMetric{{Name: "hook", Type: "webhook", Webhook: &api.WebhookMetric{URL: "http://x"}}}},
		},
	}}}
	api.SetDefaults(app)
	c := app.Spec.Strategy.Canary
	if app.Spec.Strategy.Rolling != nil {
		t.Errorf("rolling defaulted on a Canary strategy: %+v", app.Spec.Strategy.Rolling)
	}
	if got := c.Steps[1].Analysis; got.Interval != "10s" || got.InconclusivePolicy != "Wait" {
		t.Errorf("step analysis: interval %q, policy %q; want 10s, Wait", got.Interval, got.InconclusivePolicy)
	}
	if got := c.Analysis.Metrics[0].Webhook.TimeoutSeconds; got != 10 {
		t.Errorf("webhook timeout = %d, want 10", got)
	}

	bg := &api.App{Spec: api.AppSpec{Strategy: api.Strategy{Type: "BlueGreen", BlueGreen: &api.BlueGreenStrategy{}}}}
	api.SetDefaults(bg)
	if got := bg.Spec.Strategy.BlueGreen.ScaleDownDelaySeconds; got == nil || *got != 30 {
		t.Errorf("blueGreen.scaleDownDelaySeconds = %v, want 30", got)
	}
}

func TestSetDefaultsServiceRouteSecret(t *testing.T) {
	svc := &api.Service{Spec: api.ServiceSpec{Ports: []api.ServicePort{{Port: 80}, {Name: "x", Port: 81, TargetPort: api.FromString("http")}}}}
	api.SetDefaults(svc)
	wantPorts := []api.ServicePort{
		{Port: 80, TargetPort: api.FromInt(80), Protocol: "TCP"},
		{Name: "x", Port: 81, TargetPort: api.FromString("http"), Protocol: "TCP"},
	}
	if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
		t.Errorf("service ports (-want +got):\n%s", diff)
	}

	rt := &api.Route{Spec: api.RouteSpec{
		To:                api.RouteBackend{Service: "a"},
		AlternateBackends: []api.RouteBackend{{Service: "b"}, {Service: "c", Weight: i32(0)}},
		SessionAffinity:   &api.SessionAffinity{Type: "Cookie"},
		TLS:               &api.RouteTLS{Termination: "edge", SecretName: "cert"},
	}}
	api.SetDefaults(rt)
	wantRoute := api.RouteSpec{
		Path:              "/",
		To:                api.RouteBackend{Service: "a", Weight: i32(100)},
		AlternateBackends: []api.RouteBackend{{Service: "b", Weight: i32(100)}, {Service: "c", Weight: i32(0)}},
		SessionAffinity:   &api.SessionAffinity{Type: "Cookie", CookieName: "slipway-affinity"},
		TLS:               &api.RouteTLS{Termination: "edge", SecretName: "cert", InsecureEdgeTerminationPolicy: "None"},
	}
	if diff := cmp.Diff(wantRoute, rt.Spec); diff != "" {
		t.Errorf("route spec (-want +got):\n%s", diff)
	}

	p := &api.Project{Metadata: api.ObjectMeta{Name: "team"}}
	api.SetDefaults(p)
	if p.Metadata.Project != "" || p.Kind != "Project" || p.APIVersion != api.Version {
		t.Errorf("project defaulted to %+v %+v", p.TypeMeta, p.Metadata)
	}
	s := &api.Secret{}
	api.SetDefaults(s)
	if s.Type != "Opaque" || s.Metadata.Project != "default" {
		t.Errorf("secret type %q project %q", s.Type, s.Metadata.Project)
	}
}

// TestSetDefaultsIdempotent: defaulting a defaulted object changes nothing,
// which is what lets apply report "unchanged".
func TestSetDefaultsIdempotent(t *testing.T) {
	for _, obj := range apitest.SampleObjects() {
		api.SetDefaults(obj)
		once := apitest.Clone(t, obj)
		api.SetDefaults(obj)
		if diff := cmp.Diff(once, obj); diff != "" {
			t.Errorf("%s: second SetDefaults changed (-once +twice):\n%s", api.KindOf(obj), diff)
		}
	}
}

func TestSetDefaultsKeepsKind(t *testing.T) {
	app := &api.App{TypeMeta: api.TypeMeta{APIVersion: "v2", Kind: "Service"}}
	api.SetDefaults(app)
	if app.APIVersion != "v2" || app.Kind != "Service" {
		t.Errorf("SetDefaults overwrote a set apiVersion/kind: %+v", app.TypeMeta)
	}
	api.SetDefaults(nil) // must not panic
}

func TestSetDefaultsPodRestartPolicy(t *testing.T) {
	p := &api.Pod{Spec: api.PodSpec{Containers: []api.Container{{Name: "web", Command: []string{"x"}}}}}
	api.SetDefaults(p)
	if p.Spec.RestartPolicy != api.RestartAlways {
		t.Errorf("restartPolicy = %q, want Always", p.Spec.RestartPolicy)
	}
	never := &api.Pod{Spec: api.PodSpec{RestartPolicy: api.RestartNever}}
	api.SetDefaults(never)
	if never.Spec.RestartPolicy != api.RestartNever {
		t.Errorf("a set restartPolicy was overwritten with %q", never.Spec.RestartPolicy)
	}
	if got := (&api.PodSpec{}).Restarts(); got != api.RestartAlways {
		t.Errorf("Restarts() of an unset policy = %q, want Always", got)
	}
}

// Package apitest holds valid sample objects of every kind, shared by the
// tests of api and api/validation.
package apitest

import (
	"encoding/json"
	"testing"

	"slipway.dev/slipway/internal/api"
)

func i32(n int32) *int32     { return &n }
func f64(f float64) *float64 { return &f }
func mode(m int32) *int32    { return &m }

// Clone deep-copies obj through its JSON form.
func Clone(t *testing.T, obj api.Object) api.Object {
	t.Helper()
	info, ok := api.LookupKind(api.KindOf(obj))
	if !ok {
		t.Fatalf("no kind for %T", obj)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	c := info.New()
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// ValidApp returns a valid App that sets most fields: two containers with
// ports, env, probes and limits, a Canary strategy with analysis and a hook.
func ValidApp() *api.App {
	return &api.App{
		Metadata: api.ObjectMeta{Name: "hello", Labels: map[string]string{"tier": "web", "example.com/team": "a_b.c"}},
		Spec: api.AppSpec{
			Replicas: i32(3),
			Template: api.PodTemplate{
				Metadata: api.TemplateMeta{Labels: map[string]string{"tier": "web"}},
				Containers: []api.Container{{
					Name:    "web",
					Command: []string{"./server"},
					Args:    []string{"--verbose"},
					Env: []api.EnvVar{
						{Name: "VERSION", Value: "1"},
						{Name: "DB_PASSWORD", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "db", Key: "password"}}},
					},
					Ports:          []api.ContainerPort{{Name: "http", Port: 8080}, {Name: "metrics", Port: 9090}},
					ReadinessProbe: &api.Probe{HTTPGet: &api.HTTPGetAction{Path: "/ready", Port: api.FromString("http"), Host: "hello.local:8080"}},
					LivenessProbe:  &api.Probe{TCPSocket: &api.TCPSocketAction{Port: api.FromInt(8080)}},
					StartupProbe:   &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}, FailureThreshold: 30},
					Resources:      api.ResourceRequirements{Limits: api.ResourceList{"cpu": "500m", "memory": "256Mi"}},
				}, {
					Name:  "sidecar",
					Image: "registry.example.com/sidecar:1.2",
					Ports: []api.ContainerPort{{Name: "admin", Port: 8081}},
				}},
			},
			Strategy: api.Strategy{
				Type: "Canary",
				Canary: &api.CanaryStrategy{
					Steps: []api.CanaryStep{
						{SetWeight: i32(10)},
						{Pause: &api.PauseStep{Duration: "30s"}},
						{Pause: &api.PauseStep{}},
						{Analysis: &api.Analysis{Metrics: []api.AnalysisMetric{{Name: "p99", Type: "latencyP99", Max: f64(250)}}}},
						{SetWeight: i32(100)},
					},
					Analysis: &api.Analysis{Metrics: []api.AnalysisMetric{
						{Name: "ok", Type: "successRate", Min: f64(0.99)},
						{Name: "errors", Type: "errorRate", Max: f64(0.01)},
						{Name: "check", Type: "webhook", Webhook: &api.WebhookMetric{URL: "https://ci.example.com/check"}},
					}, MinRequests: 100, FailureLimit: 2},
					Match: []api.RouteMatch{{Header: &api.KeyMatch{Name: "X-Canary", Value: "always"}}},
				},
				Hooks: &api.Hooks{Pre: &api.Hook{Command: []string{"./migrate"}, TimeoutSeconds: 60}},
			},
		},
	}
}

// ValidService returns a valid Service with two named ports.
func ValidService() *api.Service {
	return &api.Service{
		Metadata: api.ObjectMeta{Name: "hello"},
		Spec: api.ServiceSpec{
			Selector: map[string]string{"app": "hello"},
			Ports:    []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}, {Name: "metrics", Port: 9090}},
		},
	}
}

// ValidRoute returns a valid Route that sets every optional field.
func ValidRoute() *api.Route {
	return &api.Route{
		Metadata: api.ObjectMeta{Name: "hello"},
		Spec: api.RouteSpec{
			Host:              "hello.example.com",
			Path:              "/api",
			To:                api.RouteBackend{Service: "hello", Weight: i32(90)},
			AlternateBackends: []api.RouteBackend{{Service: "hello-b", Weight: i32(10)}},
			Match: []api.RouteMatch{
				{Cookie: &api.KeyMatch{Name: "beta", Value: "1"}, Service: "hello-b"},
				{Query: &api.KeyMatch{Name: "v", Value: "^b[0-9]+$", Regex: true}},
			},
			SessionAffinity: &api.SessionAffinity{Type: "Cookie", TTL: "1h"},
			Timeouts:        &api.RouteTimeouts{Connect: "2s", Response: "30s", Idle: "5m"},
			Retries:         &api.RouteRetries{Attempts: 2, OnStatus: []int32{502, 503}},
			Mirror:          &api.RouteMirror{Service: "shadow", Percent: 5},
			TLS:             &api.RouteTLS{Termination: "edge", SecretName: "hello-cert", InsecureEdgeTerminationPolicy: "Redirect"},
			MaxBodyBytes:    1 << 20,
		},
	}
}

// SampleObjects returns one valid object of every kind.
func SampleObjects() []api.Object {
	app := ValidApp()
	return []api.Object{
		&api.Project{Metadata: api.ObjectMeta{Name: "team-a"}, Spec: api.ProjectSpec{DisplayName: "Team A"}},
		&api.Secret{Metadata: api.ObjectMeta{Name: "db"}, Data: map[string]string{"password": "s3cret", "tls.crt": "x"}},
		ValidService(),
		app,
		&api.Revision{Metadata: api.ObjectMeta{Name: "hello-1"}, Spec: api.RevisionSpec{App: "hello", Number: 1, Replicas: 3, Template: app.Spec.Template}},
		&api.Pod{Metadata: api.ObjectMeta{Name: "hello-1-abcde", Labels: map[string]string{"app": "hello", "revision": "1"}},
			Spec: api.PodSpec{App: "hello", Revision: 1, Containers: app.Spec.Template.Containers}},
		ValidRoute(),
		&api.Event{Metadata: api.ObjectMeta{Name: "hello.1"}, InvolvedObject: api.ObjectReference{Kind: "App", Name: "hello"}, Reason: "ScalingRevision", Message: "scaled"},
	}
}

// VolumeApp is ValidApp with one volume of each source, mounted.
func VolumeApp() *api.App {
	a := ValidApp()
	a.Spec.Template.Volumes = []api.Volume{
		{Name: "data", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}},
		{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{Medium: api.MediumMemory, SizeLimit: "64Mi"}},
		{Name: "creds", Secret: &api.SecretVolumeSource{SecretName: "db", Items: []api.KeyToPath{{Key: "password", Path: "db/password"}}}},
		{Name: "conf", ConfigMap: &api.ConfigMapVolumeSource{Name: "web", DefaultMode: mode(0o444)}},
	}
	a.Spec.Template.Containers[0].VolumeMounts = []api.VolumeMount{
		{Name: "data", MountPath: "/var/lib/data", SubPath: "web"},
		{Name: "scratch", MountPath: "/tmp/scratch"},
		{Name: "creds", MountPath: "/etc/creds", ReadOnly: true},
		{Name: "conf", MountPath: "/etc/web"},
	}
	a.Spec.Strategy = api.Strategy{Type: api.StrategyRecreate}
	return a
}

// Claim returns a valid ReadWriteOnce claim of 1Gi named db-data.
func Claim() *api.PersistentVolumeClaim {
	return &api.PersistentVolumeClaim{Metadata: api.ObjectMeta{Name: "db-data"}, Spec: api.PersistentVolumeClaimSpec{
		AccessModes: []string{api.ReadWriteOnce},
		Resources:   api.VolumeResourceRequirements{Requests: api.ResourceList{"storage": "1Gi"}},
	}}
}

package validation_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/apitest"
	"slipway.dev/slipway/internal/api/validation"
)

func i32(n int32) *int32     { return &n }
func i64(n int64) *int64     { return &n }
func f64(f float64) *float64 { return &f }

func TestValidateAcceptsValidObjects(t *testing.T) {
	for _, obj := range apitest.SampleObjects() {
		api.SetDefaults(obj)
		if errs := validation.Validate(obj); len(errs) != 0 {
			t.Errorf("%s: unexpected errors:\n%s", api.KindOf(obj), strings.Join(messages(errs), "\n"))
		}
	}
}

func messages(errs api.FieldErrors) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Error()
	}
	return out
}

// validationCase changes a valid, defaulted object and lists the exact
// errors Validate must report, in order.
type validationCase struct {
	name   string
	obj    func() api.Object
	mutate func(api.Object)
	want   []string
}

func appCase(name string, mutate func(a *api.App), want ...string) validationCase {
	return validationCase{name, func() api.Object { return apitest.ValidApp() }, func(o api.Object) { mutate(o.(*api.App)) }, want}
}

func svcCase(name string, mutate func(s *api.Service), want ...string) validationCase {
	return validationCase{name, func() api.Object { return apitest.ValidService() }, func(o api.Object) { mutate(o.(*api.Service)) }, want}
}

func routeCase(name string, mutate func(r *api.Route), want ...string) validationCase {
	return validationCase{name, func() api.Object { return apitest.ValidRoute() }, func(o api.Object) { mutate(o.(*api.Route)) }, want}
}

func c0(a *api.App) *api.Container { return &a.Spec.Template.Containers[0] }

var validationCases = []validationCase{
	appCase("negative replicas", func(a *api.App) { a.Spec.Replicas = i32(-1) },
		"spec.replicas: Invalid value: -1: must be greater than or equal to 0"),
	appCase("too many replicas", func(a *api.App) { a.Spec.Replicas = i32(1001) },
		"spec.replicas: Invalid value: 1001: must be less than or equal to 1000"),
	appCase("wrong apiVersion", func(a *api.App) { a.APIVersion = "v1" },
		`apiVersion: Unsupported value: "v1": supported values: "slipway.dev/v1"`),
	appCase("kind mismatch", func(a *api.App) { a.Kind = "Service" },
		`kind: Invalid value: "Service": must be "App" for this object`),
	appCase("missing name", func(a *api.App) { a.Metadata.Name = "" },
		"metadata.name: Required value"),
	appCase("uppercase name", func(a *api.App) { a.Metadata.Name = "Hello" },
		`metadata.name: Invalid value: "Hello": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`),
	appCase("long app name", func(a *api.App) { a.Metadata.Name = strings.Repeat("a", 41) },
		"metadata.name: Too long: may not be longer than 40 (pod names are <app>-<revision>-<5 random characters> and must fit in 63)"),
	appCase("bad project", func(a *api.App) { a.Metadata.Project = "my_project" },
		`metadata.project: Invalid value: "my_project": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`),
	appCase("bad label key and value", func(a *api.App) { a.Metadata.Labels = map[string]string{"-x": "ok", "y": "bad value"} },
		`metadata.labels["-x"]: Invalid value: "-x": key: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc')`,
		`metadata.labels["y"]: Invalid value: "bad value": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345')`),
	appCase("label prefix", func(a *api.App) { a.Metadata.Labels = map[string]string{"Example.com/x": "1", "/y": "2"} },
		`metadata.labels["/y"]: Invalid value: "/y": key: prefix part must be non-empty`,
		`metadata.labels["Example.com/x"]: Invalid value: "Example.com/x": key: prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`),
	appCase("huge annotations", func(a *api.App) { a.Metadata.Annotations = map[string]string{"note": strings.Repeat("x", 256<<10)} },
		"metadata.annotations: Too long: may not be longer than 262144 bytes in total"),
	appCase("template sets app label", func(a *api.App) { a.Spec.Template.Metadata.Labels["app"] = "other" },
		`spec.template.metadata.labels["app"]: Forbidden: set by Slipway on every pod (app: <app name>, revision: <number>)`),
	appCase("template sets the hook label", func(a *api.App) { a.Spec.Template.Metadata.Labels[api.LabelHook] = "pre" },
		`spec.template.metadata.labels["slipway.dev/hook"]: Forbidden: reserved for the one-off pods of rollout hooks, which no service selects`),
	appCase("no containers", func(a *api.App) { a.Spec.Template.Containers = nil },
		"spec.template.containers: Required value: at least one container is required"),
	appCase("duplicate container names", func(a *api.App) { a.Spec.Template.Containers[1].Name = "web" },
		`spec.template.containers[1].name: Duplicate value: "web"`),
	appCase("no command nor image", func(a *api.App) { c0(a).Command = nil },
		"spec.template.containers[0].command: Required value: command is required by the process runtime (or image, by the Docker runtime)"),
	appCase("empty program", func(a *api.App) { c0(a).Command = []string{""} },
		"spec.template.containers[0].command[0]: Required value: the program to run"),
	appCase("port out of range", func(a *api.App) { c0(a).Ports[1].Port = 70000 },
		"spec.template.containers[0].ports[1].port: Invalid value: 70000: must be between 1 and 65535, inclusive"),
	appCase("bad port protocol", func(a *api.App) { c0(a).Ports[0].Protocol = "SCTP" },
		`spec.template.containers[0].ports[0].protocol: Unsupported value: "SCTP": supported values: "TCP", "UDP"`),
	appCase("port name too long", func(a *api.App) { c0(a).Ports[1].Name = "metrics-endpoint-x" },
		`spec.template.containers[0].ports[1].name: Invalid value: "metrics-endpoint-x": must be no more than 15 characters`),
	appCase("port name without letter", func(a *api.App) { c0(a).Ports[1].Name = "9090" },
		`spec.template.containers[0].ports[1].name: Invalid value: "9090": must contain at least one letter (a-z)`),
	appCase("port name duplicated across containers", func(a *api.App) { a.Spec.Template.Containers[1].Ports[0].Name = "http" },
		`spec.template.containers[1].ports[0].name: Duplicate value: "http"`),
	appCase("port number duplicated across containers", func(a *api.App) { a.Spec.Template.Containers[1].Ports[0].Port = 8080 },
		"spec.template.containers[1].ports[0].port: Duplicate value: 8080: the containers of a pod share one IP: a port may be declared once per protocol"),
	appCase("bad env name", func(a *api.App) { c0(a).Env[0].Name = "1VERSION" },
		`spec.template.containers[0].env[0].name: Invalid value: "1VERSION": a valid environment variable name must consist of alphabetic characters, digits, '_', '-' or '.', and must not start with a digit or '-' or '.' (e.g. 'MY_VAR' or 'my.var')`),
	appCase("duplicate env name", func(a *api.App) { c0(a).Env[1].Name = "VERSION" },
		`spec.template.containers[0].env[1].name: Duplicate value: "VERSION"`),
	appCase("value and valueFrom", func(a *api.App) { c0(a).Env[1].Value = "x" },
		`spec.template.containers[0].env[1].valueFrom: Invalid value: "": may not be set when value is not empty`),
	appCase("secretKeyRef without key", func(a *api.App) { c0(a).Env[1].ValueFrom.SecretKeyRef.Key = "" },
		"spec.template.containers[0].env[1].valueFrom.secretKeyRef.key: Required value"),
	appCase("valueFrom without source", func(a *api.App) { c0(a).Env[1].ValueFrom.SecretKeyRef = nil },
		"spec.template.containers[0].env[1].valueFrom.secretKeyRef: Required value: the only source of a value is secretKeyRef"),
	appCase("1 MB env value", func(a *api.App) { c0(a).Env[0].Value = strings.Repeat("x", 1<<20) },
		"spec.template.containers[0].env[0].value: Too long: may not be longer than 131072 (bytes; Linux refuses to start a process with one NAME=value environment string over 128 KiB)"),
	appCase("env total over 1 MiB", func(a *api.App) {
		for i := range 9 {
			c0(a).Env = append(c0(a).Env, api.EnvVar{Name: "V" + string(rune('A'+i)), Value: strings.Repeat("x", 120<<10)})
		}
	}, "spec.template.containers[0]: Too long: command, args and env together may not be longer than 1048576 bytes"),
	appCase("probe without handler", func(a *api.App) { c0(a).LivenessProbe.TCPSocket = nil },
		"spec.template.containers[0].livenessProbe: Required value: must specify a handler: exactly one of httpGet, tcpSocket or exec"),
	appCase("probe with two handlers", func(a *api.App) { c0(a).LivenessProbe.Exec = &api.ExecAction{Command: []string{"true"}} },
		"spec.template.containers[0].livenessProbe.exec: Forbidden: may not specify more than 1 handler type"),
	appCase("probe on undeclared port name", func(a *api.App) { c0(a).ReadinessProbe.HTTPGet.Port = api.FromString("admin") },
		`spec.template.containers[0].readinessProbe.httpGet.port: Invalid value: "admin": must be a port number or the name of a port declared by the container`),
	appCase("probe port zero", func(a *api.App) { c0(a).LivenessProbe.TCPSocket.Port = api.FromInt(0) },
		"spec.template.containers[0].livenessProbe.tcpSocket.port: Invalid value: 0: must be between 1 and 65535, inclusive"),
	appCase("probe thresholds", func(a *api.App) {
		c0(a).LivenessProbe.SuccessThreshold = 2
		c0(a).ReadinessProbe.FailureThreshold = -1
		c0(a).ReadinessProbe.HTTPGet.Path = "ready"
	},
		`spec.template.containers[0].readinessProbe.httpGet.path: Invalid value: "ready": must be an absolute path starting with '/', without spaces or '#'`,
		"spec.template.containers[0].readinessProbe.failureThreshold: Invalid value: -1: must be greater than or equal to 1",
		"spec.template.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1 for liveness and startup probes"),
	appCase("probe host header", func(a *api.App) { c0(a).ReadinessProbe.HTTPGet.Host = "http://evil.example.com/" },
		`spec.template.containers[0].readinessProbe.httpGet.host: Invalid value: "http://evil.example.com/": must be a host name or IP address, optionally with :port (the probe always connects to the pod's own address; this is only the Host header)`),
	appCase("resources", func(a *api.App) {
		c0(a).Resources.Limits = api.ResourceList{"cpu": "0", "memory": "1Mi", "gpu": "1", "ephemeral": "x"}
	},
		`spec.template.containers[0].resources.limits["cpu"]: Invalid value: "0": must be greater than 0`,
		`spec.template.containers[0].resources.limits["ephemeral"]: Unsupported value: "ephemeral": supported values: "cpu", "memory"`,
		`spec.template.containers[0].resources.limits["gpu"]: Unsupported value: "gpu": supported values: "cpu", "memory"`,
		`spec.template.containers[0].resources.limits["memory"]: Invalid value: "1Mi": must be at least 4Mi: no process starts in less`),
	appCase("unparseable quantity", func(a *api.App) { c0(a).Resources.Limits["memory"] = "lots" },
		`spec.template.containers[0].resources.limits["memory"]: Invalid value: "lots": must be a quantity such as 500m, 0.5, 2, 256Mi or 1G`),
	appCase("negative grace period", func(a *api.App) { a.Spec.Template.TerminationGracePeriodSeconds = i64(-5) },
		"spec.template.terminationGracePeriodSeconds: Invalid value: -5: must be greater than or equal to 0"),
	appCase("unsupported strategy", func(a *api.App) { a.Spec.Strategy.Type = "Blue"; a.Spec.Strategy.Canary = nil },
		`spec.strategy.type: Unsupported value: "Blue": supported values: "Rolling", "Recreate", "BlueGreen", "Canary"`),
	appCase("mismatched sub-object", func(a *api.App) { a.Spec.Strategy.Rolling = &api.RollingStrategy{} },
		`spec.strategy.rolling: Forbidden: may not be set when type is "Canary"`),
	appCase("rolling both zero", func(a *api.App) {
		a.Spec.Strategy = api.Strategy{Type: "Rolling", Rolling: &api.RollingStrategy{MaxSurge: &api.IntOrString{IsString: true, StrVal: "0%"}, MaxUnavailable: &api.IntOrString{}}}
	}, `spec.strategy.rolling.maxUnavailable: Invalid value: "0": may not be 0 when maxSurge is 0: the rollout could never make progress`),
	appCase("rolling bad percent", func(a *api.App) {
		a.Spec.Strategy = api.Strategy{Type: "Rolling", Rolling: &api.RollingStrategy{MaxSurge: &api.IntOrString{IsString: true, StrVal: "150%"}, MaxUnavailable: &api.IntOrString{IntVal: -1}}}
	},
		`spec.strategy.rolling.maxSurge: Invalid value: "150%": must be an integer or a percentage from 0% to 100% (e.g. 1 or 25%)`,
		"spec.strategy.rolling.maxUnavailable: Invalid value: -1: must be greater than or equal to 0"),
	appCase("canary step weight", func(a *api.App) { a.Spec.Strategy.Canary.Steps[0].SetWeight = i32(101) },
		"spec.strategy.canary.steps[0].setWeight: Invalid value: 101: must be between 0 and 100, inclusive"),
	appCase("canary step with two actions", func(a *api.App) { a.Spec.Strategy.Canary.Steps[0].Pause = &api.PauseStep{} },
		"spec.strategy.canary.steps[0].pause: Forbidden: a step is exactly one of setWeight, pause or analysis"),
	appCase("canary empty step", func(a *api.App) { a.Spec.Strategy.Canary.Steps[4] = api.CanaryStep{} },
		"spec.strategy.canary.steps[4]: Required value: a step is exactly one of setWeight, pause or analysis"),
	appCase("canary pause duration", func(a *api.App) {
		a.Spec.Strategy.Canary.Steps[1].Pause.Duration = "30"
		a.Spec.Strategy.Canary.Steps[2].Pause.Duration = "-1s"
	},
		`spec.strategy.canary.steps[1].pause.duration: Invalid value: "30": must be a duration such as 500ms, 30s or 5m`,
		`spec.strategy.canary.steps[2].pause.duration: Invalid value: "-1s": must be greater than 0`),
	appCase("analysis metrics", func(a *api.App) {
		m := a.Spec.Strategy.Canary.Analysis.Metrics
		m[0].Min = f64(1.5)
		m[1].Type = "p95"
		m[2].Webhook.URL = "ftp://x"
		m[2].Webhook.TimeoutSeconds = 1000
		a.Spec.Strategy.Canary.Steps[3].Analysis.Metrics[0].Max = nil
	},
		"spec.strategy.canary.steps[3].analysis.metrics[0].max: Required value: the highest passing latency in milliseconds, greater than 0 (e.g. 250)",
		"spec.strategy.canary.analysis.metrics[0].min: Invalid value: 1.5: the lowest passing share of non-5xx responses, from 0 to 1 (e.g. 0.99)",
		`spec.strategy.canary.analysis.metrics[1].type: Unsupported value: "p95": supported values: "successRate", "errorRate", "latencyP50", "latencyP90", "latencyP99", "webhook"`,
		`spec.strategy.canary.analysis.metrics[2].webhook.url: Invalid value: "ftp://x": must be an absolute http or https URL`,
		"spec.strategy.canary.analysis.metrics[2].webhook.timeoutSeconds: Invalid value: 1000: must be between 1 and 300, inclusive"),
	appCase("analysis shape", func(a *api.App) {
		an := a.Spec.Strategy.Canary.Analysis
		an.Metrics[0].Max = f64(1)
		an.Metrics[1].Name = "ok"
		an.InconclusivePolicy = "Retry"
		an.Interval = "0s"
	},
		"spec.strategy.canary.analysis.metrics[0].max: Forbidden: may not be set for type successRate",
		`spec.strategy.canary.analysis.metrics[1].name: Duplicate value: "ok"`,
		`spec.strategy.canary.analysis.interval: Invalid value: "0s": must be greater than 0`,
		`spec.strategy.canary.analysis.inconclusivePolicy: Unsupported value: "Retry": supported values: "Wait", "Fail"`),
	appCase("canary match with service", func(a *api.App) { a.Spec.Strategy.Canary.Match[0].Service = "other" },
		"spec.strategy.canary.match[0].service: Forbidden: a canary's match always sends to the new revision"),
	appCase("blue-green preview host", func(a *api.App) {
		a.Spec.Strategy = api.Strategy{Type: "BlueGreen", BlueGreen: &api.BlueGreenStrategy{PreviewHost: "Preview_Host", ScaleDownDelaySeconds: i32(-1)}}
	},
		`spec.strategy.blueGreen.previewHost: Invalid value: "Preview_Host": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`,
		"spec.strategy.blueGreen.scaleDownDelaySeconds: Invalid value: -1: must be greater than or equal to 0"),
	appCase("hooks", func(a *api.App) {
		a.Spec.Strategy.Hooks = &api.Hooks{Pre: &api.Hook{FailurePolicy: "Abort"}, Mid: &api.Hook{Command: []string{"x"}, FailurePolicy: "Abort"}, Post: &api.Hook{Command: []string{"y"}, FailurePolicy: "Maybe"}}
	},
		"spec.strategy.hooks.pre.command: Required value",
		"spec.strategy.hooks.mid: Forbidden: a mid hook runs between stopping the old pods and starting the new ones: only with type Recreate",
		`spec.strategy.hooks.post.failurePolicy: Unsupported value: "Maybe": supported values: "Abort", "Retry", "Ignore"`),
	appCase("triggers", func(a *api.App) {
		a.Spec.Triggers = []api.Trigger{{Type: "ConfigChange"}, {Type: "ConfigChange"}, {Type: "Cron"}, {Type: "ImageChange", ImageChange: &api.ImageChangeTrigger{ContainerNames: []string{"nope"}}}}
	},
		`spec.triggers[1].type: Duplicate value: "ConfigChange"`,
		`spec.triggers[2].type: Unsupported value: "Cron": supported values: "ConfigChange", "ImageChange"`,
		`spec.triggers[3].imageChange.containerNames[0]: Invalid value: "nope": must name a container of spec.template.containers`),
	appCase("history and deadline", func(a *api.App) {
		a.Spec.RevisionHistoryLimit = i32(-1)
		a.Spec.ProgressDeadlineSeconds = i32(0)
	},
		"spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0",
		"spec.progressDeadlineSeconds: Invalid value: 0: must be greater than or equal to 1"),

	svcCase("service without selector or ports", func(s *api.Service) { s.Spec.Selector = nil; s.Spec.Ports = nil },
		"spec.selector: Required value: a service without a selector would select no pods (e.g. app: hello)",
		"spec.ports: Required value: at least one port is required"),
	svcCase("service name starting with digit", func(s *api.Service) { s.Metadata.Name = "1st" },
		`metadata.name: Invalid value: "1st": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123')`),
	svcCase("service ports", func(s *api.Service) {
		s.Spec.Ports[1].Name = ""
		s.Spec.Ports[0].Port = 0
		s.Spec.Ports = append(s.Spec.Ports, api.ServicePort{Name: "http", Port: 9090, TargetPort: api.FromInt(70000), Protocol: "TCP"})
	},
		"spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
		"spec.ports[1].name: Required value: ports must be named when there is more than one",
		`spec.ports[2].name: Duplicate value: "http"`,
		"spec.ports[2].port: Duplicate value: 9090",
		"spec.ports[2].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive"),
	svcCase("service target port name", func(s *api.Service) { s.Spec.Ports[0].TargetPort = api.FromString("HTTP") },
		`spec.ports[0].targetPort: Invalid value: "HTTP": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`),

	routeCase("route host", func(r *api.Route) { r.Spec.Host = "Hello.example.com" },
		`spec.host: Invalid value: "Hello.example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`),
	routeCase("route wildcard host", func(r *api.Route) { r.Spec.Host = "*.apps.example.com" }),
	routeCase("route bad wildcard", func(r *api.Route) { r.Spec.Host = "*example.com" },
		`spec.host: Invalid value: "*example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`),
	routeCase("route default host too long", func(r *api.Route) {
		r.Spec.Host = ""
		r.Metadata.Name = strings.Repeat("r", 40)
		r.Metadata.Project = strings.Repeat("p", 30)
	}, "spec.host: Required value: the default host "+strings.Repeat("r", 40)+"-"+strings.Repeat("p", 30)+".<router domain> would start with a label of 71 characters (more than 63): set spec.host"),
	routeCase("route path", func(r *api.Route) { r.Spec.Path = "api?x=1" },
		`spec.path: Invalid value: "api?x=1": must start with '/'`),
	routeCase("route backends", func(r *api.Route) {
		r.Spec.To.Service = ""
		r.Spec.To.Weight = i32(300)
		r.Spec.AlternateBackends = []api.RouteBackend{{Service: "a"}, {Service: "a"}, {Service: "b"}, {Service: "c"}}
	},
		"spec.to.service: Required value",
		"spec.to.weight: Invalid value: 300: must be between 0 and 256, inclusive",
		"spec.alternateBackends: Invalid value: 4: must have at most 3 items",
		`spec.alternateBackends[1].service: Duplicate value: "a": each service may appear once among spec.to and spec.alternateBackends`,
		`spec.match[0].service: Invalid value: "hello-b": must be one of the route's services (spec.to or spec.alternateBackends)`),
	routeCase("route alternate equals to", func(r *api.Route) { r.Spec.AlternateBackends[0].Service = "hello" },
		`spec.alternateBackends[0].service: Duplicate value: "hello": each service may appear once among spec.to and spec.alternateBackends`,
		`spec.match[0].service: Invalid value: "hello-b": must be one of the route's services (spec.to or spec.alternateBackends)`),
	routeCase("route match", func(r *api.Route) {
		r.Spec.Match[0].Header = &api.KeyMatch{Name: "X-A", Value: "b"}
		r.Spec.Match[1].Query.Value = "(unclosed"
		r.Spec.Match = append(r.Spec.Match, api.RouteMatch{}, api.RouteMatch{Header: &api.KeyMatch{Name: "bad header", Value: ""}})
	},
		"spec.match[0].cookie: Forbidden: a match is exactly one of header, cookie or query",
		`spec.match[1].query.value: Invalid value: "(unclosed": must be a valid regular expression (Go RE2 syntax): missing closing ): `+"`(unclosed`",
		"spec.match[2]: Required value: a match is exactly one of header, cookie or query",
		"spec.match[3].header.name: Invalid value: \"bad header\": a header name must be a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
		"spec.match[3].header.value: Required value: the exact value to match (or set regex: true with a pattern such as .+)"),
	routeCase("route affinity timeouts retries", func(r *api.Route) {
		r.Spec.SessionAffinity = &api.SessionAffinity{Type: "IP", CookieName: "a b", TTL: "forever"}
		r.Spec.Timeouts.Connect = "0s"
		r.Spec.Retries = &api.RouteRetries{Attempts: 6, OnStatus: []int32{404, 503, 503}}
	},
		`spec.sessionAffinity.type: Unsupported value: "IP": supported values: "Cookie"`,
		"spec.sessionAffinity.cookieName: Invalid value: \"a b\": a cookie name must be a valid HTTP token (letters, digits and !#$%&'*+-.^_`|~)",
		`spec.sessionAffinity.ttl: Invalid value: "forever": must be a duration such as 500ms, 30s or 5m`,
		`spec.timeouts.connect: Invalid value: "0s": must be greater than 0`,
		"spec.retries.attempts: Invalid value: 6: must be between 0 and 5, inclusive",
		"spec.retries.onStatus[0]: Invalid value: 404: must be between 500 and 599, inclusive: only server errors are retried",
		"spec.retries.onStatus[2]: Duplicate value: 503"),
	routeCase("route mirror tls body", func(r *api.Route) {
		r.Spec.Mirror = &api.RouteMirror{Percent: 101}
		r.Spec.TLS = &api.RouteTLS{Termination: "passthrough", InsecureEdgeTerminationPolicy: "Deny"}
		r.Spec.MaxBodyBytes = -1
	},
		"spec.mirror.service: Required value",
		"spec.mirror.percent: Invalid value: 101: must be between 0 and 100, inclusive",
		`spec.tls.termination: Unsupported value: "passthrough": supported values: "edge"`,
		"spec.tls.secretName: Required value",
		`spec.tls.insecureEdgeTerminationPolicy: Unsupported value: "Deny": supported values: "Redirect", "Allow", "None"`,
		"spec.maxBodyBytes: Invalid value: -1: must be greater than or equal to 0"),

	{"secret keys and size", func() api.Object {
		return &api.Secret{Metadata: api.ObjectMeta{Name: "db"}, Data: map[string]string{"bad key": "hunter2", "big": strings.Repeat("s", 1<<20)}}
	}, nil, []string{
		`data["bad key"]: Invalid value: "bad key": key: a valid secret key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')`,
		"data: Too long: may not be longer than 1048576 bytes in total (keys and values)",
	}},
	{"event without involved object", func() api.Object {
		return &api.Event{Metadata: api.ObjectMeta{Name: "e1"}, Type: "Error", InvolvedObject: api.ObjectReference{Kind: "Thing"}}
	}, nil, []string{
		`involvedObject.kind: Unsupported value: "Thing": supported values: "Project", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "App", "Revision", "Pod", "Endpoints", "Route", "Event", "ImageStream", "Build", "Template", "TemplateInstance"`,
		"involvedObject.name: Required value",
		`type: Unsupported value: "Error": supported values: "Normal", "Warning"`,
	}},
	{"project in a project", func() api.Object {
		return &api.Project{Metadata: api.ObjectMeta{Name: "p", Project: "default"}}
	}, nil, []string{"metadata.project: Forbidden: a project does not belong to a project"}},
	{"revision", func() api.Object {
		r := &api.Revision{Metadata: api.ObjectMeta{Name: "hello-0"}, Spec: api.RevisionSpec{App: "hello", Number: 0, Replicas: -1}}
		r.Spec.Template.Containers = []api.Container{{Name: "web", Command: []string{"x"}, Ports: []api.ContainerPort{{Port: 0}}}}
		return r
	}, nil, []string{
		"spec.number: Invalid value: 0: must be greater than or equal to 1",
		"spec.replicas: Invalid value: -1: must be greater than or equal to 0",
		"spec.template.containers[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
	}},
	{"pod uses the container rules", func() api.Object {
		return &api.Pod{Metadata: api.ObjectMeta{Name: "p"}, Spec: api.PodSpec{Containers: []api.Container{{Name: "Web"}}}}
	}, nil, []string{
		`spec.containers[0].name: Invalid value: "Web": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`,
		"spec.containers[0].command: Required value: command is required by the process runtime (or image, by the Docker runtime)",
	}}, {"pod restart policy", func() api.Object {
		d := int64(0)
		return &api.Pod{Metadata: api.ObjectMeta{Name: "p"}, Spec: api.PodSpec{
			Containers: []api.Container{{Name: "web", Command: []string{"x"}}}, RestartPolicy: "Sometimes", ActiveDeadlineSeconds: &d}}
	}, nil, []string{
		`spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`,
		"spec.activeDeadlineSeconds: Invalid value: 0: must be greater than or equal to 1",
	}},
	{"pod deadline needs an end", func() api.Object {
		d := int64(60)
		return &api.Pod{Metadata: api.ObjectMeta{Name: "p"}, Spec: api.PodSpec{
			Containers: []api.Container{{Name: "web", Command: []string{"x"}}}, ActiveDeadlineSeconds: &d}}
	}, nil, []string{
		`spec.activeDeadlineSeconds: Forbidden: may only be set when restartPolicy is "OnFailure" or "Never": a pod restarted forever has no end to bound`,
	}},
}

func TestValidate(t *testing.T) { runValidationCases(t, validationCases) }

func runValidationCases(t *testing.T, cases []validationCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := tc.obj()
			api.SetDefaults(obj)
			if tc.mutate != nil {
				tc.mutate(obj)
			}
			got := messages(validation.Validate(obj))
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestValidateNeverPrintsSecretValues: no message about a Secret may
// contain one of its values.
func TestValidateNeverPrintsSecretValues(t *testing.T) {
	s := &api.Secret{Metadata: api.ObjectMeta{Name: "Bad Name"}, Data: map[string]string{"k y": "hunter2-value", "ok": strings.Repeat("hunter2-value", 1<<17)}}
	api.SetDefaults(s)
	errs := validation.Validate(s)
	if len(errs) != 3 {
		t.Fatalf("want 3 errors (name, key, size), got %d: %v", len(errs), errs)
	}
	if msg := errs.Error() + errs.ToError("Secret", "x").Error(); strings.Contains(msg, "hunter2") {
		t.Errorf("a secret value leaked into %q", msg)
	}
}

func TestValidateNil(t *testing.T) {
	if got := messages(validation.Validate(nil)); !cmp.Equal(got, []string{"kind: Required value"}) {
		t.Errorf("Validate(nil) = %q", got)
	}
}

func TestValidateUpdate(t *testing.T) {
	created := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	oldApp := apitest.ValidApp()
	oldApp.Metadata.UID, oldApp.Metadata.CreationTimestamp = "u1", created
	api.SetDefaults(oldApp)

	newApp := apitest.Clone(t, oldApp).(*api.App)
	newApp.Spec.Replicas = i32(5)
	newApp.Metadata.UID, newApp.Metadata.CreationTimestamp = "", time.Time{} // left out by a manifest
	if errs := validation.ValidateUpdate(oldApp, newApp); len(errs) != 0 {
		t.Errorf("mutable change refused: %v", errs)
	}

	moved := apitest.Clone(t, oldApp).(*api.App)
	moved.Metadata.Name, moved.Metadata.Project, moved.Metadata.UID = "other", "elsewhere", "u2"
	moved.Metadata.CreationTimestamp = created.Add(time.Hour)
	want := []string{
		`metadata.name: Invalid value: "other": field is immutable`,
		`metadata.project: Invalid value: "elsewhere": field is immutable`,
		`metadata.uid: Invalid value: "u2": field is immutable`,
		"metadata.creationTimestamp: Invalid value: 2024-05-01 13:00:00 +0000 UTC: field is immutable",
	}
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(oldApp, moved))); diff != "" {
		t.Errorf("metadata immutability (-want +got):\n%s", diff)
	}

	objs := apitest.SampleObjects()
	oldRev := objs[4].(*api.Revision)
	api.SetDefaults(oldRev)
	rev := apitest.Clone(t, oldRev).(*api.Revision)
	rev.Spec.Replicas = 0 // scaling is the point of a revision
	if errs := validation.ValidateUpdate(oldRev, rev); len(errs) != 0 {
		t.Errorf("revision scale refused: %v", errs)
	}
	rev.Spec.Number = 2
	rev.Spec.Template.Containers[0].Args = []string{"--changed"}
	want = []string{
		"spec.number: Invalid value: 2: field is immutable",
		"spec.template: Forbidden: field is immutable: a changed template is a new revision",
	}
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(oldRev, rev))); diff != "" {
		t.Errorf("revision immutability (-want +got):\n%s", diff)
	}

	oldPod := objs[5].(*api.Pod)
	api.SetDefaults(oldPod)
	pod := apitest.Clone(t, oldPod).(*api.Pod)
	pod.Metadata.Labels["extra"] = "yes" // metadata may change
	if errs := validation.ValidateUpdate(oldPod, pod); len(errs) != 0 {
		t.Errorf("pod label change refused: %v", errs)
	}
	// A pod stored before restartPolicy existed has none; the defaulted
	// Always of an update is not a change.
	legacy := apitest.Clone(t, oldPod).(*api.Pod)
	legacy.Spec.RestartPolicy = ""
	if errs := validation.ValidateUpdate(legacy, pod); len(errs) != 0 {
		t.Errorf("update of a pod stored without restartPolicy refused: %v", errs)
	}
	never := apitest.Clone(t, pod).(*api.Pod)
	never.Spec.RestartPolicy = api.RestartNever
	want = []string{"spec: Forbidden: field is immutable: a pod is replaced, never changed"}
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(oldPod, never))); diff != "" {
		t.Errorf("restartPolicy change (-want +got):\n%s", diff)
	}
	pod.Spec.Containers[0].Image = "other:2"
	want = []string{"spec: Forbidden: field is immutable: a pod is replaced, never changed"}
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(oldPod, pod))); diff != "" {
		t.Errorf("pod immutability (-want +got):\n%s", diff)
	}

	want = []string{`kind: Forbidden: may not change from "App" to "Service"`}
	svc := apitest.ValidService()
	api.SetDefaults(svc)
	if diff := cmp.Diff(want, messages(validation.ValidateUpdate(oldApp, svc))); diff != "" {
		t.Errorf("kind change (-want +got):\n%s", diff)
	}
}

func BenchmarkValidateApp(b *testing.B) {
	app := apitest.ValidApp()
	api.SetDefaults(app)
	for b.Loop() {
		if errs := validation.Validate(app); len(errs) != 0 {
			b.Fatal(errs)
		}
	}
}

package manifest

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// baseApp is the valid App the bad cases edit; its line numbers are what
// the expected messages refer to.
const baseApp = `apiVersion: slipway.dev/v1
kind: App
metadata:
  name: hello
spec:
  replicas: 1
  template:
    containers:
    - name: web
      command: [./hello]
      ports:
      - name: http
        port: 8080
`

// edit replaces, in baseApp, the line old by the lines of repl.
func edit(t *testing.T, old, repl string) string {
	t.Helper()
	lines := strings.Split(baseApp, "\n")
	for i, l := range lines {
		if l == old {
			lines[i] = repl
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("line %q not in baseApp", old)
	return ""
}

type badCase struct {
	name  string
	file  string // default app.yaml
	input func(t *testing.T) string
	want  []string
}

func text(s string) func(*testing.T) string { return func(*testing.T) string { return s } }

func edited(old, repl string) func(*testing.T) string {
	return func(t *testing.T) string { return edit(t, old, repl) }
}

const kindList = `"Project", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "App", "Revision", "Pod", "Endpoints", "Route", "Event", "ImageStream", "Build", "Template", "TemplateInstance"`

var badCases = []badCase{
	{name: "negative replicas", input: edited("  replicas: 1", "  replicas: -1"), want: []string{
		`app.yaml:6: App "hello": spec.replicas: Invalid value: -1: must be greater than or equal to 0`}},
	{name: "replicas as a word", input: edited("  replicas: 1", `  replicas: "three"`), want: []string{
		`app.yaml:6: App "hello": spec.replicas: Invalid value: "three": must be an integer`}},
	{name: "fractional replicas", input: edited("  replicas: 1", "  replicas: 3.5"), want: []string{
		`app.yaml:6: App "hello": spec.replicas: Invalid value: 3.5: must be an integer`}},
	{name: "replicas overflow", input: edited("  replicas: 1", "  replicas: 99999999999"), want: []string{
		`app.yaml:6: App "hello": spec.replicas: Invalid value: 99999999999: must be an integer between -2147483648 and 2147483647`}},
	{name: "misspelt field", input: edited("  replicas: 1", "  replica: 1"), want: []string{
		`app.yaml:6: App "hello": spec.replica: Unknown field: did you mean "replicas"?`}},
	{name: "wrong case field", input: edited("  replicas: 1", "  Replicas: 1"), want: []string{
		`app.yaml:6: App "hello": spec.Replicas: Unknown field: did you mean "replicas"?`}},
	{name: "unknown top-level field", input: edited("kind: App", "kind: App\nextra: 1"), want: []string{
		`app.yaml:3: App "hello": extra: Unknown field: known fields are apiVersion, kind, metadata, spec, status`}},
	{name: "unknown container field", input: edited("      command: [./hello]", "      command: [./hello]\n      imagePullPolicy: Always"), want: []string{
		`app.yaml:11: App "hello": spec.template.containers[0].imagePullPolicy: Unknown field: known fields are name, image, command, args, workingDir, env, ports, readinessProbe, livenessProbe, startupProbe, resources, volumeMounts`}},
	{name: "duplicate key", input: edited("  replicas: 1", "  replicas: 1\n  replicas: 2"), want: []string{
		`app.yaml:7: App "hello": spec.replicas: Duplicate value: "replicas": key already given on line 6`}},
	{name: "duplicate label key", input: edited("  name: hello", "  name: hello\n  labels:\n    tier: a\n    tier: b"), want: []string{
		`app.yaml:7: App "hello": metadata.labels["tier"]: Duplicate value: "tier": key already given on line 6`}},
	{name: "wrong apiVersion", input: edited("apiVersion: slipway.dev/v1", "apiVersion: apps/v1"), want: []string{
		`app.yaml:1: App "hello": apiVersion: Unsupported value: "apps/v1": supported values: "slipway.dev/v1"`}},
	{name: "missing kind", input: edited("kind: App", ""), want: []string{
		`app.yaml:1: kind: Required value: one of ` + kindList}},
	{name: "kind in lower case", input: edited("kind: App", "kind: app"), want: []string{
		`app.yaml:2: kind: Unsupported value: "app": supported values: ` + kindList + ` (did you mean "App"?)`}},
	{name: "kind from elsewhere", input: edited("kind: App", "kind: Deployment"), want: []string{
		`app.yaml:2: kind: Unsupported value: "Deployment": supported values: ` + kindList}},
	{name: "name in upper case", input: edited("  name: hello", "  name: Hello"), want: []string{
		`app.yaml:4: App "Hello": metadata.name: Invalid value: "Hello": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`}},
	{name: "no name", input: edited("  name: hello", "  labels: {a: b}"), want: []string{
		`app.yaml:3: App: metadata.name: Required value`}},
	{name: "no metadata", input: text("apiVersion: slipway.dev/v1\nkind: App\nspec:\n  template:\n    containers: [{name: web, command: [x]}]\n"), want: []string{
		`app.yaml:1: App: metadata.name: Required value`}},
	{name: "app name too long", input: edited("  name: hello", "  name: "+strings.Repeat("a", 41)), want: []string{
		`app.yaml:4: App "` + strings.Repeat("a", 41) + `": metadata.name: Too long: may not be longer than 40 (pod names are <app>-<revision>-<5 random characters> and must fit in 63)`}},
	{name: "label value", input: edited("  name: hello", "  name: hello\n  labels:\n    tier: front end"), want: []string{
		`app.yaml:6: App "hello": metadata.labels["tier"]: Invalid value: "front end": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345')`}},
	{name: "label value a number", input: edited("  name: hello", "  name: hello\n  labels:\n    version: 2"), want: []string{
		`app.yaml:6: App "hello": metadata.labels["version"]: Invalid value: 2: must be a string (quote it: "2")`}},
	{name: "containers not a list", input: text("apiVersion: slipway.dev/v1\nkind: App\nmetadata: {name: hello}\nspec:\n  template:\n    containers: web\n"), want: []string{
		`app.yaml:6: App "hello": spec.template.containers: Invalid value: "web": must be a list`}},
	{name: "empty containers", input: text("apiVersion: slipway.dev/v1\nkind: App\nmetadata: {name: hello}\nspec:\n  template:\n    containers: []\n"), want: []string{
		`app.yaml:6: App "hello": spec.template.containers: Required value: at least one container is required`}},
	{name: "command not a list", input: edited("      command: [./hello]", "      command: ./hello --port 8080"), want: []string{
		`app.yaml:10: App "hello": spec.template.containers[0].command: Invalid value: "./hello --port 8080": must be a list`}},
	{name: "port out of range", input: edited("        port: 8080", "        port: 70000"), want: []string{
		`app.yaml:13: App "hello": spec.template.containers[0].ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive`}},
	{name: "port as a name", input: edited("        port: 8080", "        port: http"), want: []string{
		`app.yaml:13: App "hello": spec.template.containers[0].ports[0].port: Invalid value: "http": must be an integer`}},
	{name: "env value a number", input: edited("      command: [./hello]", "      command: [./hello]\n      env:\n      - name: TIMEOUT\n        value: 30"), want: []string{
		`app.yaml:13: App "hello": spec.template.containers[0].env[0].value: Invalid value: 30: must be a string (quote it: "30")`}},
	{name: "env value and valueFrom", input: edited("      command: [./hello]", "      command: [./hello]\n      env:\n      - name: PASSWORD\n        value: x\n        valueFrom: {secretKeyRef: {name: db, key: pw}}"), want: []string{
		`app.yaml:14: App "hello": spec.template.containers[0].env[0].valueFrom: Invalid value: "": may not be set when value is not empty`}},
	{name: "1 MB env value", input: edited("      command: [./hello]", "      command: [./hello]\n      env:\n      - name: BIG\n        value: "+strings.Repeat("x", 1<<20)), want: []string{
		`app.yaml:13: App "hello": spec.template.containers[0].env[0].value: Too long: may not be longer than 131072 (bytes; Linux refuses to start a process with one NAME=value environment string over 128 KiB)`}},
	{name: "env name", input: edited("      command: [./hello]", "      command: [./hello]\n      env:\n      - name: 2FAST\n        value: x"), want: []string{
		`app.yaml:12: App "hello": spec.template.containers[0].env[0].name: Invalid value: "2FAST": a valid environment variable name must consist of alphabetic characters, digits, '_', '-' or '.', and must not start with a digit or '-' or '.' (e.g. 'MY_VAR' or 'my.var')`}},
	{name: "probe without handler", input: edited("      command: [./hello]", "      command: [./hello]\n      readinessProbe:\n        periodSeconds: 5"), want: []string{
		`app.yaml:11: App "hello": spec.template.containers[0].readinessProbe: Required value: must specify a handler: exactly one of httpGet, tcpSocket or exec`}},
	{name: "probe on unknown port name", input: edited("      command: [./hello]", "      command: [./hello]\n      livenessProbe:\n        httpGet: {path: /healthz, port: admin}"), want: []string{
		`app.yaml:12: App "hello": spec.template.containers[0].livenessProbe.httpGet.port: Invalid value: "admin": must be a port number or the name of a port declared by the container`}},
	{name: "cpu not a quantity", input: edited("      command: [./hello]", "      command: [./hello]\n      resources:\n        limits:\n          cpu: lots\n          gpu: 1"), want: []string{
		`app.yaml:13: App "hello": spec.template.containers[0].resources.limits["cpu"]: Invalid value: "lots": must be a quantity such as 500m, 0.5, 2, 256Mi or 1G`,
		`app.yaml:14: App "hello": spec.template.containers[0].resources.limits["gpu"]: Unsupported value: "gpu": supported values: "cpu", "memory"`}},
	{name: "unsupported strategy", input: edited("  replicas: 1", "  replicas: 1\n  strategy:\n    type: Blue"), want: []string{
		`app.yaml:8: App "hello": spec.strategy.type: Unsupported value: "Blue": supported values: "Rolling", "Recreate", "BlueGreen", "Canary"`}},
	{name: "rolling that cannot progress", input: edited("  replicas: 1", "  replicas: 1\n  strategy:\n    rolling: {maxSurge: 0, maxUnavailable: 0%}"), want: []string{
		`app.yaml:8: App "hello": spec.strategy.rolling.maxUnavailable: Invalid value: "0%": may not be 0 when maxSurge is 0: the rollout could never make progress`}},
	{name: "canary steps", input: edited("  replicas: 1", "  replicas: 1\n  strategy:\n    type: Canary\n    canary:\n      steps:\n      - setWeight: 10\n      - pause: {duration: 1m}\n      - setWeight: 150\n      - {setWeight: 20, pause: {}}"), want: []string{
		`app.yaml:13: App "hello": spec.strategy.canary.steps[2].setWeight: Invalid value: 150: must be between 0 and 100, inclusive`,
		`app.yaml:14: App "hello": spec.strategy.canary.steps[3].pause: Forbidden: a step is exactly one of setWeight, pause or analysis`}},
	{name: "analysis metric", input: edited("  replicas: 1", "  replicas: 1\n  strategy:\n    type: Canary\n    canary:\n      analysis:\n        metrics:\n        - {name: ok, type: successRate, min: 99}\n        - {name: lat, type: latencyP95, max: 200}"), want: []string{
		`app.yaml:12: App "hello": spec.strategy.canary.analysis.metrics[0].min: Invalid value: 99: the lowest passing share of non-5xx responses, from 0 to 1 (e.g. 0.99)`,
		`app.yaml:13: App "hello": spec.strategy.canary.analysis.metrics[1].type: Unsupported value: "latencyP95": supported values: "successRate", "errorRate", "latencyP50", "latencyP90", "latencyP99", "webhook"`}},
	{name: "mid hook without Recreate", input: edited("  replicas: 1", "  replicas: 1\n  strategy:\n    hooks:\n      mid: {command: [./migrate]}"), want: []string{
		`app.yaml:9: App "hello": spec.strategy.hooks.mid: Forbidden: a mid hook runs between stopping the old pods and starting the new ones: only with type Recreate`}},
	{name: "trigger type", input: edited("  replicas: 1", "  replicas: 1\n  triggers:\n  - type: Cron"), want: []string{
		`app.yaml:8: App "hello": spec.triggers[0].type: Unsupported value: "Cron": supported values: "ConfigChange", "ImageChange"`}},
	{name: "boolean as yes", input: edited("  replicas: 1", "  replicas: 1\n  paused: yes"), want: []string{
		`app.yaml:7: App "hello": spec.paused: Invalid value: "yes": must be a boolean (true or false)`}},
	{name: "null list item", input: edited("    - name: web", "    - ~\n    - name: web"), want: []string{
		`app.yaml:9: App "hello": spec.template.containers[0]: Invalid value: null: must not be null`}},
	{name: "bad timestamp", input: edited("  name: hello", "  name: hello\n  creationTimestamp: yesterday"), want: []string{
		`app.yaml:5: App "hello": metadata.creationTimestamp: Invalid value: "yesterday": must be a timestamp such as 2024-05-01T12:00:00Z (RFC 3339)`}},
	{name: "non-string label key", input: edited("  name: hello", "  name: hello\n  labels:\n    1: one"), want: []string{
		`app.yaml:6: App "hello": metadata.labels: Invalid value: 1: keys must be strings (quote them)`}},
	{name: "alias to the wrong shape", input: edited("      command: [./hello]", "      command: &cmd [./hello]\n      args: *cmd\n      workingDir: *cmd"), want: []string{
		`app.yaml:10: App "hello": spec.template.containers[0].workingDir: Invalid value: a list: must be a string`}},

	{name: "service", file: "svc.yaml", input: text(`apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 0
  - port: 81
    targetPort: Web
`), want: []string{
		`svc.yaml:5: Service "web": spec.selector: Required value: a service without a selector would select no pods (e.g. app: hello)`,
		`svc.yaml:7: Service "web": spec.ports[0].name: Required value: ports must be named when there is more than one`,
		`svc.yaml:7: Service "web": spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
		`svc.yaml:8: Service "web": spec.ports[1].name: Required value: ports must be named when there is more than one`,
		`svc.yaml:9: Service "web": spec.ports[1].targetPort: Invalid value: "Web": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`}},
	{name: "route", file: "route.yaml", input: text(`apiVersion: slipway.dev/v1
kind: Route
metadata: {name: web}
spec:
  host: Web.Example.com
  path: api
  to: {service: web, weight: 300}
  alternateBackends:
  - {service: web-b}
  - {service: web-b}
  match:
  - header: {name: X-Beta, value: "(", regex: true}
  tls: {termination: passthrough, secretName: cert}
`), want: []string{
		`route.yaml:5: Route "web": spec.host: Invalid value: "Web.Example.com": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')`,
		`route.yaml:6: Route "web": spec.path: Invalid value: "api": must start with '/'`,
		`route.yaml:7: Route "web": spec.to.weight: Invalid value: 300: must be between 0 and 256, inclusive`,
		`route.yaml:10: Route "web": spec.alternateBackends[1].service: Duplicate value: "web-b": each service may appear once among spec.to and spec.alternateBackends`,
		"route.yaml:12: Route \"web\": spec.match[0].header.value: Invalid value: \"(\": must be a valid regular expression (Go RE2 syntax): missing closing ): `(`",
		`route.yaml:13: Route "web": spec.tls.termination: Unsupported value: "passthrough": supported values: "edge"`}},
	{name: "secret never shows its values", file: "secret.yaml", input: text(`apiVersion: slipway.dev/v1
kind: Secret
metadata: {name: db}
data:
  pin: 123456
  "my key": hunter2
`), want: []string{
		`secret.yaml:5: Secret "db": data["pin"]: Invalid value: <redacted>: must be a string (quote it)`,
		`secret.yaml:6: Secret "db": data["my key"]: Invalid value: "my key": key: a valid secret key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')`}},
	{name: "event", file: "event.yaml", input: text("apiVersion: slipway.dev/v1\nkind: Event\nmetadata: {name: e1}\ninvolvedObject: {kind: App}\n"), want: []string{
		`event.yaml:4: Event "e1": involvedObject.name: Required value`}},
	{name: "project in a project", file: "project.yaml", input: text("apiVersion: slipway.dev/v1\nkind: Project\nmetadata:\n  name: shop\n  project: default\n"), want: []string{
		`project.yaml:5: Project "shop": metadata.project: Forbidden: a project does not belong to a project`}},
	{name: "YAML syntax", input: edited("  replicas: 1", "  replicas: [1"), want: []string{
		`app.yaml:6: invalid YAML: did not find expected ',' or ']'`}},
	{name: "tab indentation", input: edited("  replicas: 1", "\treplicas: 1"), want: []string{
		`app.yaml:6: invalid YAML: found character that cannot start any token`}},
	{name: "document is a list", input: text("- kind: App\n- kind: Service\n"), want: []string{
		`app.yaml:1: a document must be an object (a mapping with apiVersion, kind, metadata...), not a list (use kind: List with items, or separate YAML documents with ---)`}},
	{name: "document is a scalar", input: text("just some text\n"), want: []string{
		`app.yaml:1: a document must be an object (a mapping with apiVersion, kind, metadata...), not the scalar "just some text"`}},
	{name: "List shape", input: text("apiVersion: v1\nkind: List\nobjects: []\nitems:\n- 42\n- kind: List\n"), want: []string{
		`app.yaml:3: List: objects: Unknown field: a List has apiVersion, kind, metadata and items`,
		`app.yaml:5: a List item must be an object, not the scalar "42"`,
		`app.yaml:6: kind: Invalid value: "List": a List may not contain a List`}},
	{name: "JSON syntax", file: "app.json", input: text("{\n  \"kind\": \"App\",\n  \"metadata\": {\"name\": \"x\"},\n}\n"), want: []string{
		`app.json:4: invalid JSON: invalid character '}' looking for beginning of object key string`}},
	{name: "JSON unknown field", file: "app.json", input: text("{\n  \"apiVersion\": \"slipway.dev/v1\",\n  \"kind\": \"App\",\n  \"metadata\": {\"name\": \"x\"},\n  \"spec\": {\"template\": {\"containers\": [{\"name\": \"web\", \"command\": [\"x\"]}]},\n    \"replicaz\": 2}\n}\n"), want: []string{
		`app.json:6: App "x": spec.replicaz: Unknown field: did you mean "replicas"?`}},
	{name: "JSON duplicate key", file: "app.json", input: text(`{"apiVersion": "slipway.dev/v1", "kind": "App", "metadata": {"name": "x", "name": "y"}, "spec": {"template": {"containers": [{"name": "web", "command": ["x"]}]}}}`), want: []string{
		`app.json:1: App "x": metadata.name: Duplicate value: "name": key already given on line 1`}},
}

// TestDecodeBad: each bad manifest is refused with exactly the listed
// problems, each with its line and field path, and nothing is returned.
func TestDecodeBad(t *testing.T) {
	if len(badCases) < 40 {
		t.Fatalf("only %d bad manifests; the table must hold at least 40", len(badCases))
	}
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			file := tc.file
			if file == "" {
				file = "app.yaml"
			}
			docs, err := Decode(file, []byte(tc.input(t)))
			if docs != nil {
				t.Errorf("got %d documents from a bad manifest, want none", len(docs))
			}
			var merr *Error
			if !errors.As(err, &merr) {
				t.Fatalf("error %v (%T), want *manifest.Error", err, err)
			}
			got := strings.Split(merr.Error(), "\n")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const shopManifest = `apiVersion: slipway.dev/v1
kind: Project
metadata:
  name: shop
spec:
  displayName: The Shop
---
apiVersion: slipway.dev/v1
kind: Secret
metadata:
  name: db
  project: shop
data:
  password: s3cr3t-value-never-printed
---
apiVersion: slipway.dev/v1
kind: App
metadata:
  name: web
  project: shop
spec:
  replicas: 3
  template:
    containers:
      - name: web
        command: ["./web"]
        env:
          - name: DB_PASSWORD
            valueFrom:
              secretKeyRef: {name: db, key: password}
        ports:
          - {name: http, port: 8080}
---
apiVersion: slipway.dev/v1
kind: Service
metadata:
  name: web
  project: shop
spec:
  selector: {app: web}
  ports:
    - {port: 80, targetPort: http}
---
apiVersion: slipway.dev/v1
kind: Route
metadata:
  name: web
  project: shop
spec:
  host: shop.example.test
  to: {service: web}
`

const secretValue = "s3cr3t-value-never-printed"

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIEndToEnd(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home)

	// First start: token and CLI config written, 0600, token not in logs.
	for _, f := range []string{filepath.Join(p.dataDir, "admin.token"), filepath.Join(home, "config", "slipway", "config.yaml")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatalf("first start did not write %s: %v", f, err)
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %o, want 600", f, mode)
		}
	}
	tok, _ := os.ReadFile(filepath.Join(p.dataDir, "admin.token"))
	if token := strings.TrimSpace(string(tok)); token == "" || strings.Contains(p.logs.String(), token) {
		t.Errorf("admin token empty or printed in the logs")
	}

	dir := t.TempDir()
	mf := writeFile(t, dir, "shop.yaml", shopManifest)
	out := p.ok("apply", "-f", mf)
	want := "project/shop created\nsecret/db created\napp/web created\nservice/web created\nroute/web created\n"
	if out != want {
		t.Fatalf("first apply printed:\n%s\nwant:\n%s", out, want)
	}
	if out := p.ok("apply", "-f", dir); strings.Count(out, "unchanged") != 5 {
		t.Fatalf("re-apply of the same directory should leave 5 objects unchanged, got:\n%s", out)
	}
	if r := p.run("", "apply", "-f", "-", "-p", "shop"); r.code != 1 || !strings.Contains(r.stderr, "no objects found in -") {
		t.Fatalf("apply of empty stdin: exit %d, stderr %q", r.code, r.stderr)
	}

	// get in every output format.
	table := p.ok("get", "apps", "-p", "shop")
	if !strings.Contains(table, "NAME") || !strings.Contains(table, "web") || !strings.Contains(table, "0/3") {
		t.Errorf("get apps table:\n%s", table)
	}
	wide := p.ok("get", "app", "web", "-p", "shop", "-o", "wide")
	if !strings.Contains(wide, "CONTAINERS") {
		t.Errorf("get -o wide lacks the wide columns:\n%s", wide)
	}
	var app struct {
		Kind     string
		Metadata struct {
			Name, Project, UID string
			ResourceVersion    int64
		}
		Spec struct{ Replicas int }
	}
	if err := json.Unmarshal([]byte(p.ok("get", "app/web", "-p", "shop", "-o", "json")), &app); err != nil {
		t.Fatalf("get -o json: %v", err)
	}
	if app.Kind != "App" || app.Metadata.Name != "web" || app.Metadata.Project != "shop" || app.Spec.Replicas != 3 || app.Metadata.UID == "" {
		t.Errorf("get -o json decoded to %+v", app)
	}
	var list struct {
		Kind  string
		Items []map[string]any
	}
	if err := yaml.Unmarshal([]byte(p.ok("get", "svc", "-p", "shop", "-o", "yaml")), &list); err != nil || list.Kind != "List" || len(list.Items) != 1 {
		t.Errorf("get svc -o yaml: %v %+v", err, list)
	}
	if out := p.ok("get", "routes", "-p", "shop", "-o", "name"); out != "route/web\n" {
		t.Errorf("get -o name = %q", out)
	}
	all := p.ok("get", "apps", "-A")
	if !strings.HasPrefix(all, "PROJECT") || !strings.Contains(all, "shop") {
		t.Errorf("get -A:\n%s", all)
	}
	if out := p.ok("get", "projects"); !strings.Contains(out, "shop") || !strings.Contains(out, "default") {
		t.Errorf("get projects:\n%s", out)
	}
	// The project controller marks projects Active through the status path.
	waitUntil(t, 10*time.Second, "project shop is Active", func() bool {
		return strings.Contains(p.ok("get", "project", "shop"), "Active")
	})

	// describe.
	desc := p.ok("describe", "app", "web", "-p", "shop")
	for _, s := range []string{"Name:", "web", "Replicas:", "3 desired", `<set to the key "password" of secret "db">`, "Events:"} {
		if !strings.Contains(desc, s) {
			t.Errorf("describe app lacks %q:\n%s", s, desc)
		}
	}
	secretDesc := p.ok("describe", "secret/db", "-p", "shop")
	if !strings.Contains(secretDesc, "password:") || !strings.Contains(secretDesc, "26 bytes") {
		t.Errorf("describe secret should show keys and sizes:\n%s", secretDesc)
	}
	// Secrets never printed, whatever the format.
	for _, f := range []string{"", "wide", "json", "yaml", "name"} {
		args := []string{"get", "secrets", "-p", "shop"}
		if f != "" {
			args = append(args, "-o", f)
		}
		if out := p.ok(args...); strings.Contains(out, secretValue) {
			t.Errorf("get %v printed the secret value", args)
		}
	}
	if strings.Contains(secretDesc, secretValue) || strings.Contains(p.logs.String(), secretValue) {
		t.Error("the secret value was printed by describe or logged by the server")
	}

	// An invalid apply reports every problem and changes nothing.
	before := p.ok("get", "apps", "-A", "-o", "json")
	badContent := strings.Replace(shopManifest, "replicas: 3", "replicas: 5", 1) + `---
apiVersion: slipway.dev/v1
kind: App
metadata:
  name: broken
  project: shop
spec:
  replicas: -1
  template:
    containers:
      - name: web
        command: ["x"]
        ports: [{port: 0}]
`
	bad := writeFile(t, dir, "bad.yaml", badContent)
	badLine := 1 + strings.Count(badContent[:strings.Index(badContent, "replicas: -1")], "\n")
	r := p.run("", "apply", "-f", bad)
	if r.code != 1 {
		t.Fatalf("invalid apply exit code %d, want 1; stderr:\n%s", r.code, r.stderr)
	}
	for _, s := range []string{fmt.Sprintf("bad.yaml:%d:", badLine), `App "broken": spec.replicas: Invalid value: -1`, "ports[0].port: Invalid value: 0"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("invalid apply stderr lacks %q:\n%s", s, r.stderr)
		}
	}
	if after := p.ok("get", "apps", "-A", "-o", "json"); after != before {
		t.Errorf("an invalid apply changed objects:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// delete by name and by file.
	if out := p.ok("delete", "route", "web", "-p", "shop"); out != "route/web deleted\n" {
		t.Errorf("delete printed %q", out)
	}
	r = p.run("", "get", "route", "web", "-p", "shop")
	if r.code != 1 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("get of a deleted route: exit %d, stderr %q", r.code, r.stderr)
	}
	if out := p.ok("delete", "-f", mf, "--ignore-not-found"); !strings.Contains(out, "app/web deleted") || !strings.Contains(out, "project/shop deleted") {
		t.Errorf("delete -f printed:\n%s", out)
	}
	// Issue #18: a project that is gone is an error, not an empty listing
	// (this said "No apps found" and exited 0).
	r = p.run("", "get", "apps", "-p", "shop")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `project "shop" does not exist`) {
		t.Errorf("after deleting the project, get apps -p shop: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRestartKeepsEveryObject(t *testing.T) { restartKeepsEveryObject(t) }

// restartKeepsEveryObject runs `slipway up` with the given flags, applies
// a manifest, restarts gracefully and after kill -9, and compares.
func restartKeepsEveryObject(t *testing.T, up ...string) {
	home := t.TempDir()
	p := startPlatform(t, home, up...)
	mf := writeFile(t, t.TempDir(), "shop.yaml", shopManifest)
	p.ok("apply", "-f", mf)
	before := p.settledObjects()

	p.stop() // graceful
	p2 := startPlatform(t, home, up...)
	if after := p2.objects(); after != before {
		t.Fatalf("objects changed across a graceful restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	p2.kill() // and after a crash
	p3 := startPlatform(t, home, up...)
	if after := p3.objects(); after != before {
		t.Fatalf("objects changed across kill -9 and restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The token survived too: the CLI config written on first start still works.
	if tok, err := os.ReadFile(filepath.Join(p3.dataDir, "admin.token")); err != nil || len(tok) == 0 {
		t.Fatalf("admin token gone after restart: %v", err)
	}
}

// objects is every project, secret, app, service and route as JSON.
func (p *platform) objects() string {
	var b strings.Builder
	for _, k := range []string{"projects", "secrets", "apps", "services", "routes"} {
		b.WriteString(p.ok("get", k, "-A", "-o", "json"))
	}
	return b.String()
}

// settledObjects returns objects once two looks agree: controllers keep
// writing status for a moment after an apply (the revision, its pods, the
// service's address).
func (p *platform) settledObjects() string {
	var settled string
	waitUntil(p.t, 30*time.Second, "the objects' status settles", func() bool {
		a := p.objects()
		time.Sleep(300 * time.Millisecond) // the interval between the two looks, not a synchronisation
		b := p.objects()
		settled = b
		return a == b && strings.Contains(b, `"clusterIP"`)
	})
	return settled
}

func TestGetWatchPrintsChanges(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	cmd := exec.Command(bin, "get", "apps", "-w")
	cmd.Env = p.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	app := strings.Replace(strings.SplitN(shopManifest, "---\n", 4)[2], "  project: shop\n", "", 1)
	if !strings.Contains(app, "kind: App") {
		t.Fatalf("test manifest changed shape:\n%s", app)
	}
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "app.yaml", app))
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("get -w exited before printing the new app")
			}
			if strings.HasPrefix(l, "web ") {
				return
			}
		case <-deadline:
			t.Fatal("get -w did not print the app applied after it started")
		}
	}
}

func TestCLIErrors(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unreachable", []string{"--server", "http://127.0.0.1:1", "get", "apps"}, `cannot reach the Slipway API at http://127.0.0.1:1`},
		{"bad token", []string{"--token", "nope", "get", "apps"}, "error: "},
		{"unknown kind", []string{"get", "widgets"}, `unknown kind "widgets"`},
		{"missing file", []string{"apply", "-f", "/nonexistent/x.yaml"}, "/nonexistent/x.yaml"},
		{"no -f", []string{"apply"}, "must give -f"},
		{"bad output", []string{"get", "apps", "-o", "xml"}, `unsupported output format "xml"`},
		{"not found", []string{"describe", "app", "ghost"}, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := p.run("", c.args...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.want) {
				t.Fatalf("stderr %q lacks %q", r.stderr, c.want)
			}
			if strings.Count(strings.TrimSpace(r.stderr), "\n") > 0 {
				t.Errorf("want a one-line reason, got:\n%s", r.stderr)
			}
		})
	}
}

package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tourStep checks one line of the README's short tour: it runs the
// command and checks what the line's comment claims. tourSteps is keyed by
// the whole line, "COMMAND # COMMENT": a tour line it does not know (a new
// command, or a comment that now claims something else) fails the test, so
// the README and the behaviour cannot drift apart.
type tourStep func(t *testing.T, tr *tour, args []string)

// tour is the state the steps share.
type tour struct {
	p         *platform
	manifests string // examples/hello, running the prebuilt sample app
	clusterIP string
	pod       string
}

// readTour returns the command lines of the README's "A short tour"
// block, each with its comment.
func readTour(t *testing.T) (cmds, comments []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "## A short tour\n")
	if !ok {
		t.Fatal(`README.md has no "## A short tour" section`)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```\n")
	if !ok || !ok2 {
		t.Fatal("the tour has no ```sh block")
	}
	for line := range strings.SplitSeq(strings.TrimSpace(block), "\n") {
		cmd, comment, _ := strings.Cut(line, "#")
		cmds, comments = append(cmds, strings.TrimSpace(cmd)), append(comments, strings.TrimSpace(comment))
	}
	return cmds, comments
}

// helloManifests copies examples/hello's manifests with the sample app's
// command pointing at the prebuilt binary: `go run` from the repository
// would compile it first, which the tour's reader waits for once but a
// test should not.
func helloManifests(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"app.yaml", "route.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", "hello", f))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), `command: ["go", "run", "./examples/hello"]`, `command: ["`+helloBin+`"]`, 1)
		s = strings.Replace(s, "        workingDir: .\n", "", 1)
		if f == "app.yaml" && !strings.Contains(s, helloBin) {
			t.Fatalf("examples/hello/app.yaml changed its command; update helloManifests:\n%s", b)
		}
		writeFile(t, dir, f, s)
	}
	return dir
}

// TestREADMETour runs the README's short tour, line by line, against the
// real binary, and checks what each comment says.
func TestREADMETour(t *testing.T) {
	cmds, comments := readTour(t)
	tr := &tour{p: startPlatform(t, t.TempDir()), manifests: helloManifests(t)}
	p := tr.p
	used := map[string]bool{}
	for i, line := range cmds {
		key := line + " # " + comments[i]
		step, ok := tourSteps[key]
		if !ok {
			t.Fatalf("README tour line %q is not known to TestREADMETour: add what it claims to tourSteps (keyed by the command and its comment)", key)
		}
		used[key] = true
		args := strings.Fields(line)
		for j, a := range args {
			if a == "examples/hello/" {
				args[j] = tr.manifests
			}
			if a == "hello-1-x7k2p" {
				args[j] = tr.pod
			}
		}
		t.Logf("tour: %s", line)
		step(t, tr, args[1:])
		if t.Failed() {
			t.Fatalf("tour stopped at %q\nplatform log:\n%s", line, p.logs)
		}
	}
	for line := range tourSteps {
		if !used[line] {
			t.Errorf("tourSteps checks %q, which the README's tour no longer has: remove it", line)
		}
	}
}

// must runs a slipway command and returns its stdout, failing the test
// unless it exits 0.
func (tr *tour) must(t *testing.T, args ...string) string {
	t.Helper()
	return tr.p.ok(args...)
}

func contains(t *testing.T, what, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, out)
		}
	}
}

func lines(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }

// httpGet gets url with the Host header host ("" for the URL's).
func httpGet(t *testing.T, url, host string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s (Host %s): %s %s", url, host, resp.Status, b)
	}
	return string(b)
}

var clusterIPCell = regexp.MustCompile(`^hello\s+(\d+\.\d+\.\d+\.\d+)\s+(\S+)`)

var tourSteps = map[string]tourStep{
	"./slipway apply -f examples/hello/ # app/hello created, service/hello created, route/hello created": func(t *testing.T, tr *tour, args []string) {
		if out := tr.must(t, args...); out != "app/hello created\nservice/hello created\nroute/hello created\n" {
			t.Errorf("first apply printed %q", out)
		}
	},
	"./slipway apply -f examples/hello/ # app/hello configured: back to the file's 2 replicas (the file owns spec.replicas)": func(t *testing.T, tr *tour, args []string) {
		if out := tr.must(t, args...); out != "app/hello configured\nservice/hello unchanged\nroute/hello unchanged\n" {
			t.Errorf("apply after scale printed %q", out)
		}
		if r := tr.must(t, "get", "app", "hello", "-o", "jsonpath={.spec.replicas}"); r != "2" {
			t.Errorf("after apply, spec.replicas is %s, want the file's 2", r)
		}
	},
	"./slipway get pods -w # two pods of the sample app, Pending → Running, READY 1/1; Ctrl-C ends it (exit 0)": watchPods,
	"./slipway get apps # NAME READY UP-TO-DATE AVAILABLE REVISION STRATEGY PHASE AGE: hello 2/2 2 2 1 Rolling Healthy": func(t *testing.T, tr *tour, args []string) {
		var out string
		waitUntil(t, 30*time.Second, "get apps shows hello Healthy", func() bool {
			out = tr.must(t, args...)
			return strings.Contains(out, "Healthy")
		})
		l := lines(out)
		if h := strings.Join(strings.Fields(l[0]), " "); h != "NAME READY UP-TO-DATE AVAILABLE REVISION STRATEGY PHASE AGE" {
			t.Errorf("get apps header %q", h)
		}
		if f := strings.Fields(l[1]); len(f) != 8 || strings.Join(f[:7], " ") != "hello 2/2 2 2 1 Rolling Healthy" {
			t.Errorf("get apps row %q", l[1])
		}
	},
	"./slipway get svc hello # CLUSTER-IP 127.30.0.1, PORTS 80:http/TCP": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		waitUntil(t, 10*time.Second, "the service has a virtual IP", func() bool {
			out = tr.must(t, args...)
			return clusterIPCell.MatchString(lines(out)[len(lines(out))-1])
		})
		m := clusterIPCell.FindStringSubmatch(lines(out)[1])
		if m == nil || m[2] != "80:http/TCP" {
			t.Fatalf("get svc hello:\n%s", out)
		}
		tr.clusterIP = m[1] // the test platform's service range, not the default 127.30.0.0/16
	},
	"curl http://127.30.0.1/ # hello from v1 (hello-1-x7k2p): through the service": func(t *testing.T, tr *tour, _ []string) {
		body := httpGet(t, "http://"+tr.clusterIP+"/", "")
		if !regexp.MustCompile(`^hello from v1 \(hello-1-[a-z0-9]{5}\)`).MatchString(body) {
			t.Errorf("through the service: %q", body)
		}
	},
	"curl http://hello-default.localhost:8080/ # the same through the router (the route's default host)": func(t *testing.T, tr *tour, _ []string) {
		var body string
		waitUntil(t, 10*time.Second, "the router serves the route", func() bool {
			req, _ := http.NewRequest(http.MethodGet, "http://"+tr.p.router+"/", nil)
			req.Host = "hello-default.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body = string(b)
			return resp.StatusCode == http.StatusOK
		})
		contains(t, "through the router", body, "hello from v1 (hello-1-")
	},
	"./slipway get routes # HOST hello-default.localhost, BACKENDS hello, ADMITTED True": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		if f := strings.Fields(lines(out)[1]); len(f) < 5 || f[1] != "hello-default.localhost" || f[3] != "hello" || f[4] != "True" {
			t.Errorf("get routes:\n%s", out)
		}
	},
	"./slipway get endpoints hello # the ready pods behind it": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		if n := strings.Count(lines(out)[1], ":8080"); n != 2 {
			t.Errorf("get endpoints hello shows %d ready endpoints, want 2:\n%s", n, out)
		}
	},
	"./slipway scale app/hello --replicas 5 # app/hello scaled: three more pods": func(t *testing.T, tr *tour, args []string) {
		if out := tr.must(t, args...); out != "app/hello scaled\n" {
			t.Errorf("scale printed %q", out)
		}
		waitUntil(t, 30*time.Second, "five pods ready", func() bool {
			return strings.Count(tr.must(t, "get", "pods", "-l", "app=hello"), "Running") == 5
		})
	},
	"./slipway logs app/hello # every pod's output, each line prefixed with its pod": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		for _, l := range lines(out) {
			if !strings.HasPrefix(l, "[hello-1-") {
				t.Errorf("logs app/hello line without its pod: %q", l)
			}
		}
		tr.pod = strings.TrimPrefix(strings.Fields(out)[0], "[")
		tr.pod = strings.TrimSuffix(tr.pod, "]")
	},
	"./slipway describe pod hello-1-x7k2p # containers, restarts, recent probe results, events": func(t *testing.T, tr *tour, args []string) {
		contains(t, "describe pod", tr.must(t, args...), "Name:", tr.pod, "Containers:", "Restart", "Events:")
	},
	"./slipway set env app/hello VERSION=v2 # a new revision: it rolls out, one surge pod at a time": func(t *testing.T, tr *tour, args []string) {
		contains(t, "set env", tr.must(t, args...), "app/hello env updated")
	},
	"./slipway rollout status app/hello # waits: \"app/hello successfully rolled out (revision 2, 2/2 pods ready)\"": func(t *testing.T, tr *tour, args []string) {
		contains(t, "rollout status", tr.must(t, append(args, "--timeout", "60s")...), "app/hello successfully rolled out (revision 2, 2/2 pods ready)")
	},
	"./slipway get revisions # hello-1 scaled down as hello-2's pods became ready": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		if f := strings.Fields(lines(out)[1]); len(f) < 4 || f[0] != "hello-1" || f[2] != "0" {
			t.Errorf("get revisions: hello-1 not scaled down:\n%s", out)
		}
		contains(t, "get revisions", out, "hello-2")
	},
	"./slipway rollout history app/hello # 1 <initial>, 2 web env VERSION=v2": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		if l := lines(out); len(l) != 3 || !strings.HasPrefix(l[1], "1 ") || !strings.HasSuffix(l[1], "<initial>") ||
			!strings.HasPrefix(l[2], "2 ") || !strings.HasSuffix(l[2], "web env VERSION=v2") {
			t.Errorf("rollout history:\n%s", out)
		}
	},
	"./slipway rollout undo app/hello # revision 3 runs revision 1's template again": func(t *testing.T, tr *tour, args []string) {
		contains(t, "rollout undo", tr.must(t, args...), "app/hello rolled back to the template of revision 1")
		contains(t, "rollout status", tr.must(t, "rollout", "status", "app/hello", "--timeout", "60s"), "successfully rolled out (revision 3")
		var body string
		waitUntil(t, 10*time.Second, "revision 3 serves v1", func() bool {
			body = httpGet(t, "http://"+tr.clusterIP+"/", "")
			return strings.HasPrefix(body, "hello from v1 (hello-3-")
		})
	},
	"./slipway set route-backends hello # the route's backends and weights (A/B: SVC=W SVC=W ...)": func(t *testing.T, tr *tour, args []string) {
		contains(t, "set route-backends", tr.must(t, args...), "hello")
	},
	"./slipway expose app/hello --name www # another Service and Route for the app, in one command: http://www-default.localhost:8080/": func(t *testing.T, tr *tour, args []string) {
		contains(t, "expose", tr.must(t, args...), "service/www", "route/www")
		waitUntil(t, 10*time.Second, "www-default.localhost answers", func() bool {
			req, _ := http.NewRequest(http.MethodGet, "http://"+tr.p.router+"/", nil)
			req.Host = "www-default.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
	},
	"./slipway get app/hello -o yaml # the object as stored, defaults filled in: apply -f takes it back": func(t *testing.T, tr *tour, args []string) {
		out := tr.must(t, args...)
		if !strings.HasPrefix(out, "apiVersion: slipway.dev/v1\nkind: App\n") || strings.Contains(out, "kind: List") {
			t.Fatalf("get app/hello -o yaml is not the object itself:\n%s", out)
		}
		contains(t, "get -o yaml", out, "maxSurge: 1", "progressDeadlineSeconds:")
		f := writeFile(t, t.TempDir(), "hello.yaml", out)
		contains(t, "apply -f of get -o yaml", tr.must(t, "apply", "-f", f), "app/hello unchanged")
	},
	"./slipway delete -f examples/hello/ # route/hello deleted, service/hello deleted, app/hello deleted": func(t *testing.T, tr *tour, args []string) {
		if out := tr.must(t, args...); out != "route/hello deleted\nservice/hello deleted\napp/hello deleted\n" {
			t.Errorf("delete -f printed %q", out)
		}
	},
}

// watchPods runs get pods -w until two pods are Running and ready, then
// stops it as Ctrl-C does.
func watchPods(t *testing.T, tr *tour, args []string) {
	cmd := exec.Command(bin, args...)
	cmd.Env = tr.p.env()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rows := make(chan string)
	go func() {
		defer close(rows)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			rows <- sc.Text()
		}
	}()
	running := map[string]bool{}
	timeout := time.After(30 * time.Second)
	for len(running) < 2 {
		select {
		case row, ok := <-rows:
			if !ok {
				t.Fatalf("get pods -w ended before two pods were Running 1/1 (stderr %q)", stderr.String())
			}
			if f := strings.Fields(row); len(f) >= 3 && f[1] == "1/1" && f[2] == "Running" {
				running[f[0]] = true
			}
		case <-timeout:
			cmd.Process.Kill()
			t.Fatalf("get pods -w did not show two pods Running 1/1 within 30s")
		}
	}
	cmd.Process.Signal(syscall.SIGINT) // Ctrl-C
	for range rows {
	}
	err = cmd.Wait()
	if err != nil || stderr.String() != "" {
		t.Errorf("get pods -w after Ctrl-C: %v, stderr %q; want exit 0 and nothing", err, stderr.String())
	}
}

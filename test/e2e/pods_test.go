package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// helloManifest is the sample app with n replicas behind a service.
func helloManifest(n int, grace int) string {
	return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  replicas: %d
  template:
    terminationGracePeriodSeconds: %d
    containers:
      - name: web
        command: [%q]
        env: [{name: VERSION, value: v1}]
        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
---
apiVersion: slipway.dev/v1
kind: Service
metadata: {name: hello}
spec:
  selector: {app: hello}
  ports: [{name: http, port: 80, targetPort: http}]
`, n, grace, helloBin)
}

type appStatus struct {
	Spec   struct{ Replicas int }
	Status struct {
		Replicas, ReadyReplicas int
		Phase                   string
	}
}

// waitApp waits until the app has exactly n pods, all ready.
func (p *platform) waitApp(name string, n int, d time.Duration) {
	p.t.Helper()
	waitUntil(p.t, d, fmt.Sprintf("app %s has %d ready pods and no others", name, n), func() bool {
		var a appStatus
		if json.Unmarshal([]byte(p.ok("get", "app", name, "-o", "json")), &a) != nil {
			return false
		}
		if a.Status.ReadyReplicas != n || a.Status.Replicas != n {
			return false
		}
		var pods struct{ Items []any }
		json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app="+name, "-o", "json")), &pods)
		return len(pods.Items) == n
	})
}

func (p *platform) serviceIP(name string) string {
	p.t.Helper()
	var ip string
	waitUntil(p.t, 20*time.Second, "service "+name+" has a cluster IP", func() bool {
		var s struct{ Status struct{ ClusterIP string } }
		json.Unmarshal([]byte(p.ok("get", "svc", name, "-o", "json")), &s)
		ip = s.Status.ClusterIP
		return ip != ""
	})
	return ip
}

// load sends requests from n keep-alive clients until stopped, checking
// every response.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	pids       map[string]int
	stop       chan struct{}
	wg         sync.WaitGroup
}

// drive runs `clients` keep-alive clients plus `fresh` clients that open a
// new connection for every request, each sending GET url (with Host host
// when set) until stop closes, and hands every outcome to handle.
func drive(url, host string, clients, fresh int, stop <-chan struct{}, wg *sync.WaitGroup, handle func(resp *http.Response, body []byte, err error)) {
	for i := range clients + fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableKeepAlives: i >= clients}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				// The start time rides in the context, so that handlers
				// can tell when the request was sent (requestStart).
				req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), startKey{}, time.Now()), "GET", url, nil)
				if host != "" {
					req.Host = host
				}
				resp, err := c.Do(req)
				if err != nil {
					handle(nil, nil, err)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				handle(resp, body, err)
			}
		}()
	}
}

type startKey struct{}

// requestStart is when drive sent the request resp answers.
func requestStart(resp *http.Response) time.Time {
	t, _ := resp.Request.Context().Value(startKey{}).(time.Time)
	return t
}

// startLoad drives url, accepting only v1's answer.
func startLoad(url string, clients, fresh int) *load {
	return startLoadHost(url, "", clients, fresh)
}

func startLoadHost(url, host string, clients, fresh int) *load {
	l := &load{stop: make(chan struct{}), pids: map[string]int{}}
	drive(url, host, clients, fresh, l.stop, &l.wg, func(resp *http.Response, body []byte, err error) {
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from v1") {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			l.fail(fmt.Sprintf("status %d body %q err %v", status, body, err))
			return
		}
		l.ok.Add(1)
		l.mu.Lock()
		l.pids[resp.Header.Get("X-Pod")]++
		l.mu.Unlock()
	})
	return l
}

func (l *load) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
}

func (l *load) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d ok, %d failed, over %d pods", l.ok.Load(), l.failed.Load(), len(l.pids))
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed; first errors: %q", n, l.errs)
	}
}

func TestServiceLosesNoRequestWhileScaling(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", helloManifest(3, 30)))
	p.waitApp("hello", 3, 60*time.Second)
	ip := p.serviceIP("hello")
	l := startLoad("http://"+ip+":80/", 32, 4)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.ok.Load() > 100 })
	for _, n := range []int{10, 1, 5} {
		p.ok("scale", "app/hello", "--replicas", fmt.Sprint(n))
		p.waitApp("hello", n, 90*time.Second)
	}
	// Delete two pods: the revision replaces them, traffic goes on.
	var pods struct {
		Items []struct{ Metadata struct{ Name string } }
	}
	json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods)
	p.ok("delete", "pod", pods.Items[0].Metadata.Name, pods.Items[1].Metadata.Name)
	p.waitApp("hello", 5, 90*time.Second)
	before := l.ok.Load()
	waitUntil(t, 10*time.Second, "traffic still flows", func() bool { return l.ok.Load() > before+100 })
	l.end(t)
	// Fresh connections spread over the pods that came and went.
	if n := len(l.pids); n < 8 {
		t.Errorf("only %d distinct pods answered; scaling to 10 should have spread new connections", n)
	}
}

func TestKillNineAdoptsPods(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home)
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", helloManifest(5, 30)))
	p.waitApp("hello", 5, 60*time.Second)
	ip := p.serviceIP("hello")
	pids := podPIDs(t, p)
	if len(pids) != 5 {
		t.Fatalf("pids of 5 pods: %v", pids)
	}
	// Every pod's output, each line prefixed with its pod.
	logs := p.ok("logs", "app/hello")
	for name := range pids {
		if !strings.Contains(logs, "["+name+"] ") || !strings.Contains(logs, "hello v1 listening on") {
			t.Fatalf("logs app/hello lacks pod %s's lines:\n%s", name, logs)
		}
	}
	l := startLoad("http://"+ip+":80/", 8, 0)
	p.kill()
	// The pods outlive Slipway; their service does not (the proxy ran in
	// it), so the load stops here and resumes after the restart.
	close(l.stop)
	l.wg.Wait()
	p2 := startPlatform(t, home)
	p2.waitApp("hello", 5, 60*time.Second)
	after := podPIDs(t, p2)
	if fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Fatalf("pods after kill -9 and restart: %v, before: %v (want the same processes, no duplicates)", after, pids)
	}
	l2 := startLoad("http://"+ip+":80/", 8, 2)
	waitUntil(t, 20*time.Second, "traffic flows through the restarted service", func() bool { return l2.ok.Load() > 200 })
	l2.end(t)

	// A graceful stop stops the pods; the next start runs them anew.
	p2.stop()
	p3 := startPlatform(t, home, "--keep-pods")
	p3.waitApp("hello", 5, 60*time.Second)
	fresh := podPIDs(t, p3)
	for name, pid := range fresh {
		if pids[name] == pid {
			t.Errorf("pod %s kept pid %s across a graceful stop without --keep-pods", name, pid)
		}
	}
	// With --keep-pods, a graceful stop leaves them for the next start.
	p3.stop()
	p4 := startPlatform(t, home)
	p4.waitApp("hello", 5, 60*time.Second)
	if got := podPIDs(t, p4); fmt.Sprint(got) != fmt.Sprint(fresh) {
		t.Fatalf("after a --keep-pods stop and a restart: %v, want the same processes %v", got, fresh)
	}
}

// podPIDs asks each pod directly which process answers. Right after a
// restart the records may still show the addresses of the last run: it
// waits until every pod's recorded address answers with that pod's name.
func podPIDs(t *testing.T, p *platform) map[string]string {
	t.Helper()
	var out map[string]string
	waitUntil(t, 30*time.Second, "every pod answers at its recorded address", func() bool {
		var pods struct {
			Items []struct {
				Metadata struct{ Name string }
				Status   struct{ PodIP string }
			}
		}
		json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods)
		out = map[string]string{}
		for _, it := range pods.Items {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+it.Status.PodIP+":8080/", nil)
			resp, err := http.DefaultClient.Do(req)
			cancel()
			if err != nil {
				return false
			}
			resp.Body.Close()
			if resp.Header.Get("X-Pod") != it.Metadata.Name {
				return false
			}
			out[it.Metadata.Name] = resp.Header.Get("X-Pid")
		}
		return len(out) > 0
	})
	return out
}

// TestTerminationOrderThroughService deletes a pod under load through its
// service, with slow requests always in flight, and an app that exits at
// once on SIGTERM. The pod leaves the endpoints, the proxy drains it (no
// new connection, no new request on an open one, in-flight requests
// answered), and only then does it get SIGTERM: no request fails, none
// arrives after SIGTERM and none is in flight when it comes.
func TestTerminationOrderThroughService(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	logDir := t.TempDir()
	m := strings.Replace(helloManifest(2, 3), "env: [{name: VERSION, value: v1}]",
		fmt.Sprintf("env: [{name: VERSION, value: v1}, {name: SLOW, value: 50ms}, {name: ON_SIGTERM, value: exit}, {name: REQUEST_LOG_DIR, value: %q}]", logDir), 1)
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", m))
	p.waitApp("hello", 2, 60*time.Second)
	ip := p.serviceIP("hello")
	l := startLoad("http://"+ip+":80/", 16, 4)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.ok.Load() > 200 })

	var pods struct {
		Items []struct{ Metadata struct{ Name string } }
	}
	json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods)
	victim := pods.Items[0].Metadata.Name
	p.ok("delete", "pod", victim)
	logFile := filepath.Join(logDir, victim+".log")
	waitUntil(t, 60*time.Second, "the deleted pod exited", func() bool {
		b, _ := os.ReadFile(logFile)
		return strings.Contains(string(b), "\nexit ")
	})
	p.waitApp("hello", 2, 60*time.Second)
	before := l.ok.Load()
	waitUntil(t, 10*time.Second, "traffic flows on the replacement", func() bool { return l.ok.Load() > before+200 })
	l.end(t)

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	var term, exit int64
	open, started := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var what string
		var at int64
		fmt.Sscan(line, &what, &at)
		switch what {
		case "start":
			if term != 0 {
				t.Errorf("a request arrived %v after SIGTERM: the pod was still sent traffic", time.Duration(at-term))
			}
			open++
			started++
		case "end":
			open--
		case "term":
			term = at
			if open != 0 {
				t.Errorf("SIGTERM came with %d requests in flight", open)
			}
		case "exit":
			exit = at
		}
	}
	if term == 0 || exit == 0 || started == 0 {
		t.Fatalf("the victim's log lacks SIGTERM, exit or requests (started %d):\n%s", started, b)
	}
	if open != 0 {
		t.Errorf("the pod exited with %d requests it had accepted still unanswered", open)
	}
}

// TestRouterLosesNoRequestWhileScaling sends public traffic through the
// router to an app that exits at once on SIGTERM while it is scaled and
// its pods deleted.
func TestRouterLosesNoRequestWhileScaling(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	m := strings.Replace(helloManifest(3, 30), "env: [{name: VERSION, value: v1}]",
		"env: [{name: VERSION, value: v1}, {name: ON_SIGTERM, value: exit}]", 1) + `---
apiVersion: slipway.dev/v1
kind: Route
metadata: {name: hello}
spec:
  to: {service: hello}
`
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", m))
	p.waitApp("hello", 3, 60*time.Second)
	waitUntil(t, 20*time.Second, "the route is admitted", func() bool {
		out := p.ok("get", "routes")
		return strings.Contains(out, "hello-default.localhost") && strings.Contains(out, "True")
	})
	l := startLoadHost("http://"+p.router+"/", "hello-default.localhost", 32, 4)
	waitUntil(t, 10*time.Second, "traffic flows through the router", func() bool { return l.ok.Load() > 200 })
	for _, n := range []int{6, 1, 4} {
		p.ok("scale", "app/hello", "--replicas", fmt.Sprint(n))
		p.waitApp("hello", n, 90*time.Second)
	}
	var pods struct {
		Items []struct{ Metadata struct{ Name string } }
	}
	json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods)
	p.ok("delete", "pod", pods.Items[0].Metadata.Name)
	p.waitApp("hello", 4, 90*time.Second)
	before := l.ok.Load()
	waitUntil(t, 10*time.Second, "traffic still flows", func() bool { return l.ok.Load() > before+100 })
	l.end(t)

	// The router counted what it served: /metrics on the API address, with
	// the token (and 401 without).
	tok, err := os.ReadFile(filepath.Join(p.dataDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	noAuth, err := http.Get(p.apiURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	noAuth.Body.Close()
	if noAuth.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without a token: %d, want 401", noAuth.StatusCode)
	}
	mreq, _ := http.NewRequest("GET", p.apiURL+"/metrics", nil)
	mreq.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	mresp, err := http.DefaultClient.Do(mreq)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	var served float64
	for _, line := range strings.Split(string(metrics), "\n") {
		if strings.HasPrefix(line, "slipway_router_requests_total{") && strings.Contains(line, `class="2xx"`) && strings.Contains(line, `route="default/hello"`) {
			var v float64
			fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			served += v
		}
	}
	if served < float64(l.ok.Load()) {
		t.Errorf("/metrics counts %v 2xx answers on route default/hello, the clients got %d", served, l.ok.Load())
	}

	// An unknown host is the router's 404, not an error.
	req, _ := http.NewRequest("GET", "http://"+p.router+"/", nil)
	req.Host = "nobody.example.test"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown host: status %d, want 404", resp.StatusCode)
	}
}

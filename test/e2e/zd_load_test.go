package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The zero-downtime suite (zd_*_test.go) drives every strategy under load
// through a route: zdClients keep-alive clients plus one client opening a
// new connection per request, every response checked for its status and
// for which VERSION of the sample app answered.
const zdClients = 64

// zdLoad counts what the clients saw, per version.
type zdLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex
	counts map[string]int64 // version → answers
	failed int64
	// noReady counts the router's own 503 for a route with no ready pod.
	noReady int64
	errs    []string
	allowed map[string]bool
	// tolerate: failed requests are counted but do not fail the test
	// (Recreate has downtime by design).
	tolerate bool
	lastOK   time.Time
	maxGap   time.Duration // longest time without any answer
	firstAt  map[string]time.Time
	lastAt   map[string]time.Time
}

var versionRe = regexp.MustCompile(`^hello from (v[0-9]+) `)

// startZDLoad drives host through the router; answers from a version not
// in allowed count as failures.
func startZDLoad(p *platform, host string, allowed ...string) *zdLoad {
	l := &zdLoad{stop: make(chan struct{}), counts: map[string]int64{}, allowed: map[string]bool{},
		lastOK: time.Now(), firstAt: map[string]time.Time{}, lastAt: map[string]time.Time{}}
	for _, v := range allowed {
		l.allowed[v] = true
	}
	drive("http://"+p.router+"/", host, zdClients, 1, l.stop, &l.wg, l.handle)
	return l
}

func (l *zdLoad) handle(resp *http.Response, body []byte, err error) {
	now := time.Now()
	var why string
	version := ""
	switch {
	case err != nil:
		why = err.Error()
	case resp.StatusCode != http.StatusOK:
		why = fmt.Sprintf("status %d body %q", resp.StatusCode, body)
	default:
		m := versionRe.FindSubmatch(body)
		if m == nil {
			why = fmt.Sprintf("unexpected body %q", body)
			break
		}
		version = string(m[1])
		if h := resp.Header.Get("X-Version"); h != version {
			why = fmt.Sprintf("body says %s, X-Version says %q", version, h)
		}
	}
	l.mu.Lock()
	if why == "" && !l.allowed[version] {
		why = "answered by unexpected version " + version
	}
	if why != "" {
		l.failed++
		if resp != nil && resp.StatusCode == http.StatusServiceUnavailable && bytes.Contains(body, []byte("has no ready endpoint")) {
			l.noReady++
		}
		if len(l.errs) < 10 {
			l.errs = append(l.errs, now.Format("15:04:05.000")+" "+why)
		}
		l.mu.Unlock()
		// Keep a failing client from spinning while nothing answers.
		select {
		case <-l.stop:
		case <-time.After(5 * time.Millisecond):
		}
		return
	}
	l.counts[version]++
	if _, ok := l.firstAt[version]; !ok {
		l.firstAt[version] = now
	}
	l.lastAt[version] = now
	l.maxGap = max(l.maxGap, now.Sub(l.lastOK))
	l.lastOK = now
	l.mu.Unlock()
}

// allow accepts answers from more versions from now on.
func (l *zdLoad) allow(versions ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range versions {
		l.allowed[v] = true
	}
}

// zdCounted is a snapshot of the counters.
type zdCounted struct {
	at       time.Time
	versions map[string]int64
	failed   int64
	noReady  int64
	maxGap   time.Duration
}

func (c zdCounted) total() int64 {
	var n int64
	for _, v := range c.versions {
		n += v
	}
	return n
}

func (l *zdLoad) snapshot() zdCounted {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := zdCounted{at: time.Now(), versions: map[string]int64{}, failed: l.failed, noReady: l.noReady, maxGap: l.maxGap}
	for k, v := range l.counts {
		c.versions[k] = v
	}
	return c
}

func (l *zdLoad) count(version string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts[version]
}

// end stops the clients and fails the test on any failed request.
func (l *zdLoad) end(t *testing.T) zdCounted {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	c := l.snapshot()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("load: %v answers by version, %d failed; longest time without an answer %v", c.versions, c.failed, l.maxGap.Round(time.Millisecond))
	if c.failed != 0 && !l.tolerate {
		t.Errorf("%d requests failed; first: %q", c.failed, l.errs)
	}
	return c
}

// waitMore waits until version has answered n more requests than now.
func (l *zdLoad) waitMore(t *testing.T, version string, n int64) {
	t.Helper()
	from := l.count(version)
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d more answers from %s", n, version), func() bool { return l.count(version) >= from+n })
}

// settled checks that, once a rollout ended, only want answers: after
// 300 answers from want (requests the old pods accepted before they left
// may finish meanwhile), 300 more come with no answer from another version.
func (l *zdLoad) settled(t *testing.T, want string) {
	t.Helper()
	l.waitMore(t, want, 300)
	before := l.snapshot()
	l.waitMore(t, want, 300)
	after := l.snapshot()
	for v, n := range after.versions {
		if v != want && n != before.versions[v] {
			t.Errorf("%s answered %d requests after the rollout to %s ended", v, n-before.versions[v], want)
		}
	}
}

// The platform's API, read directly: polling through the CLI would take a
// process start per look.

func (p *platform) zdToken() string {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.dataDir, "admin.token"))
	if err != nil {
		p.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func (p *platform) zdGet(path string, v any) error {
	req, err := http.NewRequest("GET", p.apiURL+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.zdToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, v)
}

// zdApp is the part of an App's status the suite reads.
type zdApp struct {
	Status struct {
		Phase                          string
		Message                        string
		LatestRevision, StableRevision int64
		Replicas, ReadyReplicas        int
		Traffic                        []struct {
			Revision int64
			Weight   int
		}
		CurrentStep *int32
		Rollout     *zdRollout
	}
}

type zdRollout struct {
	Revision, From int64
	State, Reason  string
	Message        string
	CanaryWeight   int
	Report         *zdReport
}

type zdReport struct {
	DurationMillis int64
	Revisions      []struct {
		Revision, Requests, ServerErrors, Resets, UpstreamErrors int64
	}
	Failed, UpstreamErrors int64
	NoReadyPod             int64
	LongestNoReadyMillis   int64
	Measured, Final        bool
}

func (p *platform) zdAppStatus(name string) (zdApp, error) {
	var a zdApp
	err := p.zdGet("/api/v1/projects/default/apps/"+name, &a)
	return a, err
}

type zdPod struct {
	Metadata struct {
		Name   string
		Labels map[string]string
	}
	Spec   struct{ Revision int64 }
	Status struct {
		PodIP string
		Phase string
	}
}

func (p *platform) zdPods(name string) ([]zdPod, error) {
	var l struct{ Items []zdPod }
	err := p.zdGet("/api/v1/projects/default/pods?labelSelector="+url.QueryEscape("app="+name), &l)
	return l.Items, err
}

// rolledOut reports whether the App is Healthy on revision rev with n
// ready pods and no pod of another revision.
func (p *platform) zdRolledOut(name string, rev int64, n int) bool {
	a, err := p.zdAppStatus(name)
	if err != nil {
		return false
	}
	s := a.Status
	if s.Phase != "Healthy" || s.LatestRevision != rev || s.StableRevision != rev || s.ReadyReplicas != n || s.Replicas != n {
		return false
	}
	if r := s.Rollout; r != nil && r.Revision == rev && r.State != "Completed" {
		return false
	}
	pods, err := p.zdPods(name)
	if err != nil || len(pods) != n {
		return false
	}
	for _, pod := range pods {
		if pod.Spec.Revision != rev {
			return false
		}
	}
	return true
}

// watchRollout polls the App until it rolled out rev with n pods, and
// returns the load's counters when the rollout was last seen running and
// when it was first seen done.
func (p *platform) zdWatchRollout(l *zdLoad, name string, rev int64, n int, d time.Duration) (running, done zdCounted) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	running = l.snapshot()
	for {
		if p.zdRolledOut(name, rev, n) {
			return running, l.snapshot()
		}
		if time.Now().After(deadline) {
			a, _ := p.zdAppStatus(name)
			p.t.Fatalf("app %s not rolled out to revision %d with %d pods after %v; status %+v", name, rev, n, d, a.Status)
		}
		running = l.snapshot()
		time.Sleep(10 * time.Millisecond)
	}
}

// zdSpec is an App of the sample app with its Service and a Route on
// host <name>.zd.test.
type zdSpec struct {
	name     string
	replicas int
	strategy string // YAML under strategy:, indented by 4
	grace    int
	env      map[string]string // VERSION and the app's knobs
}

func (s zdSpec) manifest() string {
	var env strings.Builder
	for _, k := range slices.Sorted(maps.Keys(s.env)) {
		fmt.Fprintf(&env, "          - {name: %s, value: %q}\n", k, s.env[k])
	}
	strategy := ""
	if s.strategy != "" {
		strategy = "  strategy:\n" + s.strategy
	}
	return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: App
metadata: {name: %[1]s}
spec:
  replicas: %[2]d
%[3]s  template:
    terminationGracePeriodSeconds: %[4]d
    containers:
      - name: web
        command: [%[5]q]
        env:
%[6]s        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
---
apiVersion: slipway.dev/v1
kind: Service
metadata: {name: %[1]s}
spec:
  selector: {app: %[1]s}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: slipway.dev/v1
kind: Route
metadata: {name: %[1]s}
spec:
  host: %[1]s.zd.test
  to: {service: %[1]s}
`, s.name, s.replicas, strategy, s.grace, helloBin, env.String())
}

func (s zdSpec) host() string { return s.name + ".zd.test" }

func (s zdSpec) with(version string) zdSpec {
	c := s
	c.env = map[string]string{}
	for k, v := range s.env {
		c.env[k] = v
	}
	c.env["VERSION"] = version
	return c
}

// zdApply applies the spec with VERSION set to version.
func (p *platform) zdApply(s zdSpec, version string) {
	p.t.Helper()
	p.ok("apply", "-f", writeFile(p.t, p.t.TempDir(), s.name+"-"+version+".yaml", s.with(version).manifest()))
}

// zdServing waits until the route answers with version.
func (p *platform) zdServing(host, version string) {
	p.t.Helper()
	waitUntil(p.t, 60*time.Second, host+" answers with "+version, func() bool {
		req, _ := http.NewRequest("GET", "http://"+p.router+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := versionRe.FindSubmatch(body)
		return resp.StatusCode == 200 && m != nil && string(m[1]) == version
	})
}

// zdRouterCount reads the router's own count of requests the App's
// revision answered on its route, from /metrics: for telling a report's
// miscount from the router's.
func (p *platform) zdRouterCount(app string, revision int64) int64 {
	req, _ := http.NewRequest("GET", p.apiURL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.zdToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var n int64
	rev := fmt.Sprintf(`revision="%d"`, revision)
	route := fmt.Sprintf(`route="default/%s"`, app)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "slipway_router_requests_total{") && strings.Contains(line, rev) && strings.Contains(line, route) {
			var v float64
			if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
				n += int64(v)
			}
		}
	}
	return n
}

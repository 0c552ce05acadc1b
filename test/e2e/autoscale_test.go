package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// autoscaleManifest is the sample app taking 20 ms per request, autoscaled
// on concurrency 4 per pod every second, with a Service and a Route for
// host. The scale-up policy lets one evaluation reach maxReplicas and the
// scale-down window is 5 s, so the test measures the loop, not the HPA's
// default rate limits (which the table tests hold).
func autoscaleManifest(host string, minR, maxR, startReplicas int, extra string) string {
	return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello}
spec:
  replicas: %d
  autoscaling:
    minReplicas: %d
    maxReplicas: %d
    intervalSeconds: 1
    metrics: [{type: concurrency, target: 4}]
    behavior:
      scaleUp: {policies: [{type: Pods, value: 16, periodSeconds: 1}]}
      scaleDown: {stabilizationWindowSeconds: 5, policies: [{type: Percent, value: 100, periodSeconds: 1}]}
%s  template:
    terminationGracePeriodSeconds: 30
    containers:
      - name: web
        command: [%q]
        env: [{name: VERSION, value: v1}, {name: SLOW, value: 20ms}]
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
---
apiVersion: slipway.dev/v1
kind: Route
metadata: {name: hello}
spec:
  host: %s
  to: {service: hello}
`, startReplicas, minR, maxR, extra, helloBin, host)
}

// scaleLoad drives the router with a group of clients that can grow and
// shrink, checks every answer (200 from v1) and records when each pod
// answered first.
type scaleLoad struct {
	p    *platform
	host string

	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	firstSeen  map[string]time.Time
	groups     []*loadGroup
}

type loadGroup struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newScaleLoad(p *platform, host string) *scaleLoad {
	return &scaleLoad{p: p, host: host, firstSeen: map[string]time.Time{}}
}

// add starts n more keep-alive clients; the group stops them.
func (l *scaleLoad) add(n int) *loadGroup {
	g := &loadGroup{stop: make(chan struct{})}
	drive("http://"+l.p.router+"/", l.host, n, 0, g.stop, &g.wg, func(resp *http.Response, body []byte, err error) {
		if err != nil || resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from v1") {
			l.failed.Add(1)
			l.mu.Lock()
			if len(l.errs) < 10 {
				if err != nil {
					l.errs = append(l.errs, err.Error())
				} else {
					l.errs = append(l.errs, fmt.Sprintf("status %d body %q Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After")))
				}
			}
			l.mu.Unlock()
			return
		}
		l.ok.Add(1)
		pod := resp.Header.Get("X-Pod")
		l.mu.Lock()
		if _, ok := l.firstSeen[pod]; !ok {
			l.firstSeen[pod] = time.Now()
		}
		l.mu.Unlock()
	})
	l.groups = append(l.groups, g)
	return g
}

func (g *loadGroup) end() {
	close(g.stop)
	g.wg.Wait()
}

// firstNewPod is when a pod not in known first answered after since.
func (l *scaleLoad) firstNewPod(known map[string]bool) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for pod, at := range l.firstSeen {
		if !known[pod] && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (l *scaleLoad) pods() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for pod := range l.firstSeen {
		out[pod] = true
	}
	return out
}

func (l *scaleLoad) end(t *testing.T) {
	t.Helper()
	for _, g := range l.groups {
		select {
		case <-g.stop:
		default:
			g.end()
		}
	}
	t.Logf("load: %d ok, %d failed over %d pods", l.ok.Load(), l.failed.Load(), len(l.firstSeen))
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed; first errors: %q", n, l.errs)
	}
}

// autoscaledApp is what the autoscale tests read of the App.
type autoscaledApp struct {
	Spec   struct{ Replicas int }
	Status struct {
		Replicas, ReadyReplicas int
		Autoscaling             *struct {
			CurrentReplicas, DesiredReplicas int
			LastEvaluation                   time.Time
			CurrentMetrics                   []struct{ Type, Value string }
		}
	}
}

func (p *platform) autoscaled() autoscaledApp {
	p.t.Helper()
	var a autoscaledApp
	if err := json.Unmarshal([]byte(p.ok("get", "app", "hello", "-o", "json")), &a); err != nil {
		p.t.Fatal(err)
	}
	return a
}

// scaleStep is one load step 8 → 64 clients and back: it returns the time
// from the step until a new pod answered and until the app had scaled.
func scaleStep(t *testing.T, p *platform, l *scaleLoad) (firstNew, scaled time.Duration) {
	t.Helper()
	known := l.pods()
	step := time.Now()
	burst := l.add(56)
	// 64 clients, 20 ms each, target 4 per pod: 16 pods wanted (about 12
	// at least, the in-flight count being sampled). Bounded: the
	// evaluations of 30 s.
	waitUntil(t, 30*time.Second, "the app scaled up to at least 10 ready pods", func() bool {
		return p.autoscaled().Status.ReadyReplicas >= 10
	})
	scaled = time.Since(step)
	at, ok := l.firstNewPod(known)
	if !ok {
		waitUntil(t, 10*time.Second, "a new pod answers", func() bool { _, ok := l.firstNewPod(known); return ok })
		at, _ = l.firstNewPod(known)
	}
	firstNew = at.Sub(step)
	a := p.autoscaled()
	t.Logf("scaled to %d replicas (%d ready) %v after the step; first new pod answered after %v; metrics %+v",
		a.Spec.Replicas, a.Status.ReadyReplicas, scaled.Round(time.Millisecond), firstNew.Round(time.Millisecond), a.Status.Autoscaling.CurrentMetrics)
	// Back to 8 clients: down to 2 once the 5 s window has passed, every
	// pod drained before it stops.
	burst.end()
	down := time.Now()
	p.waitApp("hello", 2, 90*time.Second)
	// The 5 s window runs from the last high recommendation, which may
	// come before the clients have all stopped: only logged.
	t.Logf("back to 2 pods %v after the burst ended", time.Since(down).Round(time.Millisecond))
	return firstNew, scaled
}

// TestAutoscaleFollowsALoadStep: 8 → 64 concurrent clients against an app
// taking 20 ms per request with concurrency target 4 scales up within
// 30 evaluations, comes back to 2 after the window, and no request fails.
func TestAutoscaleFollowsALoadStep(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	const host = "auto-default.localhost"
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", autoscaleManifest(host, 2, 16, 2, "")))
	p.waitApp("hello", 2, 60*time.Second)
	l := newScaleLoad(p, host)
	l.add(8)
	waitUntil(t, 20*time.Second, "traffic flows and the autoscaler evaluated it", func() bool {
		a := p.autoscaled()
		return l.ok.Load() > 200 && a.Status.Autoscaling != nil && len(a.Status.Autoscaling.CurrentMetrics) == 1
	})
	if a := p.autoscaled(); a.Spec.Replicas > 3 {
		t.Errorf("replicas %d at 8 clients (about 2 pods' worth at target 4)", a.Spec.Replicas)
	}
	scaleStep(t, p, l)
	l.end(t)
	out := p.ok("events", "--for", "app/hello")
	if !strings.Contains(out, "SuccessfulRescale") {
		t.Errorf("no SuccessfulRescale event:\n%s", out)
	}
}

// TestAutoscaleBenchLoadStep: the time from a load step to the first new
// pod taking traffic, median of 5 steps, against the sample app's own
// start-to-ready measured in the same run (go test ./test/e2e -run
// TestAutoscaleBench -bench AutoscaleBench -v).
func TestAutoscaleBenchLoadStep(t *testing.T) {
	runs := benchRuns(t)
	p := startPlatform(t, t.TempDir())
	const host = "auto-default.localhost"
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "hello.yaml", autoscaleManifest(host, 2, 16, 2, "")))
	p.waitApp("hello", 2, 60*time.Second)
	l := newScaleLoad(p, host)
	l.add(8)
	waitUntil(t, 20*time.Second, "traffic flows", func() bool { return l.ok.Load() > 200 })
	var base, first, scaled []time.Duration
	for range runs {
		base = append(base, appStartToReady(t, 1, "0s"))
		f, s := scaleStep(t, p, l)
		first, scaled = append(first, f), append(scaled, s)
	}
	l.end(t)
	b, f := median(base), median(first)
	t.Logf("BENCH autoscale load step 8→64 clients (interval 1s): first new pod took traffic after %v, app start-to-ready %v (baseline, same run), overhead %v; ≥10 pods ready after %v; medians of %d (first new pod %v, baselines %v, ≥10 ready %v)",
		f.Round(time.Millisecond), b.Round(time.Millisecond), (f - b).Round(time.Millisecond), median(scaled).Round(time.Millisecond),
		runs, roundAll(first), roundAll(base), roundAll(scaled))
}

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

// routeLoad drives the router for one host and counts every answer by the
// version that gave it (the sample app's X-Version header) and its status.
// Failures from v1 (the stable version) or without a version (the router's
// own errors, connection errors) are never acceptable; v2's 500s are the
// failing canary's share.
type routeLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	ok      map[string]int64 // version → 200 answers
	failed  map[string]int64 // version ("" for none) → failed answers
	errs    []string
	lastV1  time.Time
	firstV2 time.Time
	total   atomic.Int64
}

func startRouteLoad(p *platform, host string, clients, fresh int) *routeLoad {
	l := &routeLoad{stop: make(chan struct{}), ok: map[string]int64{}, failed: map[string]int64{}}
	drive("http://"+p.router+"/", host, clients, fresh, l.stop, &l.wg, func(resp *http.Response, body []byte, err error) {
		l.total.Add(1)
		l.mu.Lock()
		defer l.mu.Unlock()
		switch {
		case err != nil:
			l.failed[""]++
			l.note(err.Error())
		case resp.StatusCode == 200 && strings.HasPrefix(string(body), "hello from "+resp.Header.Get("X-Version")):
			v := resp.Header.Get("X-Version")
			l.ok[v]++
			now := time.Now()
			if v == "v1" {
				l.lastV1 = now
			} else if l.firstV2.IsZero() {
				l.firstV2 = now
			}
		default:
			l.failed[resp.Header.Get("X-Version")]++
			l.note(fmt.Sprintf("status %d version %q body %q", resp.StatusCode, resp.Header.Get("X-Version"), body))
		}
	})
	return l
}

func (l *routeLoad) note(msg string) {
	if len(l.errs) < 10 {
		l.errs = append(l.errs, msg)
	}
	select { // keep failing clients from spinning
	case <-l.stop:
	case <-time.After(time.Millisecond):
	}
}

// counts returns copies of the answer counts.
func (l *routeLoad) counts() (ok, failed map[string]int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ok, failed = map[string]int64{}, map[string]int64{}
	for k, v := range l.ok {
		ok[k] = v
	}
	for k, v := range l.failed {
		failed[k] = v
	}
	return ok, failed
}

// after waits until n more requests were answered.
func (l *routeLoad) after(t *testing.T, n int64) {
	t.Helper()
	target := l.total.Load() + n
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d more requests", n), func() bool { return l.total.Load() >= target })
}

func (l *routeLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	ok, failed := l.counts()
	t.Logf("load: answers %v, failures %v; first errors %q", ok, failed, l.errs)
}

// deployManifest is the sample app (3 replicas, VERSION version, extra
// env lines) with the strategy block, its Service and a Route for host.
func deployManifest(strategy, version, extraEnv, host string) string {
	m := rolloutManifest(strategy, version)
	if extraEnv != "" {
		m = strings.Replace(m, "value: "+version+"}]", "value: "+version+"}, "+extraEnv+"]", 1)
	}
	return m + fmt.Sprintf(`---
apiVersion: slipway.dev/v1
kind: Route
metadata: {name: hello}
spec:
  host: %s
  to: {service: hello}
`, host)
}

// appJSON is the App's status as rollout tests read it.
type appJSON struct {
	Metadata struct{ Generation int64 }
	Status   struct {
		ObservedGeneration             int64
		Phase, Message                 string
		LatestRevision, StableRevision int64
		PreviewRevision                int64
		Traffic                        []struct{ Revision, Weight int64 }
		Rollout                        *struct {
			Revision, From int64
			State, Reason  string
			Message        string
			Hooks          []struct{ Hook, Pod, Phase string }
			Report         *struct {
				DurationMillis, Failed, UpstreamErrors, LongestNoReadyMillis, NoReadyPod int64
				Measured, Final                                                          bool
				Revisions                                                                []struct{ Revision, Requests, ServerErrors, Resets int64 }
			}
		}
	}
}

func (p *platform) app(name string) appJSON {
	p.t.Helper()
	var a appJSON
	if err := json.Unmarshal([]byte(p.ok("get", "app", name, "-o", "json")), &a); err != nil {
		p.t.Fatal(err)
	}
	return a
}

func (a appJSON) traffic() string {
	var parts []string
	for _, t := range a.Status.Traffic {
		parts = append(parts, fmt.Sprintf("%d=%d", t.Revision, t.Weight))
	}
	return strings.Join(parts, ",")
}

// getVersion sends one GET through the router with host and headers and
// returns the version that answered.
func (p *platform) getVersion(host string, header ...string) (string, int, error) {
	req, _ := http.NewRequest("GET", "http://"+p.router+"/", nil)
	req.Host = host
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	return resp.Header.Get("X-Version"), resp.StatusCode, nil
}

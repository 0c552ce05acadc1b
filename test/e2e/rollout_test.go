package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// versionLoad is like load but accepts answers from v1 or v2, counts them
// per version, and measures the longest gap between two answers.
type versionLoad struct {
	v1, v2, failed  atomic.Int64
	mu              sync.Mutex
	errs            []string
	lastOK          time.Time
	lastV1, firstV2 time.Time
	// mark, once set, is a time after which v1 must not answer a request
	// sent; v1AfterMark counts those it answered.
	mark        time.Time
	v1AfterMark int
	maxGap      time.Duration
	stop        chan struct{}
	wg          sync.WaitGroup
}

func startVersionLoad(url string, clients, fresh int) *versionLoad {
	l := &versionLoad{stop: make(chan struct{}), lastOK: time.Now()}
	drive(url, "", clients, fresh, l.stop, &l.wg, func(resp *http.Response, body []byte, err error) {
		switch {
		case err != nil:
			l.fail(err.Error())
		case resp.StatusCode != 200:
			l.fail(fmt.Sprintf("status %d body %q", resp.StatusCode, body))
		case strings.HasPrefix(string(body), "hello from v1"):
			l.answered(&l.v1)
			l.mu.Lock()
			if !l.mark.IsZero() && requestStart(resp).After(l.mark) {
				l.v1AfterMark++
			}
			l.mu.Unlock()
		case strings.HasPrefix(string(body), "hello from v2"):
			l.answered(&l.v2)
		default:
			l.fail(fmt.Sprintf("unexpected body %q", body))
		}
	})
	return l
}

func (l *versionLoad) answered(n *atomic.Int64) {
	n.Add(1)
	now := time.Now()
	l.mu.Lock()
	if n == &l.v1 {
		l.lastV1 = now
	} else if l.firstV2.IsZero() {
		l.firstV2 = now
	}
	l.maxGap = max(l.maxGap, now.Sub(l.lastOK))
	l.lastOK = now
	l.mu.Unlock()
}

func (l *versionLoad) fail(msg string) {
	l.failed.Add(1)
	l.mu.Lock()
	if len(l.errs) < 10 {
		l.errs = append(l.errs, msg)
	}
	l.mu.Unlock()
	// Keep failing clients from spinning while no pod answers (Recreate).
	select {
	case <-l.stop:
	case <-time.After(5 * time.Millisecond):
	}
}

func (l *versionLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("load: %d answers from v1, %d from v2, %d failed; longest gap without an answer %v", l.v1.Load(), l.v2.Load(), l.failed.Load(), l.maxGap)
}

// rolloutManifest is the sample app with 3 replicas, the given strategy
// block and VERSION.
func rolloutManifest(strategy, version string) string {
	m := strings.Replace(helloManifest(3, 30), "  replicas: 3\n", "  replicas: 3\n  strategy:\n"+strategy, 1)
	return strings.Replace(m, "value: v1}", "value: "+version+"}", 1)
}

// waitRolledOut waits until the App is Healthy on revision rev with 3
// ready pods, and only pods of that revision exist.
func (p *platform) waitRolledOut(rev int64, d time.Duration) {
	p.t.Helper()
	waitUntil(p.t, d, fmt.Sprintf("app hello is Healthy on revision %d with 3 ready pods and no others", rev), func() bool {
		var a struct {
			Status struct {
				Phase                          string
				LatestRevision, StableRevision int64
				Replicas, ReadyReplicas        int
			}
		}
		if json.Unmarshal([]byte(p.ok("get", "app", "hello", "-o", "json")), &a) != nil {
			return false
		}
		s := a.Status
		if s.Phase != "Healthy" || s.LatestRevision != rev || s.StableRevision != rev || s.Replicas != 3 || s.ReadyReplicas != 3 {
			return false
		}
		var pods struct {
			Items []struct {
				Metadata struct{ Labels map[string]string }
			}
		}
		if json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods) != nil || len(pods.Items) != 3 {
			return false
		}
		for _, it := range pods.Items {
			if it.Metadata.Labels["revision"] != fmt.Sprint(rev) {
				return false
			}
		}
		return true
	})
}

// TestRollingRolloutLosesNoRequest rolls the sample app from v1 to v2 with
// maxSurge 1 / maxUnavailable 0 under load through its service: no request
// fails, and v2 answers alone at the end.
func TestRollingRolloutLosesNoRequest(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	strategy := "    type: Rolling\n    rolling: {maxSurge: 1, maxUnavailable: 0}\n"
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", rolloutManifest(strategy, "v1")))
	p.waitRolledOut(1, 60*time.Second)
	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 32, 4)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.v1.Load() > 100 })

	v1Addrs := p.podAddrs("app=hello")
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", rolloutManifest(strategy, "v2")))
	p.waitRolledOut(2, 120*time.Second)
	// Once no v1 process listens any more, requests v1 accepted before may
	// have been answered on the way out, but no request sent from then on
	// may reach v1.
	waitUntil(t, 60*time.Second, "v1's pods stop listening", func() bool {
		for _, a := range v1Addrs {
			if answersV1(a) {
				return false
			}
		}
		return true
	})
	l.mu.Lock()
	l.mark = time.Now()
	l.mu.Unlock()
	v2 := l.v2.Load()
	waitUntil(t, 10*time.Second, "v2 goes on answering", func() bool { return l.v2.Load() > v2+400 })
	l.end(t)
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed during the rolling rollout; first errors: %q", n, l.errs)
	}
	if l.v1AfterMark != 0 {
		t.Errorf("v1 answered %d requests sent after its pods were gone", l.v1AfterMark)
	}
}

// TestRecreateRolloutHasAGap rolls the sample app from v1 to v2 with
// Recreate under load: by design no pod answers for a while; the rollout
// completes on v2 and the gap is logged.
func TestRecreateRolloutHasAGap(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	strategy := "    type: Recreate\n"
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", rolloutManifest(strategy, "v1")))
	p.waitRolledOut(1, 60*time.Second)
	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 32, 4)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.v1.Load() > 100 })

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", rolloutManifest(strategy, "v2")))
	p.waitRolledOut(2, 120*time.Second)
	v2 := l.v2.Load()
	waitUntil(t, 10*time.Second, "v2 answers after the rollout", func() bool { return l.v2.Load() > v2+200 })
	l.end(t)
	t.Logf("Recreate: longest time without an answer %v (downtime by design), %d failed requests; last v1 answer %v before the first v2 one",
		l.maxGap, l.failed.Load(), l.firstV2.Sub(l.lastV1))
}

// TestRollingRolloutWaitsMinReadySeconds: with minReadySeconds 2 and
// maxSurge 1 / maxUnavailable 0, each of the 3 new pods must have been
// ready for 2s before an old one goes or the rollout completes, so the
// rollout takes at least 6s; no request fails.
func TestRollingRolloutWaitsMinReadySeconds(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	strategy := "    type: Rolling\n    rolling: {maxSurge: 1, maxUnavailable: 0, minReadySeconds: 2}\n"
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", rolloutManifest(strategy, "v1")))
	p.waitRolledOut(1, 60*time.Second)
	ip := p.serviceIP("hello")
	l := startVersionLoad("http://"+ip+":80/", 8, 2)
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { return l.v1.Load() > 100 })

	start := time.Now()
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", rolloutManifest(strategy, "v2")))
	p.waitRolledOut(2, 120*time.Second)
	took := time.Since(start)
	l.end(t)
	t.Logf("rollout took %v", took)
	if took < 6*time.Second {
		t.Errorf("rollout took %v: 3 pods each ready for minReadySeconds 2 one after another need at least 6s", took)
	}
	if n := l.failed.Load(); n != 0 {
		t.Errorf("%d requests failed; first errors: %q", n, l.errs)
	}
}

// podAddrs returns the address (pod IP and first container port) of each
// pod the selector matches.
func (p *platform) podAddrs(selector string) []string {
	p.t.Helper()
	var pods struct {
		Items []struct {
			Spec struct {
				Containers []struct {
					Ports []struct{ Port int }
				}
			}
			Status struct{ PodIP string }
		}
	}
	if err := json.Unmarshal([]byte(p.ok("get", "pods", "-l", selector, "-o", "json")), &pods); err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, it := range pods.Items {
		if it.Status.PodIP == "" || len(it.Spec.Containers) == 0 || len(it.Spec.Containers[0].Ports) == 0 {
			p.t.Fatalf("pod without an address: %+v", it)
		}
		out = append(out, net.JoinHostPort(it.Status.PodIP, strconv.Itoa(it.Spec.Containers[0].Ports[0].Port)))
	}
	return out
}

// answersV1 reports whether a v1 process answers at addr (a v2 pod may
// have been given the address since).
func answersV1(addr string) bool {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return strings.HasPrefix(string(body), "hello from v1")
}

package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRecreateReportStatesItsGap: a Recreate rollout under load through the
// router has a gap by design; its report states how long no pod was
// ready, which the clients see as the longest time without an answer, and
// counts exactly the requests that failed meanwhile (the router's 503s).
func TestRecreateReportStatesItsGap(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	strategy := "    type: Recreate\n"
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", deployManifest(strategy, "v1", "{name: START_DELAY, value: 1s}", "hello.test")))
	p.waitRolledOut(1, 60*time.Second)

	var mu sync.Mutex
	lastOK, gap := time.Now(), time.Duration(0)
	var answered, failed int
	stop := make(chan struct{})
	var wg sync.WaitGroup
	drive("http://"+p.router+"/", "hello.test", 16, 1, stop, &wg, func(resp *http.Response, body []byte, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if err == nil && resp.StatusCode == 200 && strings.HasPrefix(string(body), "hello from") {
			gap = max(gap, now.Sub(lastOK))
			lastOK = now
			answered++
			return
		}
		failed++
		mu.Unlock()
		select { // no pod: do not spin
		case <-stop:
		case <-time.After(5 * time.Millisecond):
		}
		mu.Lock()
	})
	waitUntil(t, 10*time.Second, "traffic flows", func() bool { mu.Lock(); defer mu.Unlock(); return answered > 200 })
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy, "v2", "{name: START_DELAY, value: 1s}", "hello.test")))
	p.waitRolledOut(2, 120*time.Second)
	waitUntil(t, 30*time.Second, "the report is final", func() bool {
		r := p.app("hello").Status.Rollout.Report
		return r != nil && r.Final
	})
	close(stop)
	wg.Wait()
	r := p.app("hello").Status.Rollout.Report
	reported := time.Duration(r.LongestNoReadyMillis) * time.Millisecond
	t.Logf("Recreate: report says %v without a ready pod, %d requests answered 503 for want of one, %d failed in all; the clients saw %v without an answer and %d failures", reported, r.NoReadyPod, r.Failed, gap, failed)
	// START_DELAY 1s: the new pods cannot be ready in less than a second
	// after the old ones left.
	if reported < time.Second || reported > gap+time.Second || gap > reported+3*time.Second {
		t.Errorf("report: %v without a ready pod; the clients saw %v without an answer", reported, gap)
	}
	if r.NoReadyPod == 0 || r.NoReadyPod > r.Failed || r.Failed != int64(failed) || r.DurationMillis < r.LongestNoReadyMillis {
		t.Errorf("report %+v: want the %d failed requests the clients counted (503s for want of a ready pod), and a rollout lasting at least the gap", r, failed)
	}
	if out := p.ok("rollout", "status", "app/hello", "--watch=false"); !strings.Contains(out, "longest time without a ready pod") {
		t.Errorf("rollout status lacks the report:\n%s", out)
	}
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCanaryOfFailingVersionAbortsByItself: v2 fails 30% of its requests
// (FAIL_RATE). The canary gets 20% of the traffic; the background analysis
// (successRate min 0.95 every 2s over at least 50 requests) fails and the
// rollout aborts by itself: all traffic back to v1, v2 scaled down, the
// app Degraded with the measured value and the threshold. Under load
// through the router, clients see failures only from v2, and none once
// the abort is applied; the zero-downtime report counts exactly the
// failures the clients saw.
func TestCanaryOfFailingVersionAbortsByItself(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	strategy := `    type: Canary
    canary:
      steps: [{setWeight: 20}, {pause: {}}]
      analysis:
        interval: 2s
        minRequests: 50
        metrics: [{name: success, type: successRate, min: 0.95}]
`
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", deployManifest(strategy, "v1", "", "hello.test")))
	p.waitRolledOut(1, 60*time.Second)
	l := startRouteLoad(p, "hello.test", 64, 1)
	defer func() {
		if l != nil {
			l.end(t)
		}
	}()
	l.after(t, 500)

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy, "v2", "{name: FAIL_RATE, value: '0.3'}", "hello.test")))
	waitUntil(t, 60*time.Second, "the canary gets traffic", func() bool { ok, failed := l.counts(); return ok["v2"]+failed["v2"] > 0 })
	waitUntil(t, 60*time.Second, "the rollout aborts by itself", func() bool { return p.app("hello").Status.Phase == "Degraded" })
	a := p.app("hello")
	if a.traffic() != "1=100" || a.Status.Rollout.Reason != "AnalysisFailed" ||
		!strings.Contains(a.Status.Message, "metric success: successRate 0.") || !strings.Contains(a.Status.Message, "< min 0.95 over") {
		t.Fatalf("after the abort: traffic %s rollout %+v message %q", a.traffic(), a.Status.Rollout, a.Status.Message)
	}
	// Requests the canary accepted before the abort was applied may still
	// be answered; after that, only v1 answers and nothing fails.
	l.after(t, 500)
	ok1, failed1 := l.counts()
	l.after(t, 3000)
	ok2, failed2 := l.counts()
	if ok2["v2"] != ok1["v2"] || failed2["v2"] != failed1["v2"] {
		t.Errorf("v2 answered after the abort: %d ok, %d failed", ok2["v2"]-ok1["v2"], failed2["v2"]-failed1["v2"])
	}
	for v, n := range failed2 {
		if v != "v2" && n > 0 {
			t.Errorf("%d failures from %q (only the canary may fail): %q", n, v, l.errs)
		}
	}
	served := ok2["v2"] + failed2["v2"]
	if share := float64(failed2["v2"]) / float64(served); served < 50 || share < 0.1 || share > 0.5 {
		t.Errorf("the canary answered %d requests, %d failed (%.2f): want at least 50 (minRequests) and about 30%% failed", served, failed2["v2"], share)
	}
	waitUntil(t, 60*time.Second, "the canary's pods are gone and the report is final", func() bool {
		r := p.app("hello").Status.Rollout.Report
		return r != nil && r.Final
	})
	l.end(t)
	l = nil
	_, failed := l2counts(ok2, failed2)
	r := p.app("hello").Status.Rollout.Report
	if r.Failed != failed || r.LongestNoReadyMillis != 0 || !r.Measured {
		t.Errorf("report %+v: want %d failed (as the clients counted), no gap", r, failed)
	}
	var v2 int64
	for _, rr := range r.Revisions {
		if rr.Revision == 2 {
			v2 = rr.Requests
		}
	}
	if v2 != served {
		t.Errorf("report: revision 2 served %d requests, the clients counted %d", v2, served)
	}
	res := p.run("", "rollout", "status", "app/hello", "--watch=false")
	if res.code != 1 || !strings.Contains(res.stdout, "is Degraded") || !strings.Contains(res.stdout, "analysis background: Failed") {
		t.Errorf("rollout status: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	// Retry moves forward again (and the canary fails again).
	if out := p.ok("rollout", "retry", "app/hello"); !strings.Contains(out, "rollout retry done") {
		t.Errorf("retry: %q", out)
	}
	waitUntil(t, 60*time.Second, "the rollout is retried", func() bool {
		return strings.Contains(p.ok("describe", "app", "hello"), "RolloutRetried")
	})
}

func l2counts(ok, failed map[string]int64) (int64, int64) {
	var o, f int64
	for _, n := range ok {
		o += n
	}
	for _, n := range failed {
		f += n
	}
	return o, f
}

// TestCanaryResumesAfterKillNine: a canary paused at 20% sends the clients
// its match rule picks (header X-Beta: 1) to v2 whatever the weight; kill
// -9 of `slipway up` then; the restarted platform adopts the same pods, resumes the
// rollout where its status says it was (same step and weight, no new
// revision), and a promote completes it on v2 without a failed request
// through the router.
func TestCanaryResumesAfterKillNine(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home)
	dir := t.TempDir()
	strategy := "    type: Canary\n    canary:\n      match: [{header: {name: X-Beta, value: \"1\"}}]\n      steps: [{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {duration: 2s}}]\n"
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", deployManifest(strategy, "v1", "", "hello.test")))
	p.waitRolledOut(1, 60*time.Second)
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy, "v2", "", "hello.test")))
	waitUntil(t, 60*time.Second, "the canary is paused at 20%", func() bool {
		a := p.app("hello")
		return a.Status.Phase == "Paused" && a.traffic() == "1=80,2=20"
	})
	// The canary's match rule (and the preview header) reach v2 whatever
	// the weight.
	for i := range 20 {
		v, code, err := p.getVersion("hello.test", "X-Beta", "1")
		v2, code2, err2 := p.getVersion("hello.test", "X-Slipway-Revision", "preview")
		if err != nil || err2 != nil || code != 200 || code2 != 200 || v != "v2" || v2 != "v2" {
			t.Fatalf("request %d with X-Beta: 1 got %s %d %v; with the preview header %s %d %v; want v2", i, v, code, err, v2, code2, err2)
		}
	}
	before := podPIDs(t, p)
	p.kill()

	p2 := startPlatform(t, home)
	after := podPIDs(t, p2)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("pods after kill -9 and restart: %v, before: %v", after, before)
	}
	a := p2.app("hello")
	if a.Status.Phase != "Paused" || a.traffic() != "1=80,2=20" || a.Status.LatestRevision != 2 || a.Status.Rollout.Revision != 2 {
		t.Fatalf("after the restart: phase %s traffic %s latest %d rollout %+v", a.Status.Phase, a.traffic(), a.Status.LatestRevision, a.Status.Rollout)
	}
	l := startRouteLoad(p2, "hello.test", 64, 1)
	defer l.end(t)
	l.after(t, 500)
	if out := p2.ok("rollout", "promote", "app/hello"); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	if out := p2.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 2") {
		t.Fatalf("rollout status: %q", out)
	}
	l.after(t, 500)
	ok, failed := l.counts()
	if len(failed) != 0 || ok["v2"] == 0 {
		t.Errorf("answers %v failures %v (%q): want v2 answering and nothing failed", ok, failed, l.errs)
	}
	if a := p2.app("hello"); a.traffic() != "2=100" || a.Status.StableRevision != 2 {
		t.Errorf("final: traffic %s stable %d", a.traffic(), a.Status.StableRevision)
	}
}

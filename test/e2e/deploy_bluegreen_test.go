package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestBlueGreenPromoteThenRollback: under load through the router (64
// keep-alive clients and one opening a connection per request), a
// BlueGreen rollout brings v2 up beside v1, which keeps every request
// while the preview host and the preview header reach v2; promote flips
// all traffic to v2 at once, and rollback flips it back to the still-warm
// v1. No request fails.
func TestBlueGreenPromoteThenRollback(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	strategy := "    type: BlueGreen\n    blueGreen: {previewHost: preview.hello.test, scaleDownDelaySeconds: 120}\n"
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", deployManifest(strategy, "v1", "", "hello.test")))
	p.waitRolledOut(1, 60*time.Second)
	l := startRouteLoad(p, "hello.test", 64, 1)
	defer func() {
		if l != nil {
			l.end(t)
		}
	}()
	l.after(t, 500)

	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy, "v2", "", "hello.test")))
	waitUntil(t, 60*time.Second, "v2 is ready on the preview, waiting for promotion", func() bool {
		a := p.app("hello")
		return a.Status.Phase == "Paused" && a.Status.PreviewRevision == 2
	})
	waitUntil(t, 10*time.Second, "the preview host and header reach v2", func() bool {
		v1, c1, err1 := p.getVersion("preview.hello.test")
		v2, c2, err2 := p.getVersion("hello.test", "X-Slipway-Revision", "preview")
		return err1 == nil && err2 == nil && c1 == 200 && c2 == 200 && v1 == "v2" && v2 == "v2"
	})
	l.after(t, 500)
	if ok, failed := l.counts(); ok["v2"] != 0 || len(failed) != 0 {
		t.Fatalf("before promotion: answers %v failures %v (%q); want v1 only", ok, failed, l.errs)
	}
	if out := p.ok("describe", "app", "hello"); !strings.Contains(out, "preview: revision 2 (header X-Slipway-Revision: preview, host preview.hello.test)") {
		t.Errorf("describe app lacks the preview:\n%s", out)
	}
	// Waiting for a person: rollout status says who continues it and exits 2
	// (it used to block until someone promoted).
	if r := p.run("", "rollout", "status", "app/hello", "--timeout", "30s"); r.code != 2 || !strings.Contains(r.stderr, "slipway rollout promote app/hello continues it") {
		t.Errorf("rollout status before promotion: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	start := time.Now()
	if out := p.ok("rollout", "promote", "app/hello"); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	acked := time.Since(start)
	waitUntil(t, 10*time.Second, "v2 answers", func() bool { ok, _ := l.counts(); return ok["v2"] > 0 })
	t.Logf("promotion: acknowledged after %v, first v2 answer %v after the command started", acked, l.firstV2Since(start))
	l.after(t, 300) // requests v1 accepted before the flip may still finish
	ok1, _ := l.counts()
	l.after(t, 1000)
	if ok, failed := l.counts(); ok["v1"] != ok1["v1"] || len(failed) != 0 {
		t.Fatalf("after promotion: v1 answered %d more; failures %v (%q)", ok["v1"]-ok1["v1"], failed, l.errs)
	}
	a := p.app("hello")
	if a.Status.StableRevision != 2 || a.traffic() != "2=100" || a.Status.Phase != "Healthy" {
		t.Fatalf("after promotion: stable %d traffic %s phase %s", a.Status.StableRevision, a.traffic(), a.Status.Phase)
	}

	// Rollback within scaleDownDelaySeconds: v1's pods are still up.
	if out := p.ok("rollout", "rollback", "app/hello"); !strings.Contains(out, "rollout rollback done") {
		t.Fatalf("rollback: %q", out)
	}
	waitUntil(t, 10*time.Second, "v1 answers again", func() bool {
		ok, _ := l.counts()
		return ok["v1"] > ok1["v1"]
	})
	l.after(t, 300)
	ok2, _ := l.counts()
	l.after(t, 1000)
	if ok, failed := l.counts(); ok["v2"] != ok2["v2"] || len(failed) != 0 {
		t.Fatalf("after rollback: v2 answered %d more; failures %v (%q)", ok["v2"]-ok2["v2"], failed, l.errs)
	}
	l.end(t)
	l = nil
	a = p.app("hello")
	if a.Status.StableRevision != 1 || a.traffic() != "1=100" || a.Status.Rollout.State != "RolledBack" || a.Status.LatestRevision != 2 {
		t.Fatalf("after rollback: stable %d traffic %s rollout %+v", a.Status.StableRevision, a.traffic(), a.Status.Rollout)
	}
	if r := p.run("", "rollout", "status", "app/hello", "--watch=false"); r.code != 1 || !strings.Contains(r.stdout, "rolled back to revision 1") {
		t.Errorf("rollout status after rollback: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// get apps shows the revision that serves and a phase that says so.
	if f := strings.Fields(strings.Split(p.ok("get", "app", "hello", "--no-headers"), "\n")[0]); len(f) < 7 || f[4] != "1" || f[6] != "RolledBack" {
		t.Errorf("get app after rollback: %q; want REVISION 1 and PHASE RolledBack", f)
	}
	// The same template applied again does not undo the rollback.
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy, "v2", "", "hello.test")))
	if a := p.app("hello"); a.Status.LatestRevision != 2 || a.traffic() != "1=100" {
		t.Errorf("re-apply after rollback: latest %d traffic %s", a.Status.LatestRevision, a.traffic())
	}
}

func (l *routeLoad) firstV2Since(t time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.firstV2.Sub(t)
}

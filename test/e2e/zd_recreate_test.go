package e2e

import (
	"time"
)

// zdRecreate rolls with Recreate under load: downtime by design. The
// clients measure the longest time without an answer and count the
// failures; the rollout's report must state both.
func zdRecreate(p *platform) {
	t := p.t
	s := zdSpec{name: "recreate", replicas: 3, grace: 30, env: map[string]string{}, strategy: "    type: Recreate\n"}
	p.zdApply(s, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	p.zdServing(s.host(), "v1")
	l := startZDLoad(p, s.host(), "v1", "v2")
	l.tolerate = true
	l.waitMore(t, "v1", 200)
	before := l.snapshot()
	p.zdApply(s, "v2")
	w := p.zdWatch(l, s.name, 2, s.replicas, 180*time.Second)
	w.before = before
	l.settled(t, "v2")
	rep := p.zdCheckReport(l, s.name, 2, w, map[int64]string{1: "v1", 2: "v2"})
	c := l.end(t)
	gap := c.maxGap
	t.Logf("Recreate: longest time without an answer %v, %d failed requests (downtime by design)", gap.Round(time.Millisecond), c.failed)
	if rep != nil {
		noReady := time.Duration(rep.LongestNoReadyMillis) * time.Millisecond
		t.Logf("Recreate report: no ready pod for %v (clients: no answer for %v)", noReady, gap.Round(time.Millisecond))
		if noReady <= 0 {
			t.Errorf("the report of a Recreate rollout states no gap (longestNoReadyMillis %d)", rep.LongestNoReadyMillis)
		}
		// Both measure the same hole from two sides: the controller's view
		// of readiness, and the clients' view of answers, which a stalled
		// machine stretches (a client not scheduled waits too). So the
		// clients' gap bounds the report's from above, give or take the
		// propagation between them; it is no lower bound.
		if tol := 500 * time.Millisecond; noReady > gap+tol {
			t.Errorf("report gap %v, longer than the clients' %v by more than %v", noReady, gap, tol)
		}
	}
	p.zdDelete(s.name)
}

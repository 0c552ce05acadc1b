package e2e

import (
	"fmt"
	"testing"
	"time"
)

// in returns the platform for use by subtest t: helpers fail t, not the
// test that started the platform.
func (p *platform) in(t *testing.T) *platform {
	c := *p
	c.t = t
	return &c
}

// rollStep is one rollout of a scenario: to revision rev, from one
// version to the next.
type rollStep struct {
	rev     int64
	from    string // version answering before
	to      string // version answering after
	trigger func() // starts the rollout
}

// zdRoll runs step under the load l and checks what the suite promises:
// no failed request (l fails the test at its end), only the new version
// answering once done, and the rollout's report agreeing with the clients.
func (p *platform) zdRoll(l *zdLoad, s zdSpec, step rollStep) {
	p.t.Helper()
	l.allow(step.to)
	before := l.snapshot()
	step.trigger()
	w := p.zdWatch(l, s.name, step.rev, s.replicas, 180*time.Second)
	w.before = before
	l.settled(p.t, step.to)
	p.zdCheckReport(l, s.name, step.rev, w, map[int64]string{step.rev - 1: step.from, step.rev: step.to})
}

// zdWatched are the load's counters around a rollout: before it was
// triggered, when it was first seen started, last seen running, first seen
// completed, and when its pods were all of the new revision.
type zdWatched struct {
	before, started, running, completed, done zdCounted
}

// zdWatch polls until the App rolled out rev with n pods.
func (p *platform) zdWatch(l *zdLoad, name string, rev int64, n int, d time.Duration) zdWatched {
	p.t.Helper()
	var w zdWatched
	deadline := time.Now().Add(d)
	seen, completed := false, false
	for {
		snap := l.snapshot()
		a, err := p.zdAppStatus(name)
		if err == nil && !seen && (a.Status.LatestRevision >= rev || a.Status.Rollout != nil && a.Status.Rollout.Revision >= rev) {
			seen, w.started = true, snap
		}
		ro := a.Status.Rollout
		if seen && !completed && ro != nil && ro.Revision == rev && ro.State == "Completed" {
			completed, w.completed = true, snap
		}
		if seen && p.zdRolledOut(name, rev, n) {
			w.done = l.snapshot()
			if !completed { // no rollout record: the pods say when it ended
				w.completed = w.done
			}
			return w
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("app %s not rolled out to revision %d with %d pods after %v; status %+v", name, rev, n, d, a.Status)
		}
		if !completed {
			w.running = snap
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// zdSlack bounds the requests in flight at a snapshot: one per client.
const zdSlack = 2 * (zdClients + 1)

// zdCheckReport checks the zero-downtime report of the rollout to rev
// against what the clients counted: as many failed requests, and each
// revision's requests within what the clients counted between the
// rollout's bounds. versions maps revisions to the VERSION they run.
// Failed requests must match too. Before the strategies' state machine existed the App had no
// rollout record; then there is nothing to check.
func (p *platform) zdCheckReport(l *zdLoad, name string, rev int64, w zdWatched, versions map[int64]string) *zdReport {
	p.t.Helper()
	// The report is final once the revisions the rollout left have no
	// pod: no request can reach them any more.
	var a zdApp
	waitUntil(p.t, 60*time.Second, "the rollout's final report", func() bool {
		var err error
		a, err = p.zdAppStatus(name)
		return err == nil && (a.Status.Rollout == nil || a.Status.Rollout.Report != nil && a.Status.Rollout.Report.Final)
	})
	final := l.snapshot()
	ro := a.Status.Rollout
	if ro == nil {
		p.t.Logf("app %s has no rollout record: no report to check", name)
		return nil
	}
	rep := ro.Report
	if ro.Revision != rev || !rep.Measured {
		p.t.Fatalf("rollout record %+v (report %+v), want a measured report of revision %d", *ro, *rep, rev)
	}
	p.t.Logf("report: %+v", *rep)
	// Failed requests: every one in report.failed, those that were the
	// router's own 503s for want of a ready pod (Recreate's gap) also in
	// report.noReadyPod; the clients tell them apart by the router's
	// message.
	for _, c := range []struct {
		what   string
		report int64
		count  func(zdCounted) int64
	}{
		{"failed requests", rep.Failed, func(c zdCounted) int64 { return c.failed }},
		{"503s for want of a ready pod", rep.NoReadyPod, func(c zdCounted) int64 { return c.noReady }},
	} {
		hi, lo := c.count(final)-c.count(w.before)+zdSlack, c.count(w.running)-c.count(w.started)-zdSlack
		if c.report > hi || c.report < lo || (c.count(final) == c.count(w.before) && c.report != 0) {
			p.t.Errorf("report counts %d %s; the clients saw between %d and %d", c.report, c.what, max(lo, 0), c.count(final)-c.count(w.before))
		}
	}
	got := map[int64]int64{}
	for _, r := range rep.Revisions {
		got[r.Revision] = r.Requests
		if _, ok := versions[r.Revision]; !ok && r.Requests > 0 {
			p.t.Errorf("report counts %d requests of revision %d, which the clients never reached", r.Requests, r.Revision)
		}
	}
	for r, v := range versions {
		hi := final.versions[v] - w.before.versions[v] + zdSlack
		lo := w.running.versions[v] - w.started.versions[v] - zdSlack
		if got[r] > hi || got[r] < lo {
			p.t.Errorf("report: revision %d (%s) served %d requests; the clients counted between %d and %d (the router's own counter says %d since it started, the clients %d since theirs did)",
				r, v, got[r], lo, hi, p.zdRouterCount(name, r), final.versions[v])
		}
	}
	// The controller stamps a decision with the time its reconcile began,
	// which can be a little before it read what it decided on, or before
	// it wrote the result: allow for one slow reconcile on a loaded machine.
	const skew = 500 * time.Millisecond
	outer := w.completed.at.Sub(w.before.at)
	// A rollout faster than the poll was never seen running: no lower
	// bound then (and no overflow of a zero time's difference).
	var inner time.Duration
	if !w.running.at.IsZero() {
		inner = w.running.at.Sub(w.started.at)
	}
	if d := time.Duration(rep.DurationMillis) * time.Millisecond; d > outer+skew || d < inner-skew {
		p.t.Errorf("report: the rollout took %v; the clients saw it between %v and %v (± %v)", d, inner, outer, skew)
	}
	return rep
}

// zdRollingCase is one Rolling scenario.
type zdRollingCase struct {
	name              string
	replicas          int
	maxSurge, maxUnav string
	onSigterm         string
	grace             int
}

func (c zdRollingCase) spec() zdSpec {
	env := map[string]string{}
	if c.onSigterm != "" {
		env["ON_SIGTERM"] = c.onSigterm
	}
	return zdSpec{
		name: c.name, replicas: c.replicas, grace: c.grace, env: env,
		strategy: fmt.Sprintf("    type: Rolling\n    rolling: {maxSurge: %s, maxUnavailable: %s}\n", c.maxSurge, c.maxUnav),
	}
}

// TestZeroDowntime runs the suite's scenarios on one platform, one App
// each, through the router.
func TestZeroDowntime(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	for _, c := range []zdRollingCase{
		{name: "surge1-r1", replicas: 1, maxSurge: "1", maxUnav: "0", grace: 30},
		{name: "surge1-r3", replicas: 3, maxSurge: "1", maxUnav: "0", grace: 30},
		{name: "surge1-r10", replicas: 10, maxSurge: "1", maxUnav: "0", grace: 30},
		{name: "pct25-r1", replicas: 1, maxSurge: "25%", maxUnav: "25%", grace: 30},
		{name: "pct25-r3", replicas: 3, maxSurge: "25%", maxUnav: "25%", grace: 30},
		{name: "pct25-r10", replicas: 10, maxSurge: "25%", maxUnav: "25%", grace: 30},
		// The app leaves at once on SIGTERM: it was drained first.
		{name: "sigterm-exit", replicas: 3, maxSurge: "1", maxUnav: "0", onSigterm: "exit", grace: 30},
		// The app ignores SIGTERM: SIGKILL after the grace period, drained first.
		{name: "sigterm-ignore", replicas: 3, maxSurge: "1", maxUnav: "0", onSigterm: "ignore", grace: 2},
	} {
		t.Run("rolling/"+c.name, func(t *testing.T) {
			p := p.in(t)
			s := c.spec()
			p.zdApply(s, "v1")
			waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
			p.zdServing(s.host(), "v1")
			l := startZDLoad(p, s.host(), "v1")
			l.waitMore(t, "v1", 200)
			p.zdRoll(l, s, rollStep{rev: 2, from: "v1", to: "v2", trigger: func() { p.zdApply(s, "v2") }})
			l.end(t)
			p.zdDelete(s.name)
		})
	}
	t.Run("undo", func(t *testing.T) { zdUndo(p.in(t)) })
	t.Run("back-to-back", func(t *testing.T) { zdBackToBack(p.in(t)) })
	t.Run("ab", func(t *testing.T) { zdAB(p.in(t)) })
	t.Run("recreate", func(t *testing.T) { zdRecreate(p.in(t)) })
	t.Run("canary", func(t *testing.T) { zdCanary(p.in(t)) })
}

// zdDelete removes a scenario's App, Service and Route, so that the next
// scenarios run on a quieter machine.
func (p *platform) zdDelete(name string) {
	p.t.Helper()
	for _, kind := range []string{"route", "service", "app"} {
		p.ok("delete", kind, name)
	}
}

// zdUndo: v1, then v2, then `rollout undo` back to v1's template as
// revision 3, under load.
func zdUndo(p *platform) {
	t := p.t
	s := zdSpec{name: "undo", replicas: 3, grace: 30, env: map[string]string{},
		strategy: "    type: Rolling\n    rolling: {maxSurge: 1, maxUnavailable: 0}\n"}
	p.zdApply(s, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	p.zdServing(s.host(), "v1")
	l := startZDLoad(p, s.host(), "v1")
	l.waitMore(t, "v1", 200)
	p.zdRoll(l, s, rollStep{rev: 2, from: "v1", to: "v2", trigger: func() { p.ok("set", "env", "app/"+s.name, "VERSION=v2") }})
	p.zdRoll(l, s, rollStep{rev: 3, from: "v2", to: "v1", trigger: func() { p.ok("rollout", "undo", "app/"+s.name) }})
	l.end(t)
	p.zdDelete(s.name)
}

// zdBackToBack: five rollouts, each started as soon as the previous one
// ended, under one load.
func zdBackToBack(p *platform) {
	t := p.t
	s := zdSpec{name: "b2b", replicas: 3, grace: 30, env: map[string]string{},
		strategy: "    type: Rolling\n    rolling: {maxSurge: 1, maxUnavailable: 0}\n"}
	p.zdApply(s, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	p.zdServing(s.host(), "v1")
	l := startZDLoad(p, s.host(), "v1")
	l.waitMore(t, "v1", 200)
	for i := 2; i <= 6; i++ {
		from, to := fmt.Sprintf("v%d", i-1), fmt.Sprintf("v%d", i)
		p.zdRoll(l, s, rollStep{rev: int64(i), from: from, to: to, trigger: func() { p.ok("set", "env", "app/"+s.name, "VERSION="+to) }})
	}
	l.end(t)
	p.zdDelete(s.name)
}

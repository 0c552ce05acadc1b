package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func zdTraffic(a zdApp) string {
	var parts []string
	for _, t := range a.Status.Traffic {
		parts = append(parts, fmt.Sprintf("%d=%d", t.Revision, t.Weight))
	}
	return strings.Join(parts, ",")
}

// zdWaitTraffic waits until the App's split is want ("1=90,2=10").
func (p *platform) zdWaitTraffic(name, want string, d time.Duration) zdApp {
	p.t.Helper()
	var a zdApp
	waitUntil(p.t, d, fmt.Sprintf("app %s splits its traffic %s", name, want), func() bool {
		var err error
		a, err = p.zdAppStatus(name)
		return err == nil && zdTraffic(a) == want
	})
	return a
}

// share measures version's share of the next n answers, in percent.
func (l *zdLoad) share(t *testing.T, version string, n int64) float64 {
	t.Helper()
	from := l.snapshot()
	waitUntil(t, 60*time.Second, fmt.Sprintf("%d answers", n), func() bool { return l.snapshot().total() >= from.total()+n })
	to := l.snapshot()
	return float64(to.versions[version]-from.versions[version]) * 100 / float64(to.total()-from.total())
}

// zdCanary: a Canary 10 → 50 → 100 with pauses until promoted and a
// timed pause, under load through the route: the measured split follows
// each weight, no request fails, v2 answers alone at the end, and the
// report agrees with the clients. The splits are measured while the
// rollout holds (a pause without duration), however slow a loaded machine
// makes the clients.
func zdCanary(p *platform) {
	t := p.t
	s := zdSpec{name: "canary", replicas: 4, grace: 30, env: map[string]string{},
		strategy: "    type: Canary\n    canary:\n      steps: [{setWeight: 10}, {pause: {}}, {setWeight: 50}, {pause: {duration: 2s}}, {pause: {}}, {setWeight: 100}]\n"}
	p.zdApply(s, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	p.zdServing(s.host(), "v1")
	l := startZDLoad(p, s.host(), "v1", "v2")
	l.waitMore(t, "v1", 200)
	before := l.snapshot()
	p.zdApply(s, "v2")

	p.zdWaitPause(s.name, 1, "1=90,2=10")
	l.waitMore(t, "v2", 10) // the router applies the split a moment after the status says it
	got := l.share(t, "v2", 1000)
	t.Logf("canary at 10%%: v2 answered %.1f%% of 1000", got)
	// Binomial(1000, 0.1): 4 points is more than 4 standard deviations.
	if got < 6 || got > 14 {
		t.Errorf("at setWeight 10, v2 answered %.1f%%, want 10 ± 4", got)
	}
	p.zdWaitPause(s.name, 1, "1=90,2=10") // held all along

	// Promoted: 50%, then the timed pause ends by itself at the next pause.
	if out := p.ok("rollout", "promote", "app/"+s.name); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	p.zdWaitPause(s.name, 4, "1=50,2=50")
	got = l.share(t, "v2", 3000)
	t.Logf("canary at 50%%: v2 answered %.1f%% of 3000", got)
	if got < 45 || got > 55 {
		t.Errorf("at setWeight 50, v2 answered %.1f%%, want 50 ± 5", got)
	}
	p.zdWaitPause(s.name, 4, "1=50,2=50")

	if out := p.ok("rollout", "promote", "app/"+s.name); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	w := p.zdWatch(l, s.name, 2, s.replicas, 120*time.Second)
	w.before = before
	l.settled(t, "v2")
	if a := p.zdMust(s.name); zdTraffic(a) != "2=100" || a.Status.StableRevision != 2 {
		t.Errorf("after the canary: traffic %s, stable revision %d; want 2=100 on 2", zdTraffic(a), a.Status.StableRevision)
	}
	p.zdCheckReport(l, s.name, 2, w, map[int64]string{1: "v1", 2: "v2"})
	l.end(t)
	p.zdDelete(s.name)
}

// zdWaitPause waits until the canary is paused at step with the split
// traffic.
func (p *platform) zdWaitPause(name string, step int32, traffic string) {
	p.t.Helper()
	var a zdApp
	waitUntil(p.t, 60*time.Second, fmt.Sprintf("app %s paused at step %d with traffic %s", name, step, traffic), func() bool {
		var err error
		a, err = p.zdAppStatus(name)
		return err == nil && a.Status.Rollout != nil && a.Status.Rollout.State == "Paused" &&
			a.Status.CurrentStep != nil && *a.Status.CurrentStep == step && zdTraffic(a) == traffic
	})
}

func (p *platform) zdMust(name string) zdApp {
	p.t.Helper()
	a, err := p.zdAppStatus(name)
	if err != nil {
		p.t.Fatal(err)
	}
	return a
}

// podLoad sends requests straight to pods (no router, no Slipway in the
// path) and checks each answer comes from that pod, with its version.
type podLoad struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	ok     map[string]int64 // pod → answers
	pids   map[string]string
	failed int64
	errs   []string
}

type zdTarget struct {
	pod, ip, version string
}

func startPodLoad(targets []zdTarget, clients int) *podLoad {
	l := &podLoad{stop: make(chan struct{}), ok: map[string]int64{}, pids: map[string]string{}}
	for i := range clients + 1 {
		tg := targets[i%len(targets)]
		l.wg.Go(func() {
			// The last client opens a new connection per request.
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i == clients}}
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				resp, err := c.Get("http://" + tg.ip + ":8080/")
				why := ""
				var pid string
				switch {
				case err != nil:
					why = err.Error()
				default:
					resp.Body.Close()
					pid = resp.Header.Get("X-Pid")
					if resp.StatusCode != 200 || resp.Header.Get("X-Pod") != tg.pod || resp.Header.Get("X-Version") != tg.version {
						why = fmt.Sprintf("status %d from pod %q version %q", resp.StatusCode, resp.Header.Get("X-Pod"), resp.Header.Get("X-Version"))
					}
				}
				l.mu.Lock()
				if why != "" {
					l.failed++
					if len(l.errs) < 10 {
						l.errs = append(l.errs, tg.pod+": "+why)
					}
				} else {
					l.ok[tg.pod]++
					if old, seen := l.pids[tg.pod]; seen && old != pid {
						l.failed++
						l.errs = append(l.errs, fmt.Sprintf("%s: pid %s, then %s: restarted", tg.pod, old, pid))
					}
					l.pids[tg.pod] = pid
				}
				l.mu.Unlock()
				if why != "" {
					time.Sleep(5 * time.Millisecond)
				}
			}
		})
	}
	return l
}

func (l *podLoad) answers() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, v := range l.ok {
		n += v
	}
	return n
}

func (l *podLoad) end(t *testing.T) {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	t.Logf("straight to the pods: %v answers, %d failed", l.ok, l.failed)
	if l.failed != 0 {
		t.Errorf("%d requests straight to pods failed; first: %q", l.failed, l.errs)
	}
}

// TestZeroDowntimeCanaryKill9: kill -9 of `slipway up` in the middle of a
// canary. The pods were never stopped, so requests sent straight to them
// never fail, through the kill and the restart; the restarted platform
// adopts the same processes, resumes the canary at its weight (measured
// through the router again), and a promote completes it on v2 with no
// failed request through the router.
func TestZeroDowntimeCanaryKill9(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home)
	s := zdSpec{name: "kill", replicas: 3, grace: 30, env: map[string]string{},
		strategy: "    type: Canary\n    canary:\n      steps: [{setWeight: 30}, {pause: {}}]\n"}
	p.zdApply(s, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
	p.zdServing(s.host(), "v1")
	p.zdApply(s, "v2")
	p.zdWaitTraffic(s.name, "1=70,2=30", 60*time.Second)
	var targets []zdTarget
	waitUntil(t, 60*time.Second, "3 ready pods of v1 and 1 of v2", func() bool {
		pods, err := p.zdPods(s.name)
		if err != nil {
			return false
		}
		targets = targets[:0]
		for _, pod := range pods {
			if pod.Status.PodIP == "" || pod.Status.Phase != "Running" {
				return false
			}
			targets = append(targets, zdTarget{pod: pod.Metadata.Name, ip: pod.Status.PodIP, version: fmt.Sprintf("v%d", pod.Spec.Revision)})
		}
		return len(targets) == 4
	})
	l := startZDLoad(p, s.host(), "v1", "v2")
	got := l.share(t, "v2", 2000)
	t.Logf("before the kill: v2 answered %.1f%% through the router", got)
	l.end(t)
	direct := startPodLoad(targets, zdClients)
	waitUntil(t, 30*time.Second, "answers straight from the pods", func() bool { return direct.answers() > 400 })

	p.kill()
	atKill := direct.answers()
	p = startPlatform(t, home)
	waitUntil(t, 30*time.Second, "pods answer while Slipway restarts", func() bool { return direct.answers() > atKill+400 })
	a := p.zdWaitTraffic(s.name, "1=70,2=30", 60*time.Second)
	if ro := a.Status.Rollout; ro == nil || ro.Revision != 2 || ro.State != "Paused" || a.Status.LatestRevision != 2 {
		t.Fatalf("after the restart: latest revision %d, rollout %+v; want revision 2 still paused", a.Status.LatestRevision, ro)
	}
	pods, err := p.zdPods(s.name)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, pod := range pods {
		names = append(names, pod.Metadata.Name)
	}
	var want []string
	for _, tg := range targets {
		want = append(want, tg.pod)
	}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("pods after the restart %v, before %v: the same pods should be adopted", names, want)
	}
	l = startZDLoad(p, s.host(), "v1", "v2")
	got = l.share(t, "v2", 2000)
	t.Logf("after the restart: v2 answered %.1f%% through the router", got)
	if got < 25 || got > 35 {
		t.Errorf("after the restart, v2 answered %.1f%%, want 30 ± 5", got)
	}
	// The old pods stop once promoted: the direct load ends here.
	direct.end(t)
	if out := p.ok("rollout", "promote", "app/"+s.name); !strings.Contains(out, "rollout promote done") {
		t.Fatalf("promote: %q", out)
	}
	waitUntil(t, 120*time.Second, "v2 rolled out", func() bool { return p.zdRolledOut(s.name, 2, s.replicas) })
	l.settled(t, "v2")
	l.end(t)
	if a := p.zdMust(s.name); zdTraffic(a) != "2=100" || a.Status.StableRevision != 2 {
		t.Errorf("final: traffic %s, stable revision %d; want 2=100 on 2", zdTraffic(a), a.Status.StableRevision)
	}
}

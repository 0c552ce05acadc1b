package e2e

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// The rollout benchmarks need a whole platform (a *testing.T helper world),
// so they are tests that run only under -bench, printing their figures:
//
//	go test ./test/e2e -run TestRolloutBench -bench RolloutBench -v
//
// bench/rollout/run.sh runs them. Each figure comes with its baseline,
// measured in the same run.

func benchRuns(t *testing.T) int {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		t.Skip("a benchmark: run with -bench (bench/rollout/run.sh)")
	}
	n, err := strconv.Atoi(os.Getenv("ZD_BENCH_RUNS"))
	if err != nil || n < 1 {
		n = 3
	}
	return n
}

// appStartToReady starts n sample apps directly (no Slipway) with the
// given START_DELAY, all at once as a rollout does, and returns the time
// until every one answers its readiness path: the app's own start-to-ready.
func appStartToReady(t *testing.T, n int, delay string) time.Duration {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	start := time.Now()
	cmds := make([]*exec.Cmd, n)
	for i, port := range ports {
		c := exec.Command(helloBin)
		c.Env = append(os.Environ(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port), "START_DELAY="+delay, "VERSION=v1")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = c
	}
	defer func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}()
	var wg sync.WaitGroup
	for _, port := range ports {
		wg.Go(func() {
			c := &http.Client{Timeout: time.Second}
			url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
			for time.Since(start) < time.Minute {
				if resp, err := c.Get(url); err == nil {
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						return
					}
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestRolloutBenchRollingOverhead: how long a Rolling rollout of 10
// replicas takes beyond the app's own start-to-ready time. With maxSurge
// 100% the strategy needs one wave of new pods, so the overhead is the
// rollout's time minus the baseline; with the default 25% it needs four
// waves (3+3+3+1 of 10), so the overhead is the time minus four baselines.
// The rollout is timed from just before `slipway set env` (the CLI's own
// start included) until the App is Healthy on the new revision with 10
// ready pods and no old pod left.
func TestRolloutBenchRollingOverhead(t *testing.T) {
	runs := benchRuns(t)
	p := startPlatform(t, t.TempDir())
	for _, c := range []struct {
		name     string
		surge    string
		waves    int
		delay    string
		replicas int
	}{
		{"surge100-delay0", "100%", 1, "0s", 10},
		{"surge100-delay1s", "100%", 1, "1s", 10},
		{"surge25-delay0", "25%", 4, "0s", 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := p.in(t)
			s := zdSpec{name: "bench-" + c.name, replicas: c.replicas, grace: 30, env: map[string]string{"START_DELAY": c.delay},
				strategy: fmt.Sprintf("    type: Rolling\n    rolling: {maxSurge: %s, maxUnavailable: 0}\n", c.surge)}
			p.zdApply(s, "v1")
			waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(s.name, 1, s.replicas) })
			var base, roll, cli []time.Duration
			for i := range runs {
				base = append(base, appStartToReady(t, c.replicas, c.delay))
				rev := int64(i + 2)
				start := time.Now()
				p.ok("set", "env", "app/"+s.name, fmt.Sprintf("VERSION=v%d", rev))
				cli = append(cli, time.Since(start))
				for !p.zdRolledOut(s.name, rev, s.replicas) {
					if time.Since(start) > 2*time.Minute {
						t.Fatalf("rollout %d did not end in 2 minutes", rev)
					}
					time.Sleep(5 * time.Millisecond)
				}
				roll = append(roll, time.Since(start))
			}
			b, r := median(base), median(roll)
			over := r - time.Duration(c.waves)*b
			t.Logf("BENCH rolling %s: %d replicas, START_DELAY %s, %d wave(s): rollout %v, app start-to-ready %v (baseline, same run), overhead %v (%.2f× the waves' baseline; the CLI command itself took %v of it); medians of %d (rollouts %v, baselines %v)",
				c.name, c.replicas, c.delay, c.waves, r.Round(time.Millisecond), b.Round(time.Millisecond), over.Round(time.Millisecond),
				float64(r)/float64(time.Duration(c.waves)*b), median(cli).Round(time.Millisecond), runs, roundAll(roll), roundAll(base))
			p.zdDelete(s.name)
		})
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// stampLoad records, per request, when it started and which version
// answered: a switch's latency is read from the requests' own times.
type stampLoad struct {
	stop chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	reqs []stamp
	bad  int
}

type stamp struct {
	start   time.Time
	version string
}

func startStampLoad(p *platform, host string) *stampLoad {
	l := &stampLoad{stop: make(chan struct{})}
	for range zdClients {
		l.wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			var mine []stamp
			bad := 0
			defer func() {
				l.mu.Lock()
				l.reqs = append(l.reqs, mine...)
				l.bad += bad
				l.mu.Unlock()
			}()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				req, _ := http.NewRequest("GET", "http://"+p.router+"/", nil)
				req.Host = host
				start := time.Now()
				resp, err := c.Do(req)
				if err != nil {
					bad++
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					bad++
					continue
				}
				mine = append(mine, stamp{start, resp.Header.Get("X-Version")})
			}
		})
	}
	return l
}

// switchLatency stops the load and returns how long after t0 a request
// could still start and be answered by from (0 if none did), and how many
// requests answered from, to, or failed.
func (l *stampLoad) switchLatency(t0 time.Time, from, to string) (lat time.Duration, nFrom, nTo, bad int) {
	close(l.stop)
	l.wg.Wait()
	var last time.Time
	for _, r := range l.reqs {
		switch r.version {
		case from:
			nFrom++
			if r.start.After(last) {
				last = r.start
			}
		case to:
			nTo++
		default:
			bad++
		}
	}
	if last.After(t0) {
		lat = last.Sub(t0)
	}
	return lat, nFrom, nTo, bad + l.bad
}

// zdPut reads an object through the API, lets mutate change it, and
// writes it back: the same write the CLI makes, without a process start.
func (p *platform) zdPut(path string, mutate func(obj map[string]any)) {
	p.t.Helper()
	var obj map[string]any
	if err := p.zdGet(path, &obj); err != nil {
		p.t.Fatal(err)
	}
	mutate(obj)
	b, err := json.Marshal(obj)
	if err != nil {
		p.t.Fatal(err)
	}
	req, _ := http.NewRequest("PUT", p.apiURL+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+p.zdToken())
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, body)
	}
}

// TestRolloutBenchPromotionLatency: from the `rollout promote` request of
// a BlueGreen rollout (its API write, timed just before it is sent) to the
// last request that still started on the old revision, read from 64
// keep-alive clients' own request times. The baseline, in the same run, is
// the same measure for a route's weights flipped 100/0 → 0/100 between two
// services: the data path's own reaction to a change in the store, which a
// promotion (request → deploy controller → App status → router) adds to.
func TestRolloutBenchPromotionLatency(t *testing.T) {
	runs := benchRuns(t)
	p := startPlatform(t, t.TempDir())
	bg := zdSpec{name: "bg", replicas: 3, grace: 30, env: map[string]string{},
		strategy: "    type: BlueGreen\n    blueGreen: {scaleDownDelaySeconds: 300}\n"}
	p.zdApply(bg, "v1")
	waitUntil(t, 120*time.Second, "v1 rolled out", func() bool { return p.zdRolledOut(bg.name, 1, bg.replicas) })
	a := zdSpec{name: "flip-a", replicas: 1, grace: 30, env: map[string]string{}}
	b := zdSpec{name: "flip-b", replicas: 1, grace: 30, env: map[string]string{}}
	p.zdApply(a, "v1")
	p.zdApply(b, "v2")
	route := "apiVersion: slipway.dev/v1\nkind: Route\nmetadata: {name: flip}\nspec:\n  host: flip.zd.test\n  to: {service: flip-a, weight: 100}\n  alternateBackends: [{service: flip-b, weight: 0}]\n"
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "flip.yaml", route))
	for _, s := range []zdSpec{a, b} {
		waitUntil(t, 120*time.Second, s.name+" rolled out", func() bool { return p.zdRolledOut(s.name, 1, 1) })
	}
	p.zdServing("flip.zd.test", "v1")
	p.zdServing(bg.host(), "v1")

	var promo, flip []time.Duration
	for i := range runs {
		// Baseline: flip the route's weights one way, then back.
		from, to, wa, wb := "v1", "v2", 0.0, 100.0
		if i%2 == 1 {
			from, to, wa, wb = "v2", "v1", 100, 0
		}
		l := startStampLoad(p, "flip.zd.test")
		time.Sleep(300 * time.Millisecond) // traffic before the change, to read the switch from
		t0 := time.Now()
		p.zdPut("/api/v1/projects/default/routes/flip", func(o map[string]any) {
			spec := o["spec"].(map[string]any)
			spec["to"].(map[string]any)["weight"] = wa
			spec["alternateBackends"].([]any)[0].(map[string]any)["weight"] = wb
		})
		time.Sleep(time.Second)
		lat, nFrom, nTo, bad := l.switchLatency(t0, from, to)
		if bad != 0 || nTo == 0 || nFrom == 0 {
			t.Fatalf("route flip: %d from %s, %d from %s, %d bad", nFrom, from, nTo, to, bad)
		}
		flip = append(flip, lat)

		// A BlueGreen rollout of the next version, promoted under load.
		rev := int64(i + 2)
		oldV, newV := fmt.Sprintf("v%d", rev-1), fmt.Sprintf("v%d", rev)
		p.zdApply(bg, newV)
		waitUntil(t, 120*time.Second, "the preview is up, waiting for promotion", func() bool {
			st, err := p.zdAppStatus(bg.name)
			return err == nil && st.Status.Phase == "Paused" && st.Status.LatestRevision == rev && st.Status.ReadyReplicas == 2*bg.replicas
		})
		l = startStampLoad(p, bg.host())
		time.Sleep(300 * time.Millisecond)
		t0 = time.Now()
		p.zdPut("/api/v1/projects/default/apps/bg", func(o map[string]any) {
			m := o["metadata"].(map[string]any)
			ann, _ := m["annotations"].(map[string]any)
			if ann == nil {
				ann = map[string]any{}
				m["annotations"] = ann
			}
			ann["slipway.dev/rollout-request"] = fmt.Sprintf("promote %d", time.Now().UnixNano())
		})
		time.Sleep(time.Second)
		lat, nFrom, nTo, bad = l.switchLatency(t0, oldV, newV)
		if bad != 0 || nTo == 0 || nFrom == 0 {
			t.Fatalf("promotion: %d from %s, %d from %s, %d bad", nFrom, oldV, nTo, newV, bad)
		}
		promo = append(promo, lat)
		waitUntil(t, 60*time.Second, "the promotion completes", func() bool {
			st, err := p.zdAppStatus(bg.name)
			return err == nil && st.Status.StableRevision == rev && zdTraffic(st) == fmt.Sprintf("%d=100", rev)
		})
	}
	pm, fm := median(promo), median(flip)
	t.Logf("BENCH promotion latency: %v from `rollout promote` (API write) to 100%% of new requests on the new revision; baseline route weight flip %v (same run); ratio %.2f×; medians of %d (promotions %v, flips %v)",
		pm.Round(100*time.Microsecond), fm.Round(100*time.Microsecond), float64(pm)/float64(max(fm, time.Microsecond)), runs, roundAll(promo), roundAll(flip))
}

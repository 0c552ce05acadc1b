package e2e

import (
	"flag"
	"fmt"
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
			var base, roll []time.Duration
			for i := range runs {
				base = append(base, appStartToReady(t, c.replicas, c.delay))
				rev := int64(i + 2)
				start := time.Now()
				p.ok("set", "env", "app/"+s.name, fmt.Sprintf("VERSION=v%d", rev))
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
			t.Logf("BENCH rolling %s: %d replicas, START_DELAY %s, %d wave(s): rollout %v, app start-to-ready %v (baseline, same run), overhead %v (%.2f× the waves' baseline); medians of %d (rollouts %v, baselines %v)",
				c.name, c.replicas, c.delay, c.waves, r.Round(time.Millisecond), b.Round(time.Millisecond), over.Round(time.Millisecond),
				float64(r)/float64(time.Duration(c.waves)*b), runs, roundAll(roll), roundAll(base))
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

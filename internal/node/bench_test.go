package node

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// BenchmarkPodStart measures, per pod, the time from the Pod record's
// creation to its process running (pod status Running) and to Ready with a
// readiness probe that passes at once, against the baseline of starting the
// same command with os/exec in the same run. It reports p50 and p99.
func BenchmarkPodStart(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	var toRunning, toReady, baseline []time.Duration
	for i := 0; i < b.N; i++ {
		c := sh("c", "exec sleep 1000")
		c.ReadinessProbe = &api.Probe{Exec: &api.ExecAction{Command: []string{"true"}}, PeriodSeconds: 1, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
		name := fmt.Sprintf("bench-%d", i)
		start := time.Now()
		if _, err := e.reg.Create(ctx, &api.Pod{Metadata: api.ObjectMeta{Name: name}, Spec: api.PodSpec{Containers: []api.Container{c}}}); err != nil {
			b.Fatal(err)
		}
		var running time.Duration
		for {
			p := e.pod(name)
			if p != nil && running == 0 && p.Status.Phase == api.PodRunning {
				running = time.Since(start)
			}
			if p != nil && ready(p) {
				toReady = append(toReady, time.Since(start))
				if running == 0 {
					running = time.Since(start)
				}
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
		toRunning = append(toRunning, running)

		bs := time.Now()
		cmd := exec.Command("sh", "-c", "exec sleep 1000")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		baseline = append(baseline, time.Since(bs))
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := e.reg.Delete(ctx, podKind, api.DefaultProject, name, registry.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(pct(toRunning, 50), "running-p50-ms")
	b.ReportMetric(pct(toRunning, 99), "running-p99-ms")
	b.ReportMetric(pct(toReady, 50), "ready-p50-ms")
	b.ReportMetric(pct(toReady, 99), "ready-p99-ms")
	b.ReportMetric(pct(baseline, 50), "exec-start-p50-ms")
	b.ReportMetric(pct(toRunning, 50)/pct(baseline, 50), "running/exec-p50")
}

func pct(ds []time.Duration, p int) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return float64(s[i].Microseconds()) / 1000
}

package docker_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/process"
)

// BenchmarkPodStart measures a pod's start on Docker — CreateSandbox (the
// infra container), StartContainer, until the app accepts connections on
// the pod's IP — against the same on the process runtime, same test app,
// same run. ns/op is Docker's pod start to ready; docker-sandbox-ms is
// CreateSandbox alone, docker-start-ms CreateSandbox+StartContainer, docker-ready-ms to the app
// accepting; process-* the same on the process runtime; ratios compare
// Docker with the process runtime.
func BenchmarkPodStart(b *testing.B) {
	requireEngine(b)
	ctx := context.Background()
	dk := newDriver(b, b.TempDir())
	pr, err := process.New(process.Options{Dir: b.TempDir(), IPRange: netip.MustParsePrefix("127.23.0.0/24"), Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	defer pr.Close()
	for _, d := range []runtime.Driver{dk, pr} {
		go func() {
			for range d.Exits() {
			}
		}()
	}
	image, cmd := appImage(b, testApp)
	type sample struct{ sandbox, start, ready time.Duration }
	// one starts a pod with the test app on port 8080 and removes it.
	one := func(d runtime.Driver, i int, c runtime.ContainerConfig) sample {
		uid := fmt.Sprintf("bench-%s-%d", d.Name(), i)
		t0 := time.Now()
		sb, err := d.CreateSandbox(ctx, runtime.PodConfig{UID: uid, Name: uid})
		if err != nil {
			b.Fatal(err)
		}
		sandbox := time.Since(t0)
		c.Env = []string{"HOST=" + sb.IP.String(), "PORT=8080"}
		if _, err := d.StartContainer(ctx, uid, c); err != nil {
			b.Fatal(err)
		}
		started := time.Since(t0)
		waitAccept(b, sb.IP.String(), "8080")
		s := sample{sandbox, started, time.Since(t0)}
		if err := d.RemoveSandbox(ctx, uid); err != nil {
			b.Fatal(err)
		}
		return s
	}
	var dock, proc sample
	b.ResetTimer()
	for i := range b.N {
		s := one(dk, i, runtime.ContainerConfig{Name: "web", Image: image, Command: cmd})
		dock.sandbox += s.sandbox
		dock.start += s.start
		dock.ready += s.ready
		s = one(pr, i, runtime.ContainerConfig{Name: "web", Command: []string{testApp}})
		proc.start += s.start
		proc.ready += s.ready
	}
	n := float64(b.N)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / n }
	b.ReportMetric(float64(dock.ready.Nanoseconds())/n, "ns/op")
	b.ReportMetric(ms(dock.sandbox), "docker-sandbox-ms")
	b.ReportMetric(ms(dock.start), "docker-start-ms")
	b.ReportMetric(ms(dock.ready), "docker-ready-ms")
	b.ReportMetric(ms(proc.start), "process-start-ms")
	b.ReportMetric(ms(proc.ready), "process-ready-ms")
	b.ReportMetric(float64(dock.ready)/float64(proc.ready), "ready-ratio")
	b.ReportMetric(float64(dock.start)/float64(proc.start), "start-ratio")
}

func waitAccept(b *testing.B, ip, port string) {
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s:%s never accepted: %v", ip, port, err)
		}
		time.Sleep(200 * time.Microsecond) // poll resolution of the measurement
	}
}

package process_test

import (
	"context"
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/process"
)

// BenchmarkStartContainer measures StartContainer from the call to the
// process running (what it returns) and to its port accepting connections,
// against a plain exec.Command(...).Start() of the same binary in the same
// run. ns/op is the driver's start; the ratios compare like with like.
func BenchmarkStartContainer(b *testing.B) {
	for _, tc := range []struct {
		name      string
		noCgroups bool
	}{{"cgroups", false}, {"nocgroups", true}} {
		b.Run(tc.name, func(b *testing.B) {
			o := testOptions(b.TempDir())
			o.NoCgroups = tc.noCgroups
			d, err := process.New(o)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			if tc.name == "cgroups" && !d.Capabilities().MemoryLimit.Supported {
				b.Skipf("cgroups not usable: %s", d.Capabilities().MemoryLimit.Reason)
			}
			ctx := context.Background()
			sb, err := d.CreateSandbox(ctx, runtime.PodConfig{UID: "pod-bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer d.RemoveSandbox(ctx, "pod-bench")
			go func() {
				for range d.Exits() {
				}
			}()
			ip := sb.IP.String()
			var drvStart, drvReady, baseStart, baseReady time.Duration
			b.ResetTimer()
			for range b.N {
				port := benchPort(b, ip)
				t0 := time.Now()
				cmd := exec.Command(testApp)
				cmd.Env = []string{"HOST=" + ip, "PORT=" + port}
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				baseStart += time.Since(t0)
				waitAccept(b, ip, port)
				baseReady += time.Since(t0)
				cmd.Process.Kill()
				cmd.Wait()

				port = benchPort(b, ip)
				t0 = time.Now()
				_, err := d.StartContainer(ctx, "pod-bench", runtime.ContainerConfig{
					Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port},
					Limits: runtime.Limits{MemoryBytes: 256 << 20},
				})
				if err != nil {
					b.Fatal(err)
				}
				drvStart += time.Since(t0)
				waitAccept(b, ip, port)
				drvReady += time.Since(t0)
				if err := d.StopContainer(ctx, "pod-bench", "web", 0); err != nil {
					b.Fatal(err)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(drvStart.Nanoseconds())/n, "ns/op")
			b.ReportMetric(float64(drvReady.Microseconds())/n, "ready-µs/op")
			b.ReportMetric(float64(baseStart.Microseconds())/n, "exec-start-µs/op")
			b.ReportMetric(float64(baseReady.Microseconds())/n, "exec-ready-µs/op")
			b.ReportMetric(float64(drvStart)/float64(baseStart), "start-ratio")
			b.ReportMetric(float64(drvReady)/float64(baseReady), "ready-ratio")
		})
	}
}

func benchPort(b *testing.B, ip string) string {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func waitAccept(b *testing.B, ip, port string) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort(ip, port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s:%s never accepted: %v", ip, port, err)
		}
		time.Sleep(100 * time.Microsecond) // poll resolution of the measurement
	}
}

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestOneOffPodThroughTheCLI: a Pod with restartPolicy Never, applied
// through the CLI, runs once: it ends Failed with its exit code, is not
// restarted, and `slipway logs` prints what it wrote until it is deleted.
func TestOneOffPodThroughTheCLI(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	pod := `apiVersion: slipway.dev/v1
kind: Pod
metadata: {name: migrate}
spec:
  restartPolicy: Never
  containers:
    - name: job
      command: [sh, -c, 'echo "migrating $SLIPWAY_PROJECT"; echo done; exit 3']
`
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "pod.yaml", pod))
	var st zdPod
	var cs struct {
		Status struct {
			ContainerStatuses []struct {
				RestartCount int
				State        struct{ Terminated *struct{ ExitCode int } }
			}
		}
	}
	waitUntil(t, 60*time.Second, "the pod ended", func() bool {
		if p.zdGet("/api/v1/projects/default/pods/migrate", &st) != nil {
			return false
		}
		return st.Status.Phase == "Failed" || st.Status.Phase == "Succeeded"
	})
	if err := p.zdGet("/api/v1/projects/default/pods/migrate", &cs); err != nil {
		t.Fatal(err)
	}
	c := cs.Status.ContainerStatuses
	if st.Status.Phase != "Failed" || len(c) != 1 || c[0].RestartCount != 0 || c[0].State.Terminated == nil || c[0].State.Terminated.ExitCode != 3 {
		t.Fatalf("pod %s, containers %+v: want Failed, exit code 3, no restart", st.Status.Phase, c)
	}
	if out := p.ok("logs", "migrate"); out != "migrating default\ndone\n" {
		t.Errorf("slipway logs migrate: %q", out)
	}
	// As kubectl prints it: the container's reason, no restart.
	out := strings.Split(p.ok("get", "pod", "migrate"), "\n")
	if f := strings.Fields(out[1]); len(f) < 4 || strings.Join(f[:4], " ") != "migrate 0/1 Error 0" {
		t.Errorf("get pod:\n%s", strings.Join(out, "\n"))
	}
	p.ok("delete", "pod", "migrate")
	waitUntil(t, 60*time.Second, "the pod is gone", func() bool {
		return p.run("", "get", "pod", "migrate").code != 0
	})
	if r := p.run("", "logs", "migrate"); r.code == 0 {
		t.Errorf("logs of a deleted pod: %q", r.stdout)
	}
}

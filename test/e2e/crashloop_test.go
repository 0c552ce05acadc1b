package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func crashApp(command string) string {
	return fmt.Sprintf(`apiVersion: slipway.dev/v1
kind: App
metadata: {name: crashy}
spec:
  replicas: 1
  template:
    containers:
      - name: web
        command: %s
        ports: [{name: http, port: 8080}]
        readinessProbe: {httpGet: {path: /healthz, port: http}, periodSeconds: 1}
`, command)
}

// A first revision whose container exits 1 at once (nothing to roll back
// to) becomes Degraded with reason CrashLoopBackOff, naming the container,
// its exit code and the last lines of its log, while the node restarts it with back-off; a fixed
// command then rolls out and the App is Healthy.
func TestCrashLoopingFirstRevisionIsDegradedThenFixed(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "crash.yaml", crashApp(`["sh", "-c", "echo starting; echo cannot open the database >&2; exit 1"]`)))

	// Three exits at back-off 10 s then 20 s: about 30 s.
	waitUntil(t, 90*time.Second, "get apps shows Degraded", func() bool {
		return strings.Contains(p.ok("get", "apps"), "Degraded")
	})
	desc := p.ok("describe", "app", "crashy")
	for _, s := range []string{"Progressing", "False CrashLoopBackOff", "revision 1 is crash-looping: container web of pod crashy-1-", "last exited with code 1", "restarts go on with back-off", "last log lines:", "cannot open the database"} {
		if !strings.Contains(desc, s) {
			t.Errorf("describe app lacks %q:\n%s", s, desc)
		}
	}
	r := p.run("", "rollout", "status", "app/crashy")
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "app/crashy is Degraded: revision 1 is crash-looping") {
		t.Errorf("rollout status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	p.ok("apply", "-f", writeFile(t, t.TempDir(), "fixed.yaml", crashApp(fmt.Sprintf("[%q]", helloBin))))
	waitUntil(t, 60*time.Second, "the fixed revision is Healthy", func() bool {
		out := p.ok("get", "apps")
		return strings.Contains(out, "Healthy") && strings.Contains(out, "1/1")
	})
	p.waitApp("crashy", 1, 30*time.Second)
}

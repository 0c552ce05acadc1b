package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRolloutHooksGateTheRollout: pre and post hooks run once per rollout,
// in order, as one-off pods of the new revision (they see its VERSION);
// a failing pre hook under failurePolicy Abort stops the rollout before
// the new revision gets a pod, and the stable revision keeps serving.
func TestRolloutHooksGateTheRollout(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	log := filepath.Join(dir, "hooks.log")
	hooks := func(pre string) string {
		return fmt.Sprintf("    hooks:\n      pre: {command: [sh, -c, %q]}\n      post: {command: [sh, -c, 'echo post $VERSION >> %s']}\n", pre, log)
	}
	okPre := fmt.Sprintf("echo pre $VERSION $SLIPWAY_HOOK >> %s", log)
	strategy := func(pre string) string { return "    type: Rolling\n" + hooks(pre) }
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", deployManifest(strategy(okPre), "v1", "", "hello.test")))
	p.waitRolledOut(1, 60*time.Second)
	p.ok("apply", "-f", writeFile(t, dir, "v2.yaml", deployManifest(strategy(okPre), "v2", "", "hello.test")))
	p.waitRolledOut(2, 60*time.Second)
	b, _ := os.ReadFile(log)
	if got, want := string(b), "pre v1 pre\npost v1\npre v2 pre\npost v2\n"; got != want {
		t.Fatalf("hooks ran:\n%s\nwant:\n%s", got, want)
	}

	l := startRouteLoad(p, "hello.test", 16, 1)
	defer l.end(t)
	l.after(t, 200)
	p.ok("apply", "-f", writeFile(t, dir, "v3.yaml", deployManifest(strategy("echo migrating; exit 3"), "v3", "", "hello.test")))
	waitUntil(t, 60*time.Second, "the failed pre hook aborts the rollout", func() bool { return p.app("hello").Status.Phase == "Degraded" })
	a := p.app("hello")
	if a.Status.Rollout.Reason != "HookFailed" || !strings.Contains(a.Status.Message, "the pre hook of revision 3 failed") ||
		!strings.Contains(a.Status.Message, "exit code 3") || a.traffic() != "2=100" {
		t.Fatalf("after the failed hook: message %q rollout %+v traffic %s", a.Status.Message, a.Status.Rollout, a.traffic())
	}
	l.after(t, 500)
	ok, failed := l.counts()
	if len(failed) != 0 || ok["v3"] != 0 || ok["v2"] == 0 {
		t.Errorf("answers %v failures %v: v2 must serve untouched", ok, failed)
	}
	var pods struct {
		Items []struct {
			Metadata struct{ Name string }
			Spec     struct{ Revision int64 }
		}
	}
	if err := json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods); err != nil {
		t.Fatal(err)
	}
	for _, it := range pods.Items {
		if it.Spec.Revision == 3 {
			t.Errorf("revision 3 got pod %s though its pre hook failed", it.Metadata.Name)
		}
	}
	var pod string
	for _, h := range a.Status.Rollout.Hooks {
		if h.Hook == "pre" {
			pod = h.Pod
		}
	}
	if out := p.ok("logs", "pod/"+pod); !strings.Contains(out, "migrating") {
		t.Errorf("the hook's log is not kept: %q", out)
	}
}

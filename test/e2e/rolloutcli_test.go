package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRolloutCommands drives an app's revisions with the rollout verbs
// through the real binary: status waits for a rollout, pause holds a
// change, resume rolls it out, restart and undo make new revisions, and
// history lists them with what changed.
func TestRolloutCommands(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	v1 := helloManifest(2, 5)
	p.ok("apply", "-f", writeFile(t, dir, "v1.yaml", v1))
	if out := p.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 1") {
		t.Fatalf("rollout status: %q", out)
	}

	// A paused app holds template changes (here a restart's).
	p.ok("rollout", "pause", "app/hello")
	p.ok("rollout", "restart", "app/hello")
	waitUntil(t, 20*time.Second, "the paused app reports the held change", func() bool {
		return strings.Contains(p.ok("get", "app", "hello"), "Paused")
	})
	// Exit 2: the rollout waits for a person (issue #18; it was 1, as a failure).
	if r := p.run("", "rollout", "status", "app/hello", "--watch=false"); r.code != 2 || !strings.Contains(r.stdout, "is paused") || !strings.Contains(r.stderr, "slipway rollout resume app/hello continues it") {
		t.Fatalf("status of a paused app: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if n := revisionCount(t, p); n != 1 {
		t.Fatalf("a paused app made %d revisions, want 1", n)
	}
	p.ok("rollout", "resume", "app/hello")
	if out := p.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 2") {
		t.Fatalf("after resume: %q", out)
	}
	if out := p.ok("set", "env", "app/hello", "VERSION=v2"); !strings.Contains(out, "app/hello env updated") {
		t.Fatalf("set env: %q", out)
	}
	if out := p.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 3") {
		t.Fatalf("after set env: %q", out)
	}
	if r := p.run("", "set", "image", "app/hello", "nope=x:1"); r.code != 1 || !strings.Contains(r.stderr, `app hello has no container "nope"`) {
		t.Fatalf("set image of a missing container: exit %d %q", r.code, r.stderr)
	}
	if out := p.ok("rollout", "undo", "app/hello", "--to-revision", "1"); !strings.Contains(out, "template of revision 1") {
		t.Fatalf("undo: %q", out)
	}
	if out := p.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 4") {
		t.Fatalf("after undo: %q", out)
	}
	// Revision 4 runs v1 again.
	var pods struct {
		Items []struct {
			Spec struct {
				Revision   int64
				Containers []struct {
					Env []struct{ Name, Value string }
				}
			}
		}
	}
	json.Unmarshal([]byte(p.ok("get", "pods", "-l", "app=hello", "-o", "json")), &pods)
	for _, it := range pods.Items {
		if it.Spec.Revision == 4 && it.Spec.Containers[0].Env[0].Value != "v1" {
			t.Errorf("revision 4 runs VERSION=%s, want v1 (undone to revision 1)", it.Spec.Containers[0].Env[0].Value)
		}
	}
	p.ok("set", "image", "app/hello", "web=hello:v9")
	if out := p.ok("rollout", "status", "app/hello", "--timeout", "60s"); !strings.Contains(out, "successfully rolled out (revision 5") {
		t.Fatalf("after set image: %q", out)
	}
	hist := p.ok("rollout", "history", "app/hello")
	for _, want := range []string{"REVISION", "<initial>", "restart", "web env VERSION=v2", "web env VERSION=v1", "web image hello:v9"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	if r := p.run("", "rollout", "undo", "app/hello", "--to-revision", "9"); r.code != 1 || !strings.Contains(r.stderr, "no revision 9") {
		t.Errorf("undo to a missing revision: exit %d %q", r.code, r.stderr)
	}
}

func revisionCount(t *testing.T, p *platform) int {
	t.Helper()
	var revs struct{ Items []any }
	json.Unmarshal([]byte(p.ok("get", "revisions", "-o", "json")), &revs)
	return len(revs.Items)
}

package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestCLIVerbsAndMissingCommand drives wait, label, patch and events
// through the real binary, on an app whose command is missing: its Event
// says so once, without the PATH.
func TestCLIVerbsAndMissingCommand(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	dir := t.TempDir()
	p.ok("apply", "-f", writeFile(t, dir, "hello.yaml", helloManifest(1, 5)))
	if out := p.ok("wait", "--for=condition=Available", "app/hello", "--timeout", "60s"); out != "app/hello condition met\n" {
		t.Fatalf("wait: %q", out)
	}
	if out := p.ok("label", "app/hello", "team=web"); out != "app/hello labeled\n" {
		t.Errorf("label: %q", out)
	}
	if out := p.ok("get", "apps", "-l", "team=web", "-o", "name"); out != "app/hello\n" {
		t.Errorf("get -l after label: %q", out)
	}
	if out := p.ok("patch", "app/hello", "--type", "merge", "--patch", `{"spec":{"replicas":2}}`); out != "app/hello patched\n" {
		t.Errorf("patch: %q", out)
	}
	if out := p.ok("wait", "--for=jsonpath={.status.availableReplicas}=2", "app/hello", "--timeout", "60s"); !strings.Contains(out, "met") {
		t.Errorf("wait for two available: %q", out)
	}

	app, _, _ := strings.Cut(helloManifest(1, 5), "---") // the App, not its Service
	broken := strings.Replace(app, "name: hello}", "name: broken}", 1)
	broken = strings.Replace(broken, `command: ["`+helloBin+`"]`, `command: ["no-such-command-for-slipway"]`, 1)
	if !strings.Contains(broken, "no-such-command-for-slipway") {
		t.Fatalf("the test manifest changed shape:\n%s", broken)
	}
	p.ok("apply", "-f", writeFile(t, dir, "broken.yaml", broken))
	var msgs string
	waitUntil(t, 30*time.Second, "the missing command's Event", func() bool {
		msgs = p.ok("events", "-o", `jsonpath={range .items[?(@.reason=="Failed")]}{.message}{"\n"}{end}`)
		return strings.Contains(msgs, "no-such-command-for-slipway")
	})
	line := strings.Split(strings.TrimSpace(msgs), "\n")[0]
	if !strings.HasSuffix(line, `: executable "no-such-command-for-slipway" not found in the pod's PATH`) ||
		strings.Count(line, "no-such-command-for-slipway") != 1 || strings.Contains(line, "/usr/bin") {
		t.Errorf("the Event of a missing command says %q", line)
	}
	if r := p.run("", "wait", "--for=condition=Available", "app/broken", "--timeout", "1s"); r.code != 3 || !strings.Contains(r.stderr, "timed out after 1s") {
		t.Errorf("wait on a broken app: exit %d, stderr %q", r.code, r.stderr)
	}
}

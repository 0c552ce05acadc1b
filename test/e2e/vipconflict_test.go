package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two Slipways on one machine: a service VIP:port another process holds
// shows in `get svc` and `describe svc` (VIPBound False, AddressInUse,
// naming the address and the holder) and clears once the process lets
// go; a second `slipway up` on a service range the first one listens in
// refuses to start, naming the flag and a free range.
func TestVIPConflictShownAndSecondUpRefused(t *testing.T) {
	home := t.TempDir()
	p := startPlatform(t, home)
	b, err := os.ReadFile(filepath.Join(home, "service-ip-range"))
	if err != nil {
		t.Fatal(err)
	}
	svcRange := strings.TrimSpace(string(b))
	vip := strings.TrimSuffix(svcRange, "0/24") + "1" // the first service's address

	holder, err := net.Listen("tcp", vip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	port := holder.Addr().(*net.TCPAddr).Port
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "svc.yaml", fmt.Sprintf(
		"apiVersion: slipway.dev/v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: %d}]}\n", port)))

	addr := net.JoinHostPort(vip, fmt.Sprint(port))
	waitUntil(t, 20*time.Second, "get svc shows AddressInUse", func() bool {
		return strings.Contains(p.ok("get", "svc", "web"), vip+" (AddressInUse)")
	})
	desc := p.ok("describe", "svc", "web")
	want := fmt.Sprintf("False AddressInUse: cannot listen on %s: another process holds it: pid %d (e2e.test)", addr, os.Getpid())
	if !strings.Contains(desc, "VIPBound") || !strings.Contains(desc, want) {
		t.Errorf("describe svc lacks %q:\n%s", want, desc)
	}

	holder.Close()
	waitUntil(t, 20*time.Second, "the condition clears once the address is free", func() bool {
		return !strings.Contains(p.ok("describe", "svc", "web"), "VIPBound")
	})
	if out := p.ok("get", "svc", "web"); strings.Contains(out, "AddressInUse") {
		t.Errorf("get svc still shows the conflict:\n%s", out)
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
		t.Errorf("the service proxy does not listen on %s: %v", addr, err)
	} else {
		c.Close()
	}

	// A second Slipway given the same range refuses to start.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	second := exec.CommandContext(ctx, bin, "up", "--data-dir", filepath.Join(t.TempDir(), "data"), "--api-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--https-addr", "", "--pod-ip-range", "127.22.254.0/24", "--service-ip-range", svcRange)
	second.Env = p.env()
	out, err := second.CombinedOutput()
	wantUp := fmt.Sprintf("error: refusing to start: --service-ip-range %s: pid %d (slipway) already listens on %s, inside this range: most likely another Slipway on this machine uses it", svcRange, p.cmd.Process.Pid, addr)
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), wantUp) || !strings.Contains(string(out), "e.g. --service-ip-range ") {
		t.Errorf("second slipway up on %s: %v\n%s\nwant exit 1 and %q", svcRange, err, out, wantUp)
	}
}

package dataplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/proxy"
)

const helperListenVar = "SLIPWAY_DATAPLANE_HELPER_LISTEN"

// TestHelperListener holds the address in $SLIPWAY_DATAPLANE_HELPER_LISTEN
// until its stdin closes: another process on the machine, as a second
// Slipway would be. It does nothing unless TestVIPInUse starts it.
func TestHelperListener(t *testing.T) {
	addr := os.Getenv(helperListenVar)
	if addr == "" {
		t.Skip("helper process for TestVIPInUse")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(2)
	}
	fmt.Println("LISTENING")
	bufio.NewReader(os.Stdin).ReadString('\n')
	ln.Close()
	os.Exit(0)
}

// TestVIPInUse: a VIP:port another process holds gives the Service
// VIPBound False, reason AddressInUse, a message naming the address and
// the process; once the process lets go, the proxy listens (retried with
// no other change) and the condition is removed.
func TestVIPInUse(t *testing.T) {
	e := start(t, false)
	ctx := context.Background()
	const vip = "127.30.253.1"
	port := freePort(t, vip)
	addr := net.JoinHostPort(vip, fmt.Sprint(port))

	helper := exec.Command(os.Args[0], "-test.run=^TestHelperListener$")
	helper.Env = append(os.Environ(), helperListenVar+"="+addr)
	stdin, _ := helper.StdinPipe()
	stdout, _ := helper.StdoutPipe()
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	defer helper.Wait()
	defer stdin.Close()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "LISTENING\n" {
		t.Fatalf("helper: %q", line)
	}

	e.service(t, "web", vip, port)
	condition := func() *api.Condition {
		o, err := e.reg.Get(ctx, serviceKind, "default", "web")
		if err != nil {
			t.Fatal(err)
		}
		return api.FindCondition(o.(*api.Service).Status.Conditions, ConditionVIPBound)
	}
	want := fmt.Sprintf("cannot listen on %s: another process holds it: pid %d (dataplane.test): another Slipway on this machine may be using the same --service-ip-range; tried again every few seconds", addr, helper.Process.Pid)
	eventually(t, "VIPBound False, AddressInUse", func() string {
		if c := condition(); c == nil || c.Status != api.ConditionFalse || c.Reason != VIPAddressInUse || c.Message != want {
			return fmt.Sprintf("condition %+v; want False %s %q", c, VIPAddressInUse, want)
		}
		return ""
	})

	stdin.Close()
	helper.Wait()
	eventually(t, "VIPBound gone once the address is free", func() string {
		if c := condition(); c != nil {
			return fmt.Sprintf("condition %+v", c)
		}
		return ""
	})
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Errorf("the proxy does not listen on %s: %v", addr, err)
	} else {
		c.Close()
	}
}

func TestVIPConditions(t *testing.T) {
	vip := netip.MustParseAddr("127.30.0.9")
	inUse := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	err := errors.Join(
		errors.New("service p/udp port 53: protocol UDP is not supported by the service proxy (TCP only)"),
		&proxy.ListenError{Service: "p/busy", Addr: netip.AddrPortFrom(vip, 82), Err: inUse},
		&proxy.ListenError{Service: "p/busy", Addr: netip.AddrPortFrom(vip, 81), Err: inUse, Holder: &proxy.Socket{PID: 77, Command: "slipway"}},
		&proxy.ListenError{Service: "p/denied", Addr: netip.AddrPortFrom(vip, 83), Err: os.ErrPermission},
	)
	got := VIPConditions(err)
	for key, want := range map[string]string{
		"p/ok":     "",
		"p/udp":    "",
		"p/busy":   "False AddressInUse: cannot listen on 127.30.0.9:81: another process holds it: pid 77 (slipway): another Slipway on this machine may be using the same --service-ip-range; cannot listen on 127.30.0.9:82: address already in use by another socket; tried again every few seconds",
		"p/denied": "False ListenFailed: cannot listen on 127.30.0.9:83: permission denied; tried again every few seconds",
	} {
		c, ok := got[key]
		s := ""
		if ok {
			s = c.Status + " " + c.Reason + ": " + c.Message
		}
		if s != want || ok && c.Type != ConditionVIPBound {
			t.Errorf("%s: %q (type %q); want %q", key, s, c.Type, want)
		}
	}
	if len(got) != 2 {
		t.Errorf("conditions for %d services, want 2 (the failing ones): %v", len(got), got)
	}
}

package proxy

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// TestListenConflictReported: a VIP:port another socket holds is reported
// as a *ListenError naming the service, the address and, from /proc, the
// holder; the rest is served, and the next Apply after the holder let go
// listens.
func TestListenConflictReported(t *testing.T) {
	p := newProxy(t)
	vip, free := freeVIP(t), freeVIP(t)
	holder, err := net.Listen("tcp", vip.String())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	a := startBackend(t, "a")
	tb := oneService(vip, a.addr)
	tb.Services = append(tb.Services, Service{Key: "default/free", VIP: free.Addr(), Ports: []Port{{Port: free.Port(), Endpoints: []netip.AddrPort{a.addr}}}})
	err = p.Apply(tb)
	le, ok := errors.AsType[*ListenError](err)
	if !ok || le.Service != "default/test" || le.Addr != vip || !le.InUse() {
		t.Fatalf("Apply with %s held elsewhere = %v; want a *ListenError in use for default/test", vip, err)
	}
	if le.Holder == nil || le.Holder.PID != os.Getpid() || le.Holder.Addr != vip {
		t.Errorf("holder = %+v; want this test process (pid %d) on %s", le.Holder, os.Getpid(), vip)
	}
	if msg := le.Error(); !strings.Contains(msg, "cannot listen on "+vip.String()+": listen tcp "+vip.String()+": bind: address already in use (held by pid ") {
		t.Errorf("message = %q", msg)
	}
	if got := servedBy(dial(t, free).mustGet(t, "/")); got != "a" {
		t.Errorf("the other service is not served: %q", got)
	}
	holder.Close()
	mustApply(t, p, tb)
	if got := servedBy(dial(t, vip).mustGet(t, "/")); got != "a" {
		t.Errorf("%s not served once it was free: %q", vip, got)
	}
}

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{"0100007F:0050": "127.0.0.1:80", "011E1E7F:1F90": "127.30.30.1:8080", "00000000:0016": "", "zz:1": ""} {
		got, ok := parseProcAddr(in)
		if (want == "") != !ok || ok && got.String() != want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %q", in, got, ok, want)
		}
	}
}

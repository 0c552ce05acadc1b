package server

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/proxy"
)

// A service range in which another socket listens makes `slipway up`
// refuse to start, naming the holder, the address, the flag and a free
// range to pass; once nothing listens there it starts.
func TestServiceRangeHeldRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("listening sockets are read from /proc")
	}
	pods := netip.MustParsePrefix("127.20.0.0/16")
	// A /24 of 127.33.0.0/16 nothing listens in now (other tests may run).
	socks, err := proxy.ListeningIn(netip.MustParsePrefix("127.33.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	var r netip.Prefix
	for i := 1; i < 250 && !r.IsValid(); i++ {
		p := netip.MustParsePrefix(fmt.Sprintf("127.33.%d.0/24", i))
		if !strings.Contains(fmt.Sprint(socks), fmt.Sprintf("127.33.%d.", i)) {
			r = p
		}
	}
	if err := checkServiceRange("process", r, pods); err != nil {
		t.Fatalf("a range nothing listens in: %v", err)
	}
	vip := r.Addr().Next()
	ln, err := net.Listen("tcp", vip.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = checkServiceRange("process", r, pods)
	want := fmt.Sprintf("refusing to start: --service-ip-range %s: pid %d (%s) already listens on %s, inside this range: most likely another Slipway on this machine uses it",
		r, os.Getpid(), procName(t), ln.Addr())
	if err == nil || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "e.g. --service-ip-range 127.33.") {
		t.Fatalf("a range with a listener:\n%v\nwant it to start %q and suggest a free range", err, want)
	}
	ln.Close()
	if err := checkServiceRange("process", r, pods); err != nil {
		t.Errorf("once the listener closed: %v", err)
	}
}

func procName(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestFreeRange(t *testing.T) {
	sock := func(a string) proxy.Socket { return proxy.Socket{Addr: netip.MustParseAddrPort(a)} }
	loop := netip.MustParsePrefix("127.0.0.0/8")
	notPods := func(p netip.Prefix) bool { return !p.Overlaps(netip.MustParsePrefix("127.31.0.0/16")) }
	for _, tc := range []struct {
		r     string
		socks []proxy.Socket
		want  string
	}{
		{"127.30.0.0/16", []proxy.Socket{sock("127.30.0.1:80")}, "127.32.0.0/16"}, // 127.31 is the pods'
		{"127.30.0.0/16", []proxy.Socket{sock("127.30.0.1:80"), sock("127.32.9.9:1")}, "127.33.0.0/16"},
		{"127.255.0.0/16", nil, "127.0.0.0/16"}, // wraps around
		{"127.32.7.0/24", []proxy.Socket{sock("127.32.8.3:1")}, "127.32.9.0/24"},
	} {
		got, ok := freeRange(netip.MustParsePrefix(tc.r), loop, tc.socks, notPods)
		if !ok || got.String() != tc.want {
			t.Errorf("freeRange(%s) = %v, %v; want %s", tc.r, got, ok, tc.want)
		}
	}
}

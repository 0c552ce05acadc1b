package process

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/runtime"
)

func TestIPAMSkipsNetworkAndBroadcastLikeAddresses(t *testing.T) {
	a := newIPAM(netip.MustParsePrefix("127.20.0.0/16"))
	a.portsFree = nil // the sequence, not what this machine holds right now
	var last netip.Addr
	for i := range 255 {
		ip, err := a.allocate("p"+string(rune(i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if b := ip.As4(); b[3] == 0 || b[3] == 255 {
			t.Fatalf("allocated %s", ip)
		}
		last = ip
	}
	// 127.20.0.1 to .254 are 254 addresses; the 255th skips .0.255 and .1.0.
	if last != netip.MustParseAddr("127.20.1.1") {
		t.Errorf("255th address %s, want 127.20.1.1", last)
	}
}

func TestIPAMSmallRangeAndWrap(t *testing.T) {
	a := newIPAM(netip.MustParsePrefix("127.21.253.16/29")) // .17 to .22
	a.portsFree = nil
	var got []string
	for _, uid := range []string{"a", "b", "c", "d", "e", "f"} {
		ip, err := a.allocate(uid, nil)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "127.21.253.17 127.21.253.18 127.21.253.19 127.21.253.20 127.21.253.21 127.21.253.22" {
		t.Errorf("allocated %v", got)
	}
	if _, err := a.allocate("g", nil); err == nil {
		t.Error("allocated past the end of the range")
	}
	a.release(netip.MustParseAddr("127.21.253.18"))
	if ip, err := a.allocate("h", nil); err != nil || ip.String() != "127.21.253.18" {
		t.Errorf("after a release: %v %v, want 127.21.253.18 (the search wraps)", ip, err)
	}
	if err := a.reserve(netip.MustParseAddr("127.21.253.17"), "other"); err == nil {
		t.Error("reserve of an address held by another pod succeeded")
	}
}

func TestValidateIPRange(t *testing.T) {
	for in, ok := range map[string]bool{
		"127.20.0.0/16": true, "127.21.0.8/29": true, "127.128.0.0/9": true,
		"127.0.0.0/8": false, "127.0.0.0/24": false, "127.21.0.0/30": false,
		"10.0.0.0/8": false, "127.21.0.1/24": false, "::1/128": false,
	} {
		if err := validateIPRange(netip.MustParsePrefix(in)); (err == nil) != ok {
			t.Errorf("validateIPRange(%s) = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestAllocateSkipsAddressesWhereThePortsAreTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.20.250.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := runtime.Port{Number: int32(netip.MustParseAddrPort(ln.Addr().String()).Port()), Protocol: "TCP"}
	a := newIPAM(netip.MustParsePrefix("127.20.250.0/24"))
	ip, err := a.allocate("pod-a", []runtime.Port{port})
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("127.20.250.2") {
		t.Fatalf("allocated %s, want 127.20.250.2 (port %d of 127.20.250.1 is held by another socket)", ip, port.Number)
	}
	// Another port of the same address is free: a pod using it may have it.
	fresh := newIPAM(netip.MustParsePrefix("127.20.250.0/24"))
	if ip, _ := fresh.allocate("pod-b", []runtime.Port{{Number: port.Number + 1, Protocol: "TCP"}}); ip != netip.MustParseAddr("127.20.250.1") {
		t.Fatalf("a pod on another port got %s, want 127.20.250.1", ip)
	}
}

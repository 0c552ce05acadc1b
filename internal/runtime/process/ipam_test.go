package process

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestIPAMSkipsNetworkAndBroadcastLikeAddresses(t *testing.T) {
	a := newIPAM(netip.MustParsePrefix("127.20.0.0/16"))
	a.inUse = nil // the sequence, not what this machine holds right now
	var last netip.Addr
	for i := range 255 {
		ip, err := a.allocate("p" + string(rune(i)))
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
	a.inUse = nil
	var got []string
	for _, uid := range []string{"a", "b", "c", "d", "e", "f"} {
		ip, err := a.allocate(uid)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip.String())
	}
	if strings.Join(got, " ") != "127.21.253.17 127.21.253.18 127.21.253.19 127.21.253.20 127.21.253.21 127.21.253.22" {
		t.Errorf("allocated %v", got)
	}
	if _, err := a.allocate("g"); err == nil {
		t.Error("allocated past the end of the range")
	}
	a.release(netip.MustParseAddr("127.21.253.18"))
	if ip, err := a.allocate("h"); err != nil || ip.String() != "127.21.253.18" {
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

func TestAllocateSkipsAddressesOtherProcessesHold(t *testing.T) {
	ln, err := net.Listen("tcp", "127.20.250.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if !boundAddrs()[netip.MustParseAddr("127.20.250.1")] {
		t.Fatal("boundAddrs does not see a listening socket on 127.20.250.1")
	}
	a := newIPAM(netip.MustParsePrefix("127.20.250.0/24"))
	ip, err := a.allocate("pod-a")
	if err != nil {
		t.Fatal(err)
	}
	if ip != netip.MustParseAddr("127.20.250.2") {
		t.Fatalf("allocated %s, want 127.20.250.2 (127.20.250.1 is held by another socket)", ip)
	}
}

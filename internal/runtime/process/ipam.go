package process

import (
	"fmt"
	"net"
	"net/netip"

	"slipway.dev/slipway/internal/runtime"
)

// DefaultIPRange is where pod addresses come from. Linux routes all of
// 127.0.0.0/8 to lo, so every address in it can be bound without setup.
var DefaultIPRange = netip.MustParsePrefix("127.20.0.0/16")

// ipam hands out pod addresses. Its durable record is the sandbox files
// (each holds its address, written before CreateSandbox returns), so a crash
// can neither leak an address nor hand one out twice. Not safe for
// concurrent use: the driver's mutex guards it.
type ipam struct {
	prefix netip.Prefix
	used   map[netip.Addr]string // address → pod UID
	// next is where the search starts: addresses are not reused right after
	// release, so a stale endpoint is less likely to reach a newer pod.
	next netip.Addr
	// portsFree reports whether the pod's ports can be bound on an address
	// (nil: assume so). It keeps a pod from getting an address where
	// another Slipway, or a process left by one, already holds its ports.
	portsFree func(ip netip.Addr, ports []runtime.Port) bool
}

func validateIPRange(p netip.Prefix) error {
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return fmt.Errorf("IPRange: %s: must be an IPv4 prefix such as 127.20.0.0/16", p)
	case p != p.Masked():
		return fmt.Errorf("IPRange: %s: must be a network address (%s)", p, p.Masked())
	case !loopback.Contains(p.Addr()) || p.Bits() < 8:
		return fmt.Errorf("IPRange: %s: must lie inside 127.0.0.0/8, the loopback range Linux routes to lo", p)
	case p.Contains(netip.MustParseAddr("127.0.0.1")):
		return fmt.Errorf("IPRange: %s: must not contain 127.0.0.1, which the host's own services use", p)
	case p.Bits() > 29:
		return fmt.Errorf("IPRange: %s: must be /29 or larger to hold any pod", p)
	}
	return nil
}

func newIPAM(p netip.Prefix) *ipam {
	return &ipam{prefix: p, used: map[netip.Addr]string{}, next: p.Addr(), portsFree: portsFree}
}

// usable skips the network address, the last address and any address
// ending in .0 or .255, which tools commonly take for network or broadcast
// addresses even on loopback.
func (a *ipam) usable(ip netip.Addr) bool {
	b := ip.As4()
	if b[3] == 0 || b[3] == 255 {
		return false
	}
	return a.prefix.Contains(ip) && ip != a.prefix.Addr() && a.prefix.Contains(ip.Next())
}

// reserve records an address held by a loaded sandbox. Addresses outside the
// current range (the range was changed) stay with their pods but do not
// constrain new allocations.
func (a *ipam) reserve(ip netip.Addr, uid string) error {
	if other, ok := a.used[ip]; ok && other != uid {
		return fmt.Errorf("address %s is recorded for both pod %s and pod %s", ip, other, uid)
	}
	a.used[ip] = uid
	return nil
}

func (a *ipam) allocate(uid string, ports []runtime.Port) (netip.Addr, error) {
	size := 1 << (32 - a.prefix.Bits())
	ip := a.next
	for range size {
		if !a.prefix.Contains(ip) {
			ip = a.prefix.Addr()
		}
		if _, taken := a.used[ip]; !taken && a.usable(ip) && (a.portsFree == nil || a.portsFree(ip, ports)) {
			a.used[ip] = uid
			a.next = ip.Next()
			return ip, nil
		}
		ip = ip.Next()
	}
	return netip.Addr{}, fmt.Errorf("no free pod address left in %s (%d in use)", a.prefix, len(a.used))
}

func (a *ipam) release(ip netip.Addr) { delete(a.used, ip) }

// portsFree tries to bind each port on ip and releases it at once. A few
// bind calls cost microseconds, where reading /proc/net/tcp on a busy
// machine (tens of thousands of sockets) costs tens of milliseconds.
func portsFree(ip netip.Addr, ports []runtime.Port) bool {
	for _, p := range ports {
		addr := netip.AddrPortFrom(ip, uint16(p.Number)).String()
		if p.Protocol == "UDP" {
			c, err := net.ListenPacket("udp", addr)
			if err != nil {
				return false
			}
			c.Close()
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}

package services

import (
	"net/netip"
)

// DefaultVIPRange is where service virtual IPs come from. Linux routes all
// of 127.0.0.0/8 to lo, so any address in it can be bound without setup;
// pods take theirs from 127.20.0.0/16, so the two never meet.
var DefaultVIPRange = netip.MustParsePrefix("127.30.0.0/16")

// firstFreeVIP returns the lowest address of r, other than the network and
// the last address, that used does not hold. Deterministic first-free keeps
// VIPs predictable in tests and docs; an address is reused only after the
// service holding it is gone.
func firstFreeVIP(r netip.Prefix, used map[netip.Addr]bool) (netip.Addr, bool) {
	r = r.Masked()
	for a := r.Addr().Next(); a.IsValid() && r.Contains(a); a = a.Next() {
		if !r.Contains(a.Next()) {
			break // the last address of the range: broadcast by convention
		}
		if !used[a] {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// validVIP reports whether s is an address of r that a service may keep.
func validVIP(r netip.Prefix, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || !r.Contains(a) || a == r.Masked().Addr() || !r.Contains(a.Next()) {
		return netip.Addr{}, false
	}
	return a, true
}

package server

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"slipway.dev/slipway/internal/proxy"
	"slipway.dev/slipway/internal/runtime/docker"
)

// checkServiceRange refuses a service range in which another process
// already listens: most likely another Slipway on this machine using the
// same range, whose addresses this one would give out again, so that
// neither could serve the service that lost. The error names the holder
// and a range nothing listens in, to pass with the flag. Where listening
// sockets cannot be listed (not Linux) nothing is checked: the services'
// VIPBound condition still tells a conflict.
func checkServiceRange(rt string, r, pods netip.Prefix) error {
	space := netip.MustParsePrefix("127.0.0.0/8")
	candidate := func(p netip.Prefix) bool { return !p.Overlaps(pods) }
	if rt == "docker" {
		space = docker.DefaultSubnet
		candidate = func(p netip.Prefix) bool { return docker.CheckServiceRange(docker.DefaultSubnet, p) == nil }
	}
	held, err := proxy.ListeningIn(r)
	if errors.Is(err, errors.ErrUnsupported) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("--service-ip-range %s: cannot tell whether another process listens in it: %w", r, err)
	}
	if len(held) == 0 {
		return nil
	}
	socks, _ := proxy.ListeningIn(space) // for a free range to suggest
	slices.SortFunc(held, func(a, b proxy.Socket) int { return a.Addr.Compare(b.Addr) })
	more := ""
	if len(held) > 1 {
		more = fmt.Sprintf(" (and %d more)", len(held)-1)
	}
	hint := "pass --service-ip-range with a range of its own"
	if free, ok := freeRange(r, space, socks, candidate); ok {
		hint = fmt.Sprintf("start this one with a range of its own, e.g. --service-ip-range %s (nothing listens there now)", free)
	}
	return fmt.Errorf("refusing to start: --service-ip-range %s: %s already listens on %s%s, inside this range: most likely another Slipway on this machine uses it, and this one would give its services the same addresses; %s",
		r, held[0].Process(), held[0].Addr, more, hint)
}

// freeRange returns the first range after r of its size, inside space and
// acceptable to ok, in which no socket of socks listens.
func freeRange(r, space netip.Prefix, socks []proxy.Socket, ok func(netip.Prefix) bool) (netip.Prefix, bool) {
	if !r.Addr().Is4() || r.Bits() < space.Bits() {
		return netip.Prefix{}, false
	}
	size := uint32(1) << (32 - r.Bits())
	n := uint32(1) << (r.Bits() - space.Bits()) // ranges of r's size in space
	base := space.Masked().Addr().As4()
	start := r.Masked().Addr().As4()
	b, s := u32(base), u32(start)
	for i := uint32(1); i < n && i <= 1024; i++ {
		off := (s - b + i*size) % (n * size)
		cand := netip.PrefixFrom(addr4(b+off), r.Bits())
		if !ok(cand) || slices.ContainsFunc(socks, func(so proxy.Socket) bool { return cand.Contains(so.Addr.Addr()) }) {
			continue
		}
		return cand, true
	}
	return netip.Prefix{}, false
}

func u32(a [4]byte) uint32 {
	return uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
}

func addr4(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

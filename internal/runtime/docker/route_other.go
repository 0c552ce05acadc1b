//go:build !linux

package docker

import (
	"errors"
	"net/netip"
)

// addLocalRoute needs Linux's rtnetlink; elsewhere the engine runs in a VM
// whose bridge the host does not share.
func addLocalRoute(netip.Prefix) error {
	return errors.New("owning a service range needs Linux (the engine's bridge on this host)")
}

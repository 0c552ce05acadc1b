//go:build !linux

package proxy

import (
	"errors"
	"net/netip"
)

// ListeningIn is Linux's only (it reads /proc): elsewhere it returns
// errors.ErrUnsupported.
func ListeningIn(p netip.Prefix) ([]Socket, error) {
	return nil, errors.ErrUnsupported
}

package proxy

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// ListenError is Apply's report of a VIP:port it could not listen on. The
// listen is tried again at every Apply.
type ListenError struct {
	Service string // the Service's Key
	Addr    netip.AddrPort
	Err     error
	// Holder is the process listening on Addr when the address is in use
	// and /proc tells who (nil otherwise).
	Holder *Socket
}

func (e *ListenError) Error() string {
	msg := fmt.Sprintf("service %s: cannot listen on %s: %v", e.Service, e.Addr, e.Err)
	if e.Holder != nil {
		msg += fmt.Sprintf(" (held by %s)", e.Holder.Process())
	}
	return msg
}

func (e *ListenError) Unwrap() error { return e.Err }

// InUse tells whether another socket holds the address.
func (e *ListenError) InUse() bool { return errors.Is(e.Err, syscall.EADDRINUSE) }

// Socket is a listening TCP socket of this machine and, when it can be
// told, the process that holds it.
type Socket struct {
	Addr    netip.AddrPort
	PID     int    // 0 when unknown
	Command string // the process's name (/proc/<pid>/comm)
}

// Process names the socket's process for a person: `pid 4242 (slipway)`,
// or `an unknown process` when /proc does not tell.
func (s Socket) Process() string {
	if s.PID == 0 {
		return "an unknown process"
	}
	return fmt.Sprintf("pid %d (%s)", s.PID, s.Command)
}

func listenError(service string, addr netip.AddrPort, err error) *ListenError {
	le := &ListenError{Service: service, Addr: addr, Err: err}
	if le.InUse() {
		if socks, _ := ListeningIn(netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())); len(socks) > 0 {
			for _, s := range socks {
				if s.Addr.Port() == addr.Port() {
					le.Holder = &s
					break
				}
			}
		}
	}
	return le
}

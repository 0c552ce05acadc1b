//go:build unix

package fast

import (
	"net"
	"syscall"
)

// connAlive peeks at an idle upstream connection without blocking: a
// connection the app closed reads EOF (or has bytes nobody asked for) and
// must not carry a request.
func connAlive(c net.Conn) bool {
	rc := rawConnOf(c)
	if rc == nil {
		return true
	}
	alive := true
	var b [1]byte
	err := rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		_ = n
		alive = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true // never wait for readiness
	})
	return err == nil && alive
}

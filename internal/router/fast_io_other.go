//go:build !unix

package router

import (
	"net"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

func writeThenRead(_ syscall.RawConn, c net.Conn, out, p []byte) (int, error) {
	if _, err := c.Write(out); err != nil {
		return 0, err
	}
	return c.Read(p)
}

func (cc *clientConn) driveRaw(syscall.RawConn) (int, error) { return cc.drivePlain() }

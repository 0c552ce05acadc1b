//go:build !unix

package fast

import (
	"net"
	"syscall"
)

func rawConnOf(net.Conn) syscall.RawConn { return nil }

type rawExchange struct{}

func (uc *upConn) writeThenRead(out, p []byte) (int, error) {
	if _, err := uc.c.Write(out); err != nil {
		return 0, err
	}
	return uc.c.Read(p)
}

func (cc *clientConn) driveRaw(syscall.RawConn) (int, error) { return cc.drivePlain() }

type clientWriter struct{ cc *clientConn }

func (w clientWriter) Write(p []byte) (int, error) { return w.cc.fc.c.Write(p) }

//go:build unix

package fast

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"
)

// sysRead and sysWrite are read(2) and write(2) on a non-blocking socket,
// without telling the scheduler: they never block, so the runtime has no
// reason to hand the P to another thread meanwhile (as syscall.Read and
// Write let it do when a loopback write, which delivers the bytes within
// the call, outlasts a tick of sysmon), and they spare its bookkeeping.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno)  { return sysIO(syscall.SYS_READ, fd, p) }
func sysWrite(fd uintptr, p []byte) (int, syscall.Errno) { return sysIO(syscall.SYS_WRITE, fd, p) }

func sysIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// clientWriter writes a client's answers: straight to the descriptor
// while driveRaw's callback holds it, through the connection otherwise
// (and for what the socket cannot take at once).
type clientWriter struct{ cc *clientConn }

func (w clientWriter) Write(p []byte) (int, error) {
	cc := w.cc
	if cc.fd < 0 {
		return cc.fc.c.Write(p)
	}
	n := 0
	for n < len(p) {
		m, e := sysWrite(uintptr(cc.fd), p[n:])
		n += m
		switch e {
		case 0:
		case syscall.EINTR:
		case syscall.EAGAIN:
			m, err := cc.fc.c.Write(p[n:])
			return n + m, err
		default:
			return n, os.NewSyscallError("write", e)
		}
	}
	return n, nil
}

// rawConnOf is the connection's descriptor access, or nil where the
// connection has none (then the fast engine does plain reads and writes).
func rawConnOf(c net.Conn) syscall.RawConn {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok { // the endpoint's tracking (trackConn)
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// writeThenRead writes out to the connection and reads its peer's answer
// into p, without the read that a Write followed by a Read costs before
// the answer can have come.
//
// Go's poller forgets a descriptor's read readiness at the start of every
// Read and then tries the read, so that nothing that arrived before is
// missed; on a request/answer connection that first read nearly always
// fails with EAGAIN, a system call per request for nothing. Here the
// readiness is reset before the request is written, inside RawConn.Read:
// the answer can only come after the write, so the poller's notice of it
// cannot be lost, and the first read happens when the poller says there
// is something to read. A write the socket cannot take whole (its buffer
// full) is finished through the poller, followed by an ordinary read.
//
// It is for connections whose peer sends nothing unasked (an HTTP/1.1
// server): bytes or an end that came before the call are only seen with
// the next event (the peer's answer, or the reset its closed socket sends
// back to the request).
func (uc *upConn) writeThenRead(out, p []byte) (int, error) {
	x := &uc.x
	step := x.step
	if step == nil {
		step = x.run // one closure for the connection's life
	}
	*x = rawExchange{out: out, p: p, step: step}
	rerr := uc.rc.Read(x.step)
	n, wn, err := x.n, x.wn, x.err
	x.out, x.p = nil, nil
	if rerr != nil {
		return 0, rerr
	}
	if err != nil || n > 0 {
		return n, err
	}
	if _, err := uc.c.Write(out[wn:]); err != nil {
		return 0, err
	}
	return uc.c.Read(p)
}

// rawExchange is writeThenRead's state, kept in the connection so that
// the callback RawConn.Read takes is made once.
type rawExchange struct {
	out, p  []byte
	n, wn   int
	err     error
	written bool
	step    func(fd uintptr) bool
}

func (x *rawExchange) run(fd uintptr) bool {
	if !x.written {
		x.written = true
		for x.wn < len(x.out) {
			m, e := sysWrite(fd, x.out[x.wn:])
			x.wn += m
			switch e {
			case 0:
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true // the rest through the poller, in writeThenRead
			default:
				x.err = os.NewSyscallError("write", e)
				return true
			}
		}
		return false // wait for the answer
	}
	for {
		m, e := sysRead(fd, x.p)
		switch e {
		case 0:
			if m == 0 {
				x.err = io.EOF
			}
			x.n = m
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			x.err = os.NewSyscallError("read", e)
			return true
		}
	}
}

// driveRaw serves the connection from inside RawConn.Read, so that the
// poller never forgets that the client sent something: requests are
// served inside the callback, and when a request is answered and the read
// that brought it took all the socket held, the callback waits for the
// poller's word rather than try a read that would fail with EAGAIN (as
// HAProxy reads what epoll reported). A pipelined request that came
// meanwhile left the descriptor marked ready, and the wait returns at
// once.
//
// The one thing such a wait can miss is an end of stream that came with
// the request, in the same readiness: a client that half-closes after its
// request. So the wait lasts IdleGlance at most; then a real read
// looks, and the connection waits on as usual (or ends, on EOF).
func (cc *clientConn) driveRaw(rc syscall.RawConn) (step int, rerr error) {
	pending := false // advance asked for bytes: read before advancing again
	drained := false // the last read took all the socket held
	glance := false  // waiting without a read, for IdleGlance
	cb := func(fd uintptr) bool {
		cc.fd = int(fd)
		defer func() { cc.fd = -1 }()
		for {
			if !pending {
				if step = cc.advance(); step != stepRead {
					return true
				}
				pending = true
				if drained && cc.reading == awaitIdle {
					// The request is answered; wait for the next.
					// A glance deadline with at least half of it left
					// stands (one timer change per connection every
					// half glance, not per request).
					glance = true
					if d := cc.now.Add(IdleGlance); d.Before(cc.deadline) {
						if cc.applied.After(d) || cc.applied.Before(cc.now.Add(IdleGlance/2)) {
							cc.fc.c.SetReadDeadline(d)
							cc.applied = d
						}
					} else {
						cc.applyDeadline()
					}
					return false
				}
				cc.applyDeadline()
			}
			glance = false
			space := len(cc.buf) - cc.n
			m, e := sysRead(fd, cc.buf[cc.n:])
			switch {
			case e == 0 && m == 0:
				rerr = io.EOF
				return true
			case e == 0:
			case e == syscall.EINTR:
				continue
			case e == syscall.EAGAIN:
				cc.applyDeadline()
				return false
			default:
				rerr = os.NewSyscallError("read", e)
				return true
			}
			cc.n += m
			drained = m < space
			pending = false
		}
	}
	for {
		err := rc.Read(cb)
		if err != nil && glance && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(cc.deadline) {
			glance, drained = false, false // read, then wait on
			cc.applyDeadline()
			continue
		}
		if err != nil {
			rerr = err
		}
		return step, rerr
	}
}

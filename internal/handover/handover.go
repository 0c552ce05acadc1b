// Package handover passes a running Slipway's listening sockets to the next
// generation of `slipway up` on the same data dir, so that an upgrade or a
// restart refuses no connection: both processes hold the same sockets (one
// accept queue each, shared), the new one starts accepting once its tables
// are built, and only then does the old one stop accepting and drain.
//
// The running generation (the owner) listens on a Unix socket in the data
// dir (SocketName; the dir is 0700 and a peer of another uid is refused).
// A new generation (the taker) connects and the two speak in packets
// (SOCK_SEQPACKET, one JSON message each, file descriptors attached with
// SCM_RIGHTS):
//
//	taker → owner  takeover {from: the taker's generation}
//	owner → taker  listeners {from, names, more} + fds   (batches of ≤ maxFDs)
//	taker → owner  release       stop the control plane, close the store
//	owner → taker  released      (the data plane serves on, from its last table)
//	taker → owner  drain         the taker serves: stop accepting, finish, exit
//	owner → taker  draining, then drained {report}
//
// A `slipway restart` (or SIGUSR2) asks the owner to start its binary again
// (restart → restarting {pid}); that process is a taker like any other, and
// the asker hears handedOver {to} or failed {error}.
//
// Until release nothing has changed: a taker that fails or goes away leaves
// the owner as it was. After release the owner's data plane goes on serving
// its last table without a control plane, and it still answers the socket,
// so that the next `slipway up` (the new binary fixed, or the old one
// again) takes over from it.
package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// SocketName is the hand-over socket's file in the data dir.
const SocketName = "handover.sock"

// Generation is one `slipway up` process on a data dir: the first start is
// 1, each hand-over adds one.
type Generation struct {
	Number  int    `json:"number"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
}

func (g Generation) String() string {
	return fmt.Sprintf("generation %d (version %s, pid %d)", g.Number, g.Version, g.PID)
}

// Report is what the old generation's drain did.
type Report struct {
	// Open is the connections open when it stopped accepting; Finished
	// those that ended by themselves (their last response said
	// Connection: close, or they were idle and closed at a response
	// boundary); Cut those still open at the deadline, closed then
	// (WebSockets with close frame 1001 first).
	Open, Finished, Cut int
	// Millis is how long the drain took.
	Millis int64
}

// Outcome names a drain's result for metrics and logs: "clean" when
// nothing was cut at the deadline, else "deadline".
func (r Report) Outcome() string {
	if r.Cut > 0 {
		return "deadline"
	}
	return "clean"
}

// message is one packet.
type message struct {
	Op     string      `json:"op"`
	From   *Generation `json:"from,omitempty"`
	To     *Generation `json:"to,omitempty"`
	Names  []string    `json:"names,omitempty"` // the listeners whose fds come with it
	More   bool        `json:"more,omitempty"`
	PID    int         `json:"pid,omitempty"`
	Error  string      `json:"error,omitempty"`
	Report *Report     `json:"report,omitempty"`
}

const (
	opTakeover   = "takeover"
	opListeners  = "listeners"
	opRelease    = "release"
	opReleased   = "released"
	opDrain      = "drain"
	opDraining   = "draining"
	opDrained    = "drained"
	opRestart    = "restart"
	opRestarting = "restarting"
	opHandedOver = "handedOver"
	opFailed     = "failed"
)

// maxFDs per packet: the kernel takes at most 253 (SCM_MAX_FD).
const maxFDs = 200

// maxPacket bounds one message; listener names are short.
const maxPacket = 64 << 10

// conn is one end of the socket.
type conn struct{ uc *net.UnixConn }

func (c conn) send(m message, fds []int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err = c.uc.WriteMsgUnix(b, oob, nil)
	return err
}

// recv reads one message and the descriptors that came with it, each
// close-on-exec.
func (c conn) recv() (message, []int, error) {
	b := make([]byte, maxPacket)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(b, oob)
	if err != nil {
		return message{}, nil, err
	}
	var fds []int
	if oobn > 0 {
		scms, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return message{}, nil, fmt.Errorf("hand-over: control message: %w", err)
		}
		for _, scm := range scms {
			got, err := unix.ParseUnixRights(&scm)
			if err != nil {
				closeFDs(fds)
				return message{}, nil, fmt.Errorf("hand-over: control message: %w", err)
			}
			fds = append(fds, got...)
		}
		for _, fd := range fds {
			unix.CloseOnExec(fd)
		}
	}
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		closeFDs(fds)
		return message{}, nil, errors.New("hand-over: a message was truncated")
	}
	if n == 0 {
		closeFDs(fds)
		return message{}, nil, errEOF
	}
	var m message
	if err := json.Unmarshal(b[:n], &m); err != nil {
		closeFDs(fds)
		return message{}, nil, fmt.Errorf("hand-over: bad message: %w", err)
	}
	if m.Op == opFailed {
		closeFDs(fds)
		return m, nil, &Error{Msg: m.Error}
	}
	return m, fds, nil
}

// expect reads one message, which must be op and carry no descriptors.
func (c conn) expect(op string) (message, error) {
	m, fds, err := c.recv()
	if err != nil {
		return m, err
	}
	closeFDs(fds)
	if m.Op != op {
		return m, fmt.Errorf("hand-over: got %q, want %q", m.Op, op)
	}
	return m, nil
}

var errEOF = errors.New("hand-over: the other side went away")

// Error is a refusal or failure the other side reported.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// peerIsUs refuses a peer of another uid: the data dir's mode keeps
// others out already; this holds even when it is wrong.
func peerIsUs(uc *net.UnixConn) error {
	rc, err := uc.SyscallConn()
	if err != nil {
		return err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }); err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("hand-over: refused a peer of uid %d (pid %d)", cred.Uid, cred.Pid)
	}
	return nil
}

// listenerFD duplicates ln's descriptor (close-on-exec): the duplicate
// shares the socket, which stays open while either process holds it.
func listenerFD(ln net.Listener) (int, error) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return -1, fmt.Errorf("hand-over: listener %s (%T) has no descriptor", ln.Addr(), ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	dup, derr := -1, error(nil)
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	return dup, derr
}

// fileListener makes a listener of a received descriptor (which it
// closes: net.FileListener keeps a duplicate of its own).
func fileListener(fd int, name string) (net.Listener, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("hand-over: listener %s: %w", name, err)
	}
	return ln, nil
}

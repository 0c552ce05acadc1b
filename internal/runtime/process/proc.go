package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procStat is what /proc/<pid>/stat says about a process. A pid alone does
// not identify a process (pids are reused); pid plus StartTicks plus the
// boot id does.
type procStat struct {
	State      byte
	PPID, PGID int
	// StartTicks is field 22: the start time in clock ticks since boot.
	StartTicks uint64
}

// live reports whether the process still runs (a zombie has ended).
func (s procStat) live() bool { return s.State != 'Z' && s.State != 'X' && s.State != 'x' }

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses /proc/<pid>/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return procStat{}, fmt.Errorf("parsing /proc stat: no ')' closing the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parsing /proc stat: %d fields after the command name, want at least 20", len(f))
	}
	if len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("parsing /proc stat: state %q is not one character", f[0])
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	ticks, err3 := strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return procStat{}, fmt.Errorf("parsing /proc stat: %w", err)
	}
	return procStat{State: f[0][0], PPID: ppid, PGID: pgid, StartTicks: ticks}, nil
}

func readBootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("reading boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// groupMembers lists the live processes of process group pgid that started
// no earlier than minTicks (so that, should the group id have been reused
// after the container's processes ended, older processes are never hit).
func groupMembers(pgid int, minTicks uint64) []int {
	if pgid <= 1 {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.PGID != pgid || !st.live() || st.StartTicks < minTicks {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

// killGroupMembers SIGKILLs what is left of a group whose leader has ended,
// and waits (bounded) until none of it runs. Zombies count as gone: they
// hold no port or memory, and only their parent (or init) can reap them.
func killGroupMembers(pgid int, minTicks uint64, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		pids := groupMembers(pgid, minTicks)
		if len(pids) == 0 {
			return true
		}
		for _, pid := range pids {
			if pid != os.Getpid() {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // back-off between scans of /proc, not synchronisation
	}
}

// openPidfd returns a pollable handle on pid, or an error when the kernel
// (before 5.3) or a seccomp filter refuses pidfd_open.
func openPidfd(pid int) (*os.File, error) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid)), nil
}

// pidfdFile makes the pidfd that StartProcess returned pollable.
func pidfdFile(fd, pid int) *os.File {
	if fd < 0 {
		return nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil
	}
	return os.NewFile(uintptr(fd), "pidfd:"+strconv.Itoa(pid))
}

// errWatchClosed: the watch ended because its pidfd was closed (Close).
var errWatchClosed = errors.New("watch closed")

// waitPidfd blocks until the process behind f has exited. It parks a
// goroutine in Go's poller rather than a thread in waitid, so hundreds of
// containers cost hundreds of goroutines, not threads. It does not reap.
func waitPidfd(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 0)
		if err != nil && err != unix.EINTR {
			perr = err
			return true
		}
		return n > 0
	})
	if errors.Is(err, os.ErrClosed) {
		return errWatchClosed
	}
	if err != nil {
		return err
	}
	return perr
}

// waitExitedChild blocks until our child pid has exited, leaving it
// unreaped (WNOWAIT): while it is a zombie its pid, and so its process group
// id, cannot be reused, which makes killing the rest of its group safe.
func waitExitedChild(pid int) error {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err
		}
	}
}

// pollGone waits for a process we cannot get a pidfd for, by polling /proc.
func pollGone(pid int, ticks uint64, stop <-chan struct{}) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		st, err := readStat(pid)
		if err != nil || st.StartTicks != ticks || !st.live() {
			return nil
		}
		select {
		case <-stop:
			return errWatchClosed
		case <-t.C:
		}
	}
}

// exitOf turns a wait status into the code and signal a status reports.
func exitOf(ws syscall.WaitStatus) (code, sig int) {
	if ws.Signaled() {
		return 128 + int(ws.Signal()), int(ws.Signal())
	}
	return ws.ExitStatus(), 0
}

package process

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/runtime"
)

// watchChild waits for a process we started, cleans up after it and
// records how it ended.
func (d *Driver) watchChild(c *container, cmd *exec.Cmd, pidf *os.File) {
	err := errors.New("no pidfd")
	if pidf != nil {
		err = waitPidfd(pidf)
		pidf.Close()
	}
	if err != nil {
		if err := waitExitedChild(c.pid); err != nil {
			d.log.Warn("waiting for container process", "pod", c.podUID, "container", c.name, "err", err)
		}
	}
	finished := d.clock.Now()
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()

	c.sigMu.Lock()
	if !closed { // after Close, the next driver owns the container
		// The leader is an unreaped zombie, so the group id is still its:
		// this reaches the container's leftovers and nothing else.
		_ = unix.Kill(-c.pgid, unix.SIGKILL)
	}
	_ = cmd.Wait()
	c.reaped = true
	c.sigMu.Unlock()
	if closed {
		return
	}
	killGroupMembers(c.pgid, c.ticks, 2*time.Second)
	d.cg.killAll(c.podUID, c.name, 2*time.Second)

	d.mu.Lock()
	st := c.status
	d.mu.Unlock()
	st.State, st.FinishedAt = runtime.StateExited, finished
	if ps := cmd.ProcessState; ps != nil {
		st.ExitCode, st.Signal = exitOf(ps.Sys().(syscall.WaitStatus))
		st.Reason = runtime.ReasonError
		if st.ExitCode == 0 {
			st.Reason = runtime.ReasonCompleted
		}
	} else {
		st.ExitCode, st.Reason, st.Message = -1, runtime.ReasonUnknown, "wait status not available"
	}
	d.markOOM(c, &st)
	d.finish(c, st)
}

func (d *Driver) markOOM(c *container, st *runtime.ContainerStatus) {
	if n, ok := d.cg.oomKills(c.podUID, c.name); ok && n > c.oomBase && st.ExitCode != 0 {
		st.OOMKilled, st.Reason = true, runtime.ReasonOOMKilled
		if st.ExitCode == -1 { // adopted: the OOM killer's signal is known
			st.ExitCode, st.Signal, st.Message = 128+int(unix.SIGKILL), int(unix.SIGKILL), ""
		}
	}
}

// finish records the end of a run and reports it.
func (d *Driver) finish(c *container, st runtime.ContainerStatus) {
	d.mu.Lock()
	c.status, c.phase = st, phaseExited
	if d.closed {
		d.mu.Unlock()
		close(c.done)
		return
	}
	d.finishing.Add(1)
	d.mu.Unlock()
	defer d.finishing.Done()
	if err := d.persist(c); err != nil {
		d.log.Error("recording a container's exit", "pod", c.podUID, "container", c.name, "err", err)
	}
	close(c.done)
	d.exits.Push(runtime.ExitEvent{PodUID: c.podUID, Name: c.name, Status: st})
}

// signal sends sig to the container's leader, through a handle that cannot
// name another process, and to its process group (the leader's forks),
// unless the leader is gone: its pid, the group's id, could then name
// someone else's group. Signalling the leader directly matters when it left
// its group (setsid) or when the group is not the one recorded.
func (d *Driver) signal(c *container, sig unix.Signal) {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if c.reaped {
		return
	}
	if !c.adopted {
		_ = c.proc.Signal(sig) // os.Process holds a pidfd
		_ = unix.Kill(-c.pgid, sig)
		return
	}
	// Not our child: it is alive (pid held) exactly when /proc still shows
	// it live with its start time.
	st, err := readStat(c.pid)
	if err != nil || st.StartTicks != c.ticks || !st.live() {
		return
	}
	if sig == unix.SIGKILL {
		c.killSent = true
	}
	sent := false
	if c.pidfd != nil {
		if rc, err := c.pidfd.SyscallConn(); err == nil {
			// Control, not Fd: Fd would switch the descriptor to blocking
			// mode under the watcher polling it.
			_ = rc.Control(func(fd uintptr) { sent = unix.PidfdSendSignal(int(fd), sig, nil, 0) == nil })
		}
	}
	if !sent {
		_ = unix.Kill(c.pid, sig)
	}
	if ownGroup(c) && st.PGID == c.pgid {
		_ = unix.Kill(-c.pgid, sig)
	}
}

// ownGroup reports whether the recorded group is the one the driver gave
// the container (led by its main process). Anything else, such as a damaged
// state file, must never reach kill(-pgid): -1 is every process, 0 our own.
func ownGroup(c *container) bool { return c.pgid == c.pid && c.pgid > 1 }

package process

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// Recover implements runtime.Driver. A container recorded as running is
// adopted only if a process with its pid, its start time (field 22 of
// /proc/<pid>/stat) and this boot's id is alive: a reused pid fails the
// start-time check and is never signalled.
func (d *Driver) Recover(ctx context.Context) ([]runtime.RecoveredSandbox, error) {
	d.recoverMu.Lock()
	defer d.recoverMu.Unlock()
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, runtime.ErrClosed
	}
	var todo, exited []*container
	for _, p := range d.pods {
		for _, c := range p.containers {
			switch c.phase {
			case phaseUnverified:
				todo = append(todo, c)
			case phaseExited:
				exited = append(exited, c)
			}
		}
	}
	d.mu.Unlock()

	for _, c := range todo {
		d.adopt(c)
	}
	// A Slipway killed between starting a process and recording it leaves
	// an unrecorded process behind; its cgroup gives it away.
	for _, c := range exited {
		if len(d.cg.procs(c.podUID, c.name)) > 0 {
			d.log.Warn("killing processes left in the cgroup of an exited container", "pod", c.podUID, "container", c.name)
			d.cg.killAll(c.podUID, c.name, 2*time.Second)
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]runtime.RecoveredSandbox, 0, len(d.pods))
	for _, p := range d.pods {
		select {
		case <-p.ready:
		default:
			continue // being created right now: not something to recover
		}
		if p.failed != nil {
			continue
		}
		rs := runtime.RecoveredSandbox{Pod: p.cfg, Sandbox: runtime.Sandbox{PodUID: p.cfg.UID, IP: p.ip}}
		for _, c := range p.containers {
			if c.phase == phaseStarting {
				continue
			}
			rs.Containers = append(rs.Containers, runtime.RecoveredContainer{Config: c.cfg, Status: c.snapshot()})
		}
		slices.SortFunc(rs.Containers, func(a, b runtime.RecoveredContainer) int { return strings.Compare(a.Config.Name, b.Config.Name) })
		out = append(out, rs)
	}
	slices.SortFunc(out, func(a, b runtime.RecoveredSandbox) int { return strings.Compare(a.Pod.UID, b.Pod.UID) })
	return out, nil
}

// adopt verifies one recorded process and watches it, or records that it
// ended while no Slipway watched.
func (d *Driver) adopt(c *container) {
	why := ""
	switch st, err := readStat(c.pid); {
	case c.bootID != d.bootID:
		why = "the machine restarted since it was started"
	case c.pid <= 1 || c.ticks == 0:
		why = "its pid or start time was never recorded"
	case err != nil:
		why = "its process is gone"
	case st.StartTicks != c.ticks:
		why = "its pid now belongs to another process"
	case !st.live():
		why = "its process has exited"
	}
	if why == "" {
		f, err := openPidfd(c.pid)
		if err == nil {
			// The pidfd pins the process; check it is still the one we
			// verified (the pid could have been reused just before).
			if st, serr := readStat(c.pid); serr != nil || st.StartTicks != c.ticks || !st.live() {
				f.Close()
				why, f = "its process has exited", nil
			}
		} else {
			d.log.Debug("pidfd_open unavailable; polling /proc for the adopted process", "pid", c.pid, "err", err)
			f = nil
		}
		if why == "" {
			d.mu.Lock()
			c.phase, c.adopted, c.pidfd = phaseRunning, true, f
			if d.closed {
				d.mu.Unlock()
				if f != nil {
					f.Close()
				}
				return
			}
			d.bg.Add(1)
			d.mu.Unlock()
			d.log.Info("adopted a running container", "pod", c.podUID, "container", c.name, "pid", c.pid)
			go d.watchAdopted(c, f)
			return
		}
	}
	d.log.Info("container ended while no Slipway watched it", "pod", c.podUID, "container", c.name, "pid", c.pid, "why", why)
	d.cg.killAll(c.podUID, c.name, 2*time.Second)
	d.mu.Lock()
	c.phase = phaseExited
	c.status.State, c.status.ExitCode, c.status.Signal = runtime.StateExited, -1, 0
	c.status.Reason = runtime.ReasonUnknown
	c.status.Message = "ended while no Slipway was watching (" + why + "); exit status and time unknown"
	d.mu.Unlock()
	close(c.done)
	if err := d.persist(c); err != nil {
		d.log.Error("recording a container's exit", "pod", c.podUID, "container", c.name, "err", err)
	}
}

// watchAdopted waits for a process we did not start. Not being its parent,
// we learn that it ended but not how, unless we killed it or the OOM killer
// did.
func (d *Driver) watchAdopted(c *container, f *os.File) {
	defer d.bg.Done()
	var err error = errNoPidfd
	if f != nil {
		err = waitPidfd(f)
		f.Close()
	}
	if d.stopping() {
		return
	}
	if err != nil {
		if pollGone(c.pid, c.ticks, d.stop) != nil {
			return // closed
		}
	}
	finished := d.clock.Now()
	if ownGroup(c) {
		killGroupMembers(c.pgid, c.ticks, 2*time.Second)
	}
	d.cg.killAll(c.podUID, c.name, 2*time.Second)

	c.sigMu.Lock()
	c.reaped = true
	killed := c.killSent
	c.sigMu.Unlock()
	d.mu.Lock()
	st := c.status
	d.mu.Unlock()
	st.State, st.FinishedAt = runtime.StateExited, finished
	st.ExitCode, st.Signal, st.Reason = -1, 0, runtime.ReasonUnknown
	st.Message = "adopted after a Slipway restart: its exit status cannot be observed by a process that is not its parent"
	if killed {
		// SIGKILL cannot be caught: if it was alive when we sent it, that
		// is how it ended.
		st.ExitCode, st.Signal, st.Reason, st.Message = 128+9, 9, runtime.ReasonError, "killed by Slipway after the grace period"
	}
	d.markOOM(c, &st)
	d.finish(c, st)
}

var errNoPidfd = errors.New("no pidfd")

func (d *Driver) stopping() bool {
	select {
	case <-d.stop:
		return true
	default:
		return false
	}
}

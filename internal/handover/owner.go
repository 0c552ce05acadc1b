package handover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Listener is one listening socket to hand over, by a name both
// generations agree on ("api", "http", "https", "proxy 127.30.0.1:80").
type Listener struct {
	Name string
	L    net.Listener
}

// Handler is the owner's part, which the composition root implements.
type Handler interface {
	// Listeners are the sockets to pass on now.
	Listeners() []Listener
	// Release stops the control plane and closes the store, leaving the
	// data plane serving its last tables. A second call (a taker failed
	// after the first) returns nil at once.
	Release(ctx context.Context) error
	// Drain stops accepting, lets what is in flight finish within the
	// drain timeout and cuts the rest; the process ends after it.
	Drain() Report
	// Restart starts this binary again as a new generation (which takes
	// over through this socket) and returns its pid and a channel that
	// gets its exit, should it end.
	Restart() (pid int, exited <-chan error, err error)
}

// Owner answers the hand-over socket for the running generation.
type Owner struct {
	path string
	me   Generation
	h    Handler
	log  *slog.Logger
	ln   *net.UnixListener
	ino  uint64

	mu      sync.Mutex
	busy    bool   // a takeover is in progress
	askers  []conn // `slipway restart`s waiting for the outcome
	drained chan struct{}
}

// Listen binds the socket at path for me and takes the path over from a
// previous owner (or a stale file a crash left): it binds a name of its
// own and renames it into place, so that a taker always finds an owner.
func Listen(path string, me Generation, h Handler, log *slog.Logger) (*Owner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tmp := path + "." + strconv.Itoa(os.Getpid())
	if len(tmp) > 107 {
		return nil, fmt.Errorf("hand-over socket %s: the path is longer than a Unix socket's 107 bytes: use a shorter --data-dir", path)
	}
	os.Remove(tmp)
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: tmp, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("hand-over socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		ln.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("hand-over socket: %w", err)
	}
	o := &Owner{path: path, me: me, h: h, log: log, ln: ln, drained: make(chan struct{})}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		o.ino = st.Ino
	}
	return o, nil
}

// Serve answers takers and restart requests until Close.
func (o *Owner) Serve() error {
	for {
		uc, err := o.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go o.serveConn(conn{uc})
	}
}

// Drained is closed once a taker has the report of this generation's
// drain: the process may end.
func (o *Owner) Drained() <-chan struct{} { return o.drained }

// Close stops answering, and removes the socket file if it is still this
// owner's (a taker renamed its own over it otherwise).
func (o *Owner) Close() error {
	err := o.ln.Close()
	if fi, serr := os.Stat(o.path); serr == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Ino == o.ino {
			os.Remove(o.path)
		}
	}
	return err
}

func (o *Owner) serveConn(c conn) {
	defer c.uc.Close()
	if err := peerIsUs(c.uc); err != nil {
		o.log.Warn("hand-over socket", "err", err)
		return
	}
	c.uc.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, fds, err := c.recv()
	closeFDs(fds)
	if err != nil {
		return
	}
	c.uc.SetReadDeadline(time.Time{})
	switch m.Op {
	case opTakeover:
		if m.From == nil {
			c.send(message{Op: opFailed, Error: "takeover without a generation"}, nil)
			return
		}
		o.mu.Lock()
		if o.busy {
			o.mu.Unlock()
			c.send(message{Op: opFailed, Error: fmt.Sprintf("%s is handing over to another process already", o.me)}, nil)
			return
		}
		o.busy = true
		o.mu.Unlock()
		done := o.takeover(c, *m.From)
		if !done {
			o.mu.Lock()
			o.busy = false
			o.mu.Unlock()
		}
	case opRestart:
		o.restart(c)
	default:
		c.send(message{Op: opFailed, Error: fmt.Sprintf("unknown request %q", m.Op)}, nil)
	}
}

// takeover runs the owner's side of one hand-over; it reports whether it
// went through (the owner is drained).
func (o *Owner) takeover(c conn, to Generation) bool {
	log := o.log.With("to", to.String())
	log.Info("a new generation takes over: handing over the listeners")
	lns := o.h.Listeners()
	var names []string
	var fds []int
	defer func() { closeFDs(fds) }()
	for _, l := range lns {
		fd, err := listenerFD(l.L)
		if err != nil {
			c.send(message{Op: opFailed, Error: err.Error()}, nil)
			return false
		}
		names, fds = append(names, l.Name), append(fds, fd)
	}
	for i := 0; i == 0 || i < len(fds); i += maxFDs {
		j := min(i+maxFDs, len(fds))
		me := o.me
		if err := c.send(message{Op: opListeners, From: &me, Names: names[i:j], More: j < len(fds)}, fds[i:j]); err != nil {
			log.Warn("hand-over failed before the store was released: serving on", "err", err)
			return false
		}
	}
	closeFDs(fds)
	fds = nil
	if _, err := c.expect(opRelease); err != nil {
		log.Warn("the new generation went away before it took the store: serving on", "err", err)
		o.fail(fmt.Sprintf("%s went away before it took the store (%v); %s serves on", to, err, o.me))
		return false
	}
	log.Info("releasing the store to the new generation: stopping the control plane; the data plane serves on")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	err := o.h.Release(ctx)
	cancel()
	if err != nil {
		c.send(message{Op: opFailed, Error: "releasing the store: " + err.Error()}, nil)
		o.fail(err.Error())
		return false
	}
	if err := c.send(message{Op: opReleased}, nil); err != nil {
		return false
	}
	if _, err := c.expect(opDrain); err != nil {
		log.Error("the new generation went away after it took the store: the router and the service proxy serve their last tables, with no control plane; run slipway up again to take over", "err", err)
		o.fail(fmt.Sprintf("%s went away after it took the store (%v): %s serves its last tables with no control plane; run slipway up again", to, err, o.me))
		return false
	}
	c.send(message{Op: opDraining}, nil)
	o.handedOver(to)
	log.Info("the new generation serves: draining")
	rep := o.h.Drain()
	log.Info("drained", "open", rep.Open, "finished", rep.Finished, "cut", rep.Cut, "took", time.Duration(rep.Millis)*time.Millisecond)
	c.send(message{Op: opDrained, Report: &rep}, nil)
	close(o.drained)
	return true
}

// restart starts the binary again; the asker hears how the takeover went.
func (o *Owner) restart(c conn) {
	o.mu.Lock()
	busy := o.busy
	o.mu.Unlock()
	if busy {
		c.send(message{Op: opFailed, Error: fmt.Sprintf("%s is handing over already", o.me)}, nil)
		return
	}
	pid, exited, err := o.h.Restart()
	if err != nil {
		c.send(message{Op: opFailed, Error: "starting the new generation: " + err.Error()}, nil)
		return
	}
	me := o.me
	if err := c.send(message{Op: opRestarting, PID: pid, From: &me}, nil); err != nil {
		return
	}
	wait := make(chan struct{})
	o.mu.Lock()
	o.askers = append(o.askers, c)
	o.mu.Unlock()
	go func() {
		// The new process ending before it took over fails the restart.
		select {
		case err := <-exited:
			o.fail(fmt.Sprintf("the new generation (pid %d) exited before it took over: %v", pid, err))
		case <-wait:
		}
	}()
	// Hold the connection until the outcome is sent (fail or handedOver
	// closes it) or the asker leaves.
	c.uc.SetReadDeadline(time.Time{})
	buf := make([]byte, 1)
	c.uc.Read(buf)
	close(wait)
}

func (o *Owner) fail(msg string) {
	o.tell(message{Op: opFailed, Error: msg})
}

func (o *Owner) handedOver(to Generation) {
	me := o.me
	o.tell(message{Op: opHandedOver, From: &me, To: &to})
}

func (o *Owner) tell(m message) {
	o.mu.Lock()
	askers := o.askers
	o.askers = nil
	o.mu.Unlock()
	for _, c := range askers {
		c.send(m, nil)
		c.uc.Close()
	}
}

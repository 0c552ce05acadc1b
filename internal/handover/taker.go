package handover

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// Takeover is the new generation's side of a hand-over in progress.
type Takeover struct {
	c conn
	// Old is the generation taking over from.
	Old Generation
	// Listeners are the sockets it passed on, by name. What the new
	// generation does not use, it closes (Close does, for those left).
	Listeners map[string]net.Listener
}

// Dial connects to the owner of the socket at path and receives its
// listeners. It returns (nil, nil) when no generation answers: no socket
// file, or one a dead process left.
func Dial(path string, me Generation) (*Takeover, error) {
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil
		}
		return nil, fmt.Errorf("hand-over socket %s: %w", path, err)
	}
	t := &Takeover{c: conn{uc}, Listeners: map[string]net.Listener{}}
	if err := t.receive(me); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Takeover) receive(me Generation) error {
	t.c.uc.SetDeadline(time.Now().Add(10 * time.Second))
	defer t.c.uc.SetDeadline(time.Time{})
	if err := t.c.send(message{Op: opTakeover, From: &me}, nil); err != nil {
		return fmt.Errorf("hand-over: %w", err)
	}
	for {
		m, fds, err := t.c.recv()
		if err != nil {
			return fmt.Errorf("hand-over: receiving the listeners: %w", err)
		}
		if m.Op != opListeners || m.From == nil || len(fds) != len(m.Names) {
			closeFDs(fds)
			return fmt.Errorf("hand-over: got %q with %d descriptors for %d names, want the listeners", m.Op, len(fds), len(m.Names))
		}
		t.Old = *m.From
		for i, fd := range fds {
			ln, err := fileListener(fd, m.Names[i])
			if err != nil {
				closeFDs(fds[i+1:])
				return err
			}
			t.Listeners[m.Names[i]] = ln
		}
		if !m.More {
			return nil
		}
	}
}

// Take removes the listener named name from those handed over and
// returns it (nil if there is none).
func (t *Takeover) Take(name string) net.Listener {
	ln := t.Listeners[name]
	delete(t.Listeners, name)
	return ln
}

// Release asks the old generation to stop its control plane and close the
// store, and waits until it has.
func (t *Takeover) Release(ctx context.Context) error {
	if err := t.c.send(message{Op: opRelease}, nil); err != nil {
		return fmt.Errorf("hand-over: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { t.c.uc.SetReadDeadline(time.Now()) })
	defer stop()
	if _, err := t.c.expect(opReleased); err != nil {
		return fmt.Errorf("hand-over: %s did not release the store: %w", t.Old, err)
	}
	return nil
}

// Drain tells the old generation that this one serves: it stops
// accepting and drains. The returned function waits for its report.
func (t *Takeover) Drain() (wait func(context.Context) (Report, error), err error) {
	if err := t.c.send(message{Op: opDrain}, nil); err != nil {
		return nil, fmt.Errorf("hand-over: %w", err)
	}
	return func(ctx context.Context) (Report, error) {
		stop := context.AfterFunc(ctx, func() { t.c.uc.SetReadDeadline(time.Now()) })
		defer stop()
		if _, err := t.c.expect(opDraining); err != nil {
			return Report{}, err
		}
		m, err := t.c.expect(opDrained)
		if err != nil {
			return Report{}, err
		}
		if m.Report == nil {
			return Report{}, errors.New("hand-over: drained without a report")
		}
		return *m.Report, nil
	}, nil
}

// Close ends the conversation and closes the listeners nobody took.
func (t *Takeover) Close() {
	t.c.uc.Close()
	for name, ln := range t.Listeners {
		ln.Close()
		delete(t.Listeners, name)
	}
}

// Restart asks the generation owning the socket at path to start its
// binary again, and waits until the new generation has taken over (or
// ctx ends). It returns the old generation and the new.
func Restart(ctx context.Context, path string) (from, to Generation, err error) {
	uc, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return from, to, fmt.Errorf("no Slipway runs on this data dir (nothing answers %s)", path)
		}
		return from, to, fmt.Errorf("hand-over socket %s: %w", path, err)
	}
	c := conn{uc}
	defer uc.Close()
	stop := context.AfterFunc(ctx, func() { uc.SetReadDeadline(time.Now()) })
	defer stop()
	if err := c.send(message{Op: opRestart}, nil); err != nil {
		return from, to, err
	}
	m, err := c.expect(opRestarting)
	if err != nil {
		return from, to, err
	}
	if m.From != nil {
		from = *m.From
	}
	pid := m.PID
	m, err = c.expect(opHandedOver)
	if err != nil {
		if ctx.Err() != nil {
			return from, to, fmt.Errorf("waiting for the new generation (pid %d) to take over: %w", pid, ctx.Err())
		}
		return from, to, err
	}
	if m.To != nil {
		to = *m.To
	}
	return from, to, nil
}

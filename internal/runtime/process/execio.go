package process

import (
	"context"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"

	"slipway.dev/slipway/internal/runtime"
)

// execStdio is an exec's standard streams: pipes, or a terminal (a pty
// whose other side becomes the command's controlling terminal). Input is
// copied by a goroutine of ours into a pipe (or the pty), so that the
// command's end never waits for the caller's input to end.
type execStdio struct {
	tty          bool
	ptm, pts     *os.File // the terminal's two sides
	inR, inW     *os.File // stdin pipe (nil without Stdin)
	stdout       io.Writer
	stderr       io.Writer
	copiedOutput sync.WaitGroup
	stop         context.CancelFunc
}

func newExecStdio(s runtime.ExecStreams) (*execStdio, error) {
	st := &execStdio{tty: s.TTY, stdout: s.Stdout, stderr: s.Stderr, stop: func() {}}
	if st.stdout == nil {
		st.stdout = io.Discard
	}
	if st.stderr == nil {
		st.stderr = io.Discard
	}
	if s.TTY {
		ptm, pts, err := pty.Open()
		if err != nil {
			return nil, err
		}
		st.ptm, st.pts = ptm, pts
		if s.Size.Cols > 0 && s.Size.Rows > 0 {
			_ = pty.Setsize(ptm, &pty.Winsize{Cols: s.Size.Cols, Rows: s.Size.Rows})
		}
		return st, nil
	}
	if s.Stdin != nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		st.inR, st.inW = r, w
	}
	return st, nil
}

// wire sets a command's streams and process attributes.
func (st *execStdio) wire(cmd *exec.Cmd) {
	if st.tty {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = st.pts, st.pts, st.pts
		// A session of its own whose controlling terminal is fd 0; its
		// process group is the session's, so -pid still names it.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		return
	}
	if st.inR != nil {
		cmd.Stdin = st.inR
	}
	cmd.Stdout, cmd.Stderr = st.stdout, st.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// started copies input and terminal output once the command runs.
func (st *execStdio) started(ctx context.Context, s runtime.ExecStreams) {
	ctx, st.stop = context.WithCancel(ctx)
	if st.tty {
		st.pts.Close() // only the command holds the terminal now
		st.pts = nil
		st.copiedOutput.Add(1)
		go func() {
			defer st.copiedOutput.Done()
			// Ends with EIO once every holder of the terminal is gone.
			_, _ = io.Copy(st.stdout, st.ptm)
		}()
		if s.Stdin != nil {
			go func() { _, _ = io.Copy(st.ptm, s.Stdin) }()
		}
		if s.Resize != nil {
			go func() {
				for {
					select {
					case <-ctx.Done():
						return
					case sz, ok := <-s.Resize:
						if !ok {
							return
						}
						_ = pty.Setsize(st.ptm, &pty.Winsize{Cols: sz.Cols, Rows: sz.Rows})
					}
				}
			}()
		}
		return
	}
	if st.inR != nil {
		st.inR.Close() // the command's copy is what remains
		st.inR = nil
		go func() {
			_, _ = io.Copy(st.inW, s.Stdin)
			st.inW.Close()
		}()
	}
}

// wait waits for the terminal's output to be delivered (pipes' output
// is, by cmd.Wait).
// A leftover outside the command's process group that still holds the
// terminal gets a second, then the terminal is closed under it.
func (st *execStdio) wait() {
	done := make(chan struct{})
	go func() { st.copiedOutput.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		st.ptm.Close()
		<-done
	}
}

func (st *execStdio) close() {
	st.stop()
	for _, f := range []*os.File{st.ptm, st.pts, st.inR, st.inW} {
		if f != nil {
			f.Close()
		}
	}
}

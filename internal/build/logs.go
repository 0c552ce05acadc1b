package build

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// Logs serves build logs from the files the runner writes.
type Logs struct {
	Reg     *registry.Registry
	Sources *Sources
	// Poll is how often a followed log looks for new output (default
	// 200 ms): the log is a plain file the build's tools write to.
	Poll time.Duration
}

// BuildLog opens the log of build project/name. Without follow it returns
// what was written so far (nothing while the build waits to start). With
// follow the reader delivers output as it is written and ends (io.EOF)
// once the build has finished and its log is read, or when ctx ends or
// the reader is closed.
func (l *Logs) BuildLog(ctx context.Context, project, name string, follow bool) (io.ReadCloser, error) {
	if _, err := l.Reg.Get(ctx, buildKind, project, name); err != nil {
		return nil, err
	}
	return &logReader{l: l, ctx: ctx, project: project, name: name, follow: follow, closed: make(chan struct{})}, nil
}

type logReader struct {
	l             *Logs
	ctx           context.Context
	project, name string
	follow        bool
	f             *os.File
	done          bool // the build had finished when the last EOF was seen
	closeOnce     sync.Once
	closed        chan struct{}
	mu            sync.Mutex // guards f against a Close during a Read
}

func (r *logReader) open() error {
	f, err := os.Open(r.l.Sources.LogPath(r.project, r.name))
	if err != nil {
		return err
	}
	r.f = f
	return nil
}

func (r *logReader) Read(p []byte) (int, error) {
	poll := r.l.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	for {
		select {
		case <-r.closed:
			return 0, io.EOF
		default:
		}
		if n, err, ok := r.readFile(p); ok {
			return n, err
		}
		if !r.follow || r.done {
			return 0, io.EOF
		}
		// At the end of what is written: the log is complete once the
		// build is finished (the runner closes the log before it writes
		// the final status), so read once more after seeing that.
		obj, err := r.l.Reg.Get(r.ctx, buildKind, r.project, r.name)
		if err != nil {
			if api.IsNotFound(err) {
				return 0, io.EOF
			}
			return 0, err
		}
		if obj.(*api.Build).Status.Finished() {
			r.done = true
			continue
		}
		t := time.NewTimer(poll)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return 0, io.EOF
		case <-r.closed:
			t.Stop()
			return 0, io.EOF
		}
	}
}

// readFile reads what the log file holds past the last read; ok is false
// at its end (or while it does not exist yet).
func (r *logReader) readFile(p []byte) (int, error, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-r.closed:
		return 0, io.EOF, true
	default:
	}
	if r.f == nil {
		if err := r.open(); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err, true
		}
	}
	if r.f == nil {
		return 0, nil, false
	}
	n, err := r.f.Read(p)
	if n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
		return n, err, true
	}
	return 0, nil, false
}

func (r *logReader) Close() error {
	r.closeOnce.Do(func() { close(r.closed) })
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

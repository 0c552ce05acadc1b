package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// A container's stdout and stderr are one file opened O_APPEND and handed to
// the process: no pipe runs through Slipway, so the app neither blocks when
// Slipway is slow nor gets SIGPIPE when Slipway is killed, and its output
// keeps landing in the file while no Slipway runs.
//
// Rotation is copy-then-truncate, because the app holds the file open and a
// rename would leave it writing to the rotated copy. With O_APPEND the app's
// next write lands at the new end, offset 0. Output written between the end
// of the copy and the truncation (microseconds) is lost; that is the price of
// never interposing on the app's output.
const (
	currentLog  = "current.log"
	previousLog = "previous.log"
)

// logFiles lists a run's log files that exist, oldest first.
func logFiles(dir, base string, keep int) []string {
	var out []string
	for i := keep; i >= 1; i-- {
		p := filepath.Join(dir, base+"."+strconv.Itoa(i))
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	p := filepath.Join(dir, base)
	if _, err := os.Stat(p); err == nil {
		out = append(out, p)
	}
	return out
}

// rotateRun makes the last run's logs the previous run's, before a restart.
func rotateRun(dir string, keep int) error {
	for _, p := range logFiles(dir, previousLog, keep) {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	for _, p := range logFiles(dir, currentLog, keep) {
		np := filepath.Join(dir, previousLog+p[len(filepath.Join(dir, currentLog)):])
		if err := os.Rename(p, np); err != nil {
			return err
		}
	}
	return nil
}

// rotateIfOver rotates path when it is larger than max, keeping keep copies.
func rotateIfOver(path string, max int64, keep int) error {
	fi, err := os.Stat(path)
	if err != nil || fi.Size() <= max {
		return nil
	}
	if keep > 0 {
		_ = os.Remove(path + "." + strconv.Itoa(keep))
		for i := keep - 1; i >= 1; i-- {
			_ = os.Rename(path+"."+strconv.Itoa(i), path+"."+strconv.Itoa(i+1))
		}
		if err := copyFile(path, path+".1"); err != nil {
			return err
		}
	}
	return os.Truncate(path, 0)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	if err := errors.Join(cerr, out.Close()); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// rotateLoop keeps running containers' logs under the cap.
func (d *Driver) rotateLoop() {
	defer d.bg.Done()
	t := time.NewTicker(d.opts.LogCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		d.mu.Lock()
		var paths []string
		for _, p := range d.pods {
			for _, c := range p.containers {
				if c.phase == phaseRunning {
					paths = append(paths, filepath.Join(c.dir, currentLog))
				}
			}
		}
		d.mu.Unlock()
		for _, p := range paths {
			d.logMu.Lock()
			err := rotateIfOver(p, d.opts.LogMaxBytes, d.opts.LogKeep)
			d.logMu.Unlock()
			if err != nil {
				d.log.Warn("rotating container log", "path", p, "err", err)
			}
		}
	}
}

type segment struct {
	f    *os.File
	size int64
}

// tailStart finds where the last n lines of the concatenated segments begin.
// A final newline ends the last line rather than starting an empty one.
func tailStart(segs []segment, n int) (seg int, off int64, err error) {
	buf := make([]byte, 32<<10)
	first := true
	for i := len(segs) - 1; i >= 0; i-- {
		end := segs[i].size
		for end > 0 {
			start := max(0, end-int64(len(buf)))
			b := buf[:end-start]
			if _, err := segs[i].f.ReadAt(b, start); err != nil && err != io.EOF {
				return 0, 0, err
			}
			for j := len(b) - 1; j >= 0; j-- {
				if first {
					first = false
					if b[j] == '\n' {
						continue
					}
				}
				if b[j] == '\n' {
					if n--; n == 0 {
						if off := start + int64(j) + 1; off < segs[i].size {
							return i, off, nil
						}
						return i + 1, 0, nil
					}
				}
			}
			end = start
		}
	}
	return 0, 0, nil
}

// Logs returns the container's log; see runtime.Driver.
func (d *Driver) Logs(ctx context.Context, podUID, name string, o runtime.LogOptions) (io.ReadCloser, error) {
	d.mu.Lock()
	c, err := d.lookup(podUID, name)
	if err != nil {
		d.mu.Unlock()
		return nil, err
	}
	dir, run, running := c.dir, c, c.phase == phaseRunning
	d.mu.Unlock()

	base := currentLog
	if o.Previous {
		base = previousLog
	}
	d.logMu.Lock()
	if !o.Previous {
		// The cap holds at least whenever someone looks, not only at the
		// periodic check.
		if err := rotateIfOver(filepath.Join(dir, currentLog), d.opts.LogMaxBytes, d.opts.LogKeep); err != nil {
			d.log.Warn("rotating container log", "pod", podUID, "container", name, "err", err)
		}
	}
	paths := logFiles(dir, base, d.opts.LogKeep)
	segs := make([]segment, 0, len(paths))
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			continue
		}
		segs = append(segs, segment{f, fi.Size()})
	}
	d.logMu.Unlock()
	closeAll := func() {
		for _, s := range segs {
			s.f.Close()
		}
	}
	if len(segs) == 0 {
		if o.Previous {
			return nil, fmt.Errorf("previous terminated container %q in pod %q: %w", name, podUID, runtime.ErrNotFound)
		}
		return nil, fmt.Errorf("log of container %q in pod %q: %w", name, podUID, runtime.ErrNotFound)
	}
	first, off := 0, int64(0)
	if o.Tail > 0 {
		if first, off, err = tailStart(segs, o.Tail); err != nil {
			closeAll()
			return nil, err
		}
	}
	var readers []io.Reader
	for i := first; i < len(segs); i++ {
		start := int64(0)
		if i == first {
			start = off
		}
		readers = append(readers, io.NewSectionReader(segs[i].f, start, segs[i].size-start))
	}
	static := io.MultiReader(readers...)
	if !o.Follow || o.Previous || !running {
		return &filesReader{Reader: static, close: closeAll}, nil
	}

	pr, pw := io.Pipe()
	cur := segs[len(segs)-1]
	// A caller that cancels ctx but never reads must not leave the copier
	// blocked in a pipe write.
	stopAfter := context.AfterFunc(ctx, func() { pw.Close() })
	go func() {
		defer stopAfter()
		defer closeAll()
		if _, err := io.Copy(pw, static); err != nil {
			pw.CloseWithError(err)
			return
		}
		pw.CloseWithError(d.follow(ctx, pw, cur, filepath.Join(dir, currentLog), run))
	}()
	return pr, nil
}

type filesReader struct {
	io.Reader
	close func()
}

func (r *filesReader) Close() error { r.close(); return nil }

// follow copies what the app appends to its log until ctx ends or the run
// ends and all it wrote has been copied. It polls: the app writes to the file
// directly, so there is no event from Slipway's side to wait on.
func (d *Driver) follow(ctx context.Context, w io.Writer, cur segment, path string, run *container) error {
	pos := cur.size
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	buf := make([]byte, 32<<10)
	for {
		ended := false
		select {
		case <-run.done:
			ended = true
		default:
		}
		for {
			n, err := cur.f.ReadAt(buf, pos)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					return nil // the reader went away
				}
				pos += int64(n)
			}
			if err == io.EOF || n == 0 {
				break
			}
			if err != nil {
				return err
			}
		}
		if fi, err := cur.f.Stat(); err == nil && fi.Size() < pos {
			// Rotated: what we had not read yet is at the end of the copy.
			if r, err := os.Open(path + ".1"); err == nil {
				_, _ = io.Copy(w, io.NewSectionReader(r, pos, 1<<62))
				r.Close()
			}
			pos = 0
			continue
		}
		if ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-run.done:
		}
	}
}

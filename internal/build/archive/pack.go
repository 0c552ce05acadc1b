package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ErrTooLarge is returned (wrapped) when a source exceeds its size limit.
var ErrTooLarge = errors.New("source too large")

// Stats counts what an archive holds.
type Stats struct {
	Entries int64
	// Bytes is the total size of the regular files' contents.
	Bytes int64
}

// PackOptions tune Pack.
type PackOptions struct {
	// MaxBytes bounds the total size of the files packed (0: no bound).
	MaxBytes int64
	// Keep lists paths packed even when .dockerignore leaves them out (as
	// docker does with the Dockerfile).
	Keep []string
}

// Pack writes dir as a tar stream to w. .dockerignore in dir is honoured;
// symbolic links are packed as links, and one whose target lies outside
// dir is an error (it would be dangling in the image, or leak the host);
// devices, sockets and pipes are errors too. Owners are dropped and modes
// kept, so the stream is the same whoever packs it.
func Pack(w io.Writer, dir string, opts PackOptions) (Stats, error) {
	var st Stats
	root, err := filepath.EvalSymlinks(dir) // the directory named may itself be a link
	if err != nil {
		return st, fmt.Errorf("source directory %s: %w", dir, err)
	}
	if fi, err := os.Stat(root); err != nil {
		return st, fmt.Errorf("source directory %s: %w", dir, err)
	} else if !fi.IsDir() {
		return st, fmt.Errorf("source directory %s: not a directory", dir)
	}
	ig, err := readIgnore(root)
	if err != nil {
		return st, err
	}
	keep := map[string]bool{}
	for _, k := range opts.Keep {
		keep[k] = true
	}
	tw := tar.NewWriter(w)
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if ig.Excluded(rel) && !keep[rel] {
			if d.IsDir() && !ig.HasExceptions() {
				return fs.SkipDir
			}
			return nil // a directory is still walked: a later '!' may bring back something below
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: rel, Mode: int64(fi.Mode().Perm()), ModTime: fi.ModTime().Truncate(1e9), Format: tar.FormatPAX}
		switch m := fi.Mode(); {
		case m.IsDir():
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
		case m.IsRegular():
			hdr.Typeflag, hdr.Size = tar.TypeReg, fi.Size()
			if opts.MaxBytes > 0 && st.Bytes+hdr.Size > opts.MaxBytes {
				return fmt.Errorf("%w: %s holds more than %d bytes of files (at %s); leave files out with %s", ErrTooLarge, dir, opts.MaxBytes, rel, IgnoreFile)
			}
		case m&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if !linkInside(rel, target) {
				return fmt.Errorf("%s: symbolic link to %q points outside %s: links are packed as links and never followed out of the source (leave it out with %s)", rel, target, dir, IgnoreFile)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		default:
			return fmt.Errorf("%s: a %s cannot be part of a build source (leave it out with %s)", rel, describeMode(m), IgnoreFile)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		st.Entries++
		if hdr.Typeflag != tar.TypeReg {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		n, err := io.Copy(tw, f)
		if err != nil {
			return fmt.Errorf("%s: %w (did it change while being packed?)", rel, err)
		}
		st.Bytes += n
		return nil
	})
	if err != nil {
		return st, err
	}
	return st, tw.Close()
}

func readIgnore(root string) (*Ignore, error) {
	f, err := os.Open(filepath.Join(root, IgnoreFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseIgnore(f)
}

// linkInside reports whether a link at rel (slash-separated, relative to
// the source) with the given target resolves inside the source, lexically.
func linkInside(rel, target string) bool {
	if target == "" || path.IsAbs(target) || filepath.IsAbs(target) {
		return false
	}
	r := path.Join(path.Dir(rel), filepath.ToSlash(target))
	return r != ".." && !strings.HasPrefix(r, "../")
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

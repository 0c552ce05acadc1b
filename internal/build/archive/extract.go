package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Limits bound what an uploaded archive may unpack to.
type Limits struct {
	// MaxBytes bounds the total size of its files (0: no bound).
	MaxBytes int64
	// MaxEntries bounds its entries (0: DefaultMaxEntries).
	MaxEntries int64
}

// DefaultMaxEntries bounds the entries of an archive.
const DefaultMaxEntries = 100_000

// Check reads a whole tar stream and reports the first entry that Extract
// would refuse, without writing anything.
func Check(r io.Reader, lim Limits) (Stats, error) {
	return walk(r, lim, nil)
}

// Extract unpacks a tar stream into dst, an existing empty directory.
// It accepts directories, regular files and symbolic links whose target
// stays inside dst; names must be relative and clean; a path may appear
// once. Modes are kept without setuid, setgid, sticky and write bits for
// others. Every file is created through an os.Root on dst, so nothing is
// ever written outside it, even through a link the archive made.
func Extract(r io.Reader, dst string, lim Limits) (Stats, error) {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return Stats{}, err
	}
	defer root.Close()
	return walk(r, lim, root)
}

func walk(r io.Reader, lim Limits, root *os.Root) (Stats, error) {
	var st Stats
	if lim.MaxEntries <= 0 {
		lim.MaxEntries = DefaultMaxEntries
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if st.Entries == 0 {
				return st, errors.New("the archive is empty")
			}
			return st, nil
		}
		if err != nil {
			return st, fmt.Errorf("not a valid tar archive (after %d entries): %v", st.Entries, err)
		}
		st.Entries++
		if st.Entries > lim.MaxEntries {
			return st, fmt.Errorf("%w: more than %d entries", ErrTooLarge, lim.MaxEntries)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return st, err
		}
		if seen[name] {
			return st, fmt.Errorf("entry %q: appears twice", hdr.Name)
		}
		seen[name] = true
		mode := fs.FileMode(hdr.Mode).Perm() &^ 0o002
		switch hdr.Typeflag {
		case tar.TypeDir:
			if root != nil {
				if err := root.MkdirAll(name, 0o755); err != nil {
					return st, fmt.Errorf("entry %q: %w", hdr.Name, err)
				}
			}
		case tar.TypeReg, tar.TypeRegA:
			if hdr.Size < 0 {
				return st, fmt.Errorf("entry %q: negative size", hdr.Name)
			}
			if lim.MaxBytes > 0 && st.Bytes+hdr.Size > lim.MaxBytes {
				return st, fmt.Errorf("%w: its files hold more than %d bytes (at %q)", ErrTooLarge, lim.MaxBytes, hdr.Name)
			}
			n, err := writeFile(root, name, mode, tr)
			st.Bytes += n
			if err != nil {
				return st, fmt.Errorf("entry %q: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if !linkInside(name, hdr.Linkname) {
				return st, fmt.Errorf("entry %q: symbolic link to %q points outside the source", hdr.Name, hdr.Linkname)
			}
			if root != nil {
				if err := mkParent(root, name); err != nil {
					return st, fmt.Errorf("entry %q: %w", hdr.Name, err)
				}
				if err := root.Symlink(hdr.Linkname, name); err != nil {
					return st, fmt.Errorf("entry %q: %w", hdr.Name, err)
				}
			}
		default:
			return st, fmt.Errorf("entry %q: type %q is not allowed: only directories, regular files and symbolic links", hdr.Name, string(hdr.Typeflag))
		}
	}
}

// cleanName accepts a relative, clean, slash-separated name ("./" and a
// trailing "/" allowed, as tar writes them).
func cleanName(n string) (string, error) {
	orig := n
	n = strings.TrimPrefix(n, "./")
	n = strings.TrimSuffix(n, "/")
	switch {
	case n == "" || n == ".":
		return "", fmt.Errorf("entry %q: empty name", orig)
	case strings.ContainsRune(n, 0) || strings.Contains(n, "\\"):
		return "", fmt.Errorf("entry %q: a name may not hold a NUL or a backslash", orig)
	case path.IsAbs(n):
		return "", fmt.Errorf("entry %q: absolute names are not allowed", orig)
	case path.Clean(n) != n || n == ".." || strings.HasPrefix(n, "../"):
		return "", fmt.Errorf("entry %q: the name must be clean and stay inside the source (no '..', '//' or '.')", orig)
	}
	return n, nil
}

func mkParent(root *os.Root, name string) error {
	if dir := path.Dir(name); dir != "." {
		return root.MkdirAll(dir, 0o755)
	}
	return nil
}

func writeFile(root *os.Root, name string, mode fs.FileMode, r io.Reader) (int64, error) {
	if root == nil {
		return io.Copy(io.Discard, r)
	}
	if err := mkParent(root, name); err != nil {
		return 0, err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

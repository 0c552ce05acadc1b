// Package archive packs a build's source directory into a tar stream (as
// `docker build` sends its context: .dockerignore honoured, symbolic links
// kept as links and never followed out of the directory) and checks and
// unpacks such a stream on the server without ever writing outside the
// destination. It imports the standard library only, so the CLI and the
// build runner share it.
package archive

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// IgnoreFile is the name of the file listing what to leave out.
const IgnoreFile = ".dockerignore"

// MaxIgnoreBytes bounds a .dockerignore.
const MaxIgnoreBytes = 1 << 20

// Ignore is a parsed .dockerignore: patterns in order, the last one that
// matches a path deciding whether it is left out.
type Ignore struct {
	rules      []rule
	exceptions bool
}

type rule struct {
	segs   []string // pattern split on "/"; "**" matches any number of segments
	negate bool
	text   string
}

// ParseIgnore reads .dockerignore syntax: one pattern per line, '#' starts
// a comment line, blank lines are skipped, a leading '!' re-includes what
// an earlier pattern left out, a leading '/' is dropped (patterns are
// relative to the directory), and each pattern is cleaned as a path.
// Patterns use path.Match syntax per segment, plus "**" for any number of
// directories. A bad pattern is an error naming its line.
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	sc := bufio.NewScanner(io.LimitReader(r, MaxIgnoreBytes+1))
	sc.Buffer(make([]byte, 0, 4096), MaxIgnoreBytes+1)
	read := 0
	for line := 1; sc.Scan(); line++ {
		read += len(sc.Bytes()) + 1
		if read > MaxIgnoreBytes+1 {
			return nil, fmt.Errorf("%s: larger than %d bytes", IgnoreFile, MaxIgnoreBytes)
		}
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		rl := rule{text: text}
		if strings.HasPrefix(text, "!") {
			rl.negate = true
			text = strings.TrimSpace(text[1:])
		}
		p := path.Clean("/" + text)[1:] // drops a leading '/', resolves '.' and '..' inside the directory
		if p == "" {
			// "/" or "." matches the directory itself: Docker leaves such a
			// pattern without effect on the files, and so do we.
			continue
		}
		rl.segs = strings.Split(p, "/")
		for _, s := range rl.segs {
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("%s:%d: bad pattern %q: %v", IgnoreFile, line, rl.text, err)
			}
		}
		ig.exceptions = ig.exceptions || rl.negate
		ig.rules = append(ig.rules, rl)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%s: larger than %d bytes", IgnoreFile, MaxIgnoreBytes)
		}
		return nil, fmt.Errorf("%s: %w", IgnoreFile, err)
	}
	return ig, nil
}

// Excluded reports whether rel (slash-separated, relative to the
// directory) is left out. A pattern that matches a directory leaves out
// everything below it, unless a later '!' pattern brings a path back.
func (ig *Ignore) Excluded(rel string) bool {
	if ig == nil {
		return false
	}
	segs := strings.Split(rel, "/")
	excluded := false
	for _, rl := range ig.rules {
		if rl.matchesOrParent(segs) {
			excluded = !rl.negate
		}
	}
	return excluded
}

// HasExceptions reports whether a '!' pattern exists: then a left-out
// directory must still be walked, since something below may come back.
func (ig *Ignore) HasExceptions() bool { return ig != nil && ig.exceptions }

// matchesOrParent reports whether the pattern matches the path or one of
// its parent directories.
func (rl rule) matchesOrParent(segs []string) bool {
	for n := len(segs); n > 0; n-- {
		if matchSegs(rl.segs, segs[:n]) {
			return true
		}
	}
	return false
}

// matchSegs matches pattern segments against path segments, "**" standing
// for zero or more path segments. The recursion is bounded by the two
// lengths; consecutive "**" are collapsed by the caller's patterns being
// short, and memoisation keeps the worst case polynomial.
func matchSegs(pat, segs []string) bool {
	memo := make(map[[2]int]bool)
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var ok bool
		switch {
		case i == len(pat):
			ok = j == len(segs)
		case pat[i] == "**":
			ok = match(i+1, j) || (j < len(segs) && match(i, j+1))
		case j == len(segs):
			ok = false
		default:
			m, _ := path.Match(pat[i], segs[j]) // patterns were checked by ParseIgnore
			ok = m && match(i+1, j+1)
		}
		memo[k] = ok
		return ok
	}
	return match(0, 0)
}

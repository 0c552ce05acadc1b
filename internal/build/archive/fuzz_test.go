package archive

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzIgnore: any .dockerignore parses or fails with an error naming the
// file, and matching never panics; a path is excluded by "p" exactly when
// it is not by "p" followed by "!p".
func FuzzIgnore(f *testing.F) {
	for _, s := range []string{"*.log", "!a", "**/x", "a/**/b/*.md", "/build", "[a-", "\\", "**", "a/../../b", "# c\n\n x "} {
		f.Add(s, "a/b/x.log")
	}
	f.Fuzz(func(t *testing.T, pattern, p string) {
		ig, err := ParseIgnore(strings.NewReader(pattern))
		if err != nil {
			if !strings.HasPrefix(err.Error(), IgnoreFile) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		excluded := ig.Excluded(p)
		if strings.ContainsAny(pattern, "\n\r!") || strings.TrimSpace(pattern) == "" || strings.HasPrefix(strings.TrimSpace(pattern), "#") {
			return
		}
		both, err := ParseIgnore(strings.NewReader(pattern + "\n!" + pattern))
		if err != nil {
			t.Fatalf("pattern parsed alone but not negated: %v", err)
		}
		if excluded && both.Excluded(p) {
			t.Fatalf("%q then !%q still excludes %q", pattern, pattern, p)
		}
	})
}

// FuzzExtract: whatever the archive, nothing is written outside the
// destination and no call panics.
func FuzzExtract(f *testing.F) {
	f.Add([]byte{})
	for _, e := range [][]entry{
		{{name: "a", typ: '0', body: "x"}},
		{{name: "l", typ: '2', link: "."}, {name: "l/x", typ: '0', body: "y"}},
		{{name: "../x", typ: '0', body: "y"}},
	} {
		f.Add(tarOf(f, e...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "dst")
		if err := os.Mkdir(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		_, _ = Extract(bytes.NewReader(data), dst, Limits{MaxBytes: 1 << 20, MaxEntries: 100})
		ents, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		if len(ents) != 1 {
			t.Fatalf("%d entries beside the destination", len(ents)-1)
		}
	})
}

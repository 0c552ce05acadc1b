package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIgnorePatterns(t *testing.T) {
	ig, err := ParseIgnore(strings.NewReader(`
# comment
*.log
/build
docs/**/*.md
!docs/keep/README.md
node_modules
**/secret.txt
./tmp/../cache
`))
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]bool{
		"app.log":                true,
		"sub/x.log":              false, // *.log matches in the root only, as in docker
		"build":                  true,
		"build/out/bin":          true, // below a left-out directory
		"builder":                false,
		"docs/a.md":              true, // ** matches zero directories
		"docs/x/y/b.md":          true,
		"docs/x/y/b.txt":         false,
		"docs/keep/README.md":    false, // brought back by '!'
		"node_modules/a/b.js":    true,
		"secret.txt":             true,
		"deep/down/secret.txt":   true,
		"cache/x":                true, // the pattern was cleaned to "cache"
		"tmp/x":                  false,
		"main.go":                false,
		"docs/keep/README.md.go": false,
	}
	for p, want := range cases {
		if got := ig.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", p, got, want)
		}
	}
	if !ig.HasExceptions() {
		t.Error("HasExceptions() = false with a '!' pattern")
	}
}

func TestIgnoreBadPattern(t *testing.T) {
	_, err := ParseIgnore(strings.NewReader("ok\n[z-a\n"))
	want := `.dockerignore:2: bad pattern "[z-a": syntax error in pattern`
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func write(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out = append(out, rel+" -> "+target)
		case d.IsDir():
			out = append(out, rel+"/")
		default:
			b, _ := os.ReadFile(p)
			out = append(out, rel+": "+string(b))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestPackHonoursIgnoreAndExtractRoundTrips(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{
		"main.go":           "package main",
		"Dockerfile":        "FROM scratch",
		".dockerignore":     "*.log\nDockerfile\nvendor\n",
		"debug.log":         "noise",
		"vendor/x/y.go":     "package y",
		"static/index.html": "<p>hi</p>",
	})
	if err := os.Symlink("static/index.html", filepath.Join(src, "index.html")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	st, err := Pack(&buf, src, PackOptions{Keep: []string{"Dockerfile"}})
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	got, err := Extract(bytes.NewReader(buf.Bytes()), dst, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if got != st {
		t.Errorf("Extract stats %+v, Pack stats %+v", got, st)
	}
	want := []string{
		".dockerignore: *.log\nDockerfile\nvendor\n",
		"Dockerfile: FROM scratch", // kept although ignored
		"index.html -> static/index.html",
		"main.go: package main",
		"static/",
		"static/index.html: <p>hi</p>",
	}
	if diff := cmp.Diff(want, tree(t, dst)); diff != "" {
		t.Errorf("extracted tree (-want +got):\n%s", diff)
	}
}

func TestPackRefusesLinksOutOfTheSource(t *testing.T) {
	for name, target := range map[string]string{"absolute": "/etc/passwd", "relative": "../../outside"} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			write(t, src, map[string]string{"main.go": "package main"})
			if err := os.Symlink(target, filepath.Join(src, "leak")); err != nil {
				t.Fatal(err)
			}
			_, err := Pack(&bytes.Buffer{}, src, PackOptions{})
			want := `leak: symbolic link to "` + target + `" points outside ` + src
			if err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("err = %v, want prefix %q", err, want)
			}
			// Left out by .dockerignore, the link is no problem.
			write(t, src, map[string]string{".dockerignore": "leak\n"})
			if _, err := Pack(&bytes.Buffer{}, src, PackOptions{}); err != nil {
				t.Fatalf("ignored link: %v", err)
			}
		})
	}
}

func TestPackBoundsSizeAndNamesMissingDir(t *testing.T) {
	src := t.TempDir()
	write(t, src, map[string]string{"a": strings.Repeat("x", 600), "b": strings.Repeat("y", 600)})
	_, err := Pack(&bytes.Buffer{}, src, PackOptions{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	_, err = Pack(&bytes.Buffer{}, filepath.Join(src, "nope"), PackOptions{})
	if err == nil || !strings.Contains(err.Error(), "source directory "+filepath.Join(src, "nope")+": ") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want a not-exist error naming the directory", err)
	}
}

type entry struct {
	name, link string
	typ        byte
	body       string
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o755, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	cases := []struct {
		name    string
		entries []entry
		want    string
	}{
		{"dot-dot", []entry{{name: "../evil", typ: tar.TypeReg, body: "x"}}, `entry "../evil": the name must be clean and stay inside the source (no '..', '//' or '.')`},
		{"absolute", []entry{{name: "/etc/evil", typ: tar.TypeReg, body: "x"}}, `entry "/etc/evil": absolute names are not allowed`},
		{"hard link", []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, `entry "h": type "1" is not allowed: only directories, regular files and symbolic links`},
		{"device", []entry{{name: "d", typ: tar.TypeChar}}, `entry "d": type "3" is not allowed: only directories, regular files and symbolic links`},
		{"link out", []entry{{name: "l", typ: tar.TypeSymlink, link: "../../etc"}}, `entry "l": symbolic link to "../../etc" points outside the source`},
		{"duplicate", []entry{{name: "a", typ: tar.TypeReg, body: "1"}, {name: "./a", typ: tar.TypeReg, body: "2"}}, `entry "./a": appears twice`},
		{"empty", nil, "the archive is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			os.Mkdir(dst, 0o700)
			_, err := Extract(bytes.NewReader(tarOf(t, tc.entries...)), dst, Limits{})
			if err == nil || err.Error() != tc.want {
				t.Fatalf("err = %v, want %s", err, tc.want)
			}
			if _, err := Check(bytes.NewReader(tarOf(t, tc.entries...)), Limits{}); err == nil || err.Error() != tc.want {
				t.Fatalf("Check err = %v, want %s", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Fatal("a file was written outside the destination")
			}
		})
	}
}

func TestExtractNeverWritesThroughALinkOutOfTheRoot(t *testing.T) {
	// A link that stays inside lexically cannot be turned into an escape by
	// a later entry: every write goes through os.Root.
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	os.Mkdir(dst, 0o700)
	data := tarOf(t,
		entry{name: "a", typ: tar.TypeDir},
		entry{name: "a/up", typ: tar.TypeSymlink, link: ".."},
		entry{name: "a/up/x", typ: tar.TypeReg, body: "inside"},
	)
	if _, err := Extract(bytes.NewReader(data), dst, Limits{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dst, "x"))
	if err != nil || string(b) != "inside" {
		t.Fatalf("x = %q, %v; want the file inside the root", b, err)
	}
}

func TestExtractBoundsSize(t *testing.T) {
	data := tarOf(t, entry{name: "a", typ: tar.TypeReg, body: strings.Repeat("x", 100)}, entry{name: "b", typ: tar.TypeReg, body: strings.Repeat("x", 100)})
	_, err := Check(bytes.NewReader(data), Limits{MaxBytes: 150})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), `its files hold more than 150 bytes (at "b")`) {
		t.Fatalf("err = %v", err)
	}
	_, err = Check(bytes.NewReader(data), Limits{MaxEntries: 1})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1 entries") {
		t.Fatalf("err = %v", err)
	}
	_, err = Check(strings.NewReader(strings.Repeat("not a tar", 100)), Limits{})
	if err == nil || !strings.HasPrefix(err.Error(), "not a valid tar archive (after 0 entries)") {
		t.Fatalf("err = %v", err)
	}
}

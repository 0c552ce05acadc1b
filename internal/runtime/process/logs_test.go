package process

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func segmentsOf(t *testing.T, parts ...string) []segment {
	t.Helper()
	var segs []segment
	for i, p := range parts {
		path := filepath.Join(t.TempDir(), "seg"+string(rune('a'+i)))
		if err := os.WriteFile(path, []byte(p), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		segs = append(segs, segment{f, int64(len(p))})
	}
	return segs
}

func TestTailStart(t *testing.T) {
	big := strings.Repeat("x", 40<<10) + "\n" // longer than one read chunk
	for _, tc := range []struct {
		parts   []string
		n       int
		seg     int
		off     int64
		comment string
	}{
		{[]string{"a\nb\nc\n"}, 2, 0, 2, "last two lines"},
		{[]string{"a\nb\nc"}, 2, 0, 2, "no final newline: c is a line"},
		{[]string{"a\nb\nc\n"}, 5, 0, 0, "more than there are"},
		{[]string{"a\nb\n", "c\nd\n"}, 3, 0, 2, "across a rotation"},
		{[]string{"a\nb\n", "c\nd\n"}, 2, 1, 0, "exactly the newest file"},
		{[]string{"a\n", "", "b\n"}, 2, 0, 0, "an empty file in between"},
		{[]string{"a\n" + big + "b\n"}, 2, 0, 2, "a line longer than a chunk"},
		{[]string{"\n\n\n"}, 1, 0, 2, "empty lines count"},
	} {
		segs := segmentsOf(t, tc.parts...)
		seg, off, err := tailStart(segs, tc.n)
		if err != nil || seg != tc.seg || off != tc.off {
			t.Errorf("%s: tailStart(%q, %d) = %d, %d, %v; want %d, %d", tc.comment, tc.parts, tc.n, seg, off, err, tc.seg, tc.off)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, currentLog)
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func() map[string]string {
		m := map[string]string{}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			m[e.Name()] = string(b)
		}
		return m
	}
	write(currentLog, "0123456789")
	if err := rotateIfOver(cur, 10, 2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"current.log": "0123456789"}, read()); diff != "" {
		t.Errorf("at the cap, nothing rotates (-want +got):\n%s", diff)
	}
	for _, s := range []string{"first-run-1\n", "first-run-2\n", "first-run-3\n"} {
		write(currentLog, s)
		if err := rotateIfOver(cur, 10, 2); err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]string{"current.log": "", "current.log.1": "first-run-3\n", "current.log.2": "first-run-2\n"}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("after three rotations keeping 2 (-want +got):\n%s", diff)
	}
	write(currentLog, "tail\n")
	write(previousLog, "older run\n")
	if err := rotateRun(dir, 2); err != nil {
		t.Fatal(err)
	}
	want = map[string]string{"previous.log": "tail\n", "previous.log.1": "first-run-3\n", "previous.log.2": "first-run-2\n"}
	if diff := cmp.Diff(want, read()); diff != "" {
		t.Errorf("a restart makes the run's logs the previous ones (-want +got):\n%s", diff)
	}
	if err := rotateIfOver(cur, 10, 0); err != nil {
		t.Errorf("rotating a missing file: %v", err)
	}
}

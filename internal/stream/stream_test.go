package stream

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestFramesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := NewWriter(&buf)
	big := bytes.Repeat([]byte("x"), MaxFrame+10)
	if _, err := w.Channel(Stdout).Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Channel(Stderr).Write(big); err != nil {
		t.Fatal(err)
	}
	if err := w.Frame(StdinEOF, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Frame(Resize, EncodeResize(TermSize{Cols: 132, Rows: 43})); err != nil {
		t.Fatal(err)
	}
	if err := w.Exit(ExitStatus{ExitCode: 7}); err != nil {
		t.Fatal(err)
	}
	r := NewReader(&buf)
	type frame struct {
		ch byte
		n  int
	}
	var got []frame
	var stderr []byte
	for {
		ch, data, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, frame{ch, len(data)})
		switch ch {
		case Stderr:
			stderr = append(stderr, data...)
		case Resize:
			if s, err := DecodeResize(data); err != nil || s != (TermSize{132, 43}) {
				t.Errorf("resize: %v %v", s, err)
			}
		case Exit:
			if s, err := DecodeExit(data); err != nil || s.ExitCode != 7 {
				t.Errorf("exit: %v %v", s, err)
			}
		}
	}
	want := []frame{{Stdout, 5}, {Stderr, MaxFrame}, {Stderr, 10}, {StdinEOF, 0}, {Resize, 4}, {Exit, len(`{"exitCode":7}`)}}
	if len(got) != len(want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("frame %d: %v, want %v", i, got[i], want[i])
		}
	}
	if !bytes.Equal(stderr, big) {
		t.Errorf("a split write did not come back whole")
	}
}

func TestReaderRefusesBadFrames(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{1, 0xff, 0, 0, 0}))
	if _, _, err := r.Next(); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a 4 GiB frame: %v, want ErrFrameTooLarge", err)
	}
	r = NewReader(bytes.NewReader([]byte{1, 0, 0, 0, 9, 'a'}))
	if _, _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("a cut frame: %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := DecodeResize([]byte{1, 2, 3}); err == nil {
		t.Errorf("a 3-byte resize decoded")
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 'h', 'i', 4, 0, 0, 0, 2, '{', '}'})
	f.Add([]byte{3, 0, 0, 0, 4, 0, 80, 0, 24})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b))
		for {
			ch, data, err := r.Next()
			if err != nil {
				return
			}
			if len(data) > MaxFrame {
				t.Fatalf("a frame of %d bytes", len(data))
			}
			switch ch {
			case Resize:
				_, _ = DecodeResize(data)
			case Exit:
				_, _ = DecodeExit(data)
			}
		}
	})
}

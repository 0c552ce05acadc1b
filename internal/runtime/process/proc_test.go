package process

import (
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStat(t *testing.T) {
	tail := " 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 987654 18 19\n"
	for _, tc := range []struct {
		in      string
		want    procStat
		wantErr bool
	}{
		{"42 (app) S 7 42" + tail, procStat{State: 'S', PPID: 7, PGID: 42, StartTicks: 987654}, false},
		// The command name may hold spaces and parentheses: fields count from the last ')'.
		{"42 (a) b) (c) Z 1 9" + tail, procStat{State: 'Z', PPID: 1, PGID: 9, StartTicks: 987654}, false},
		{"42 (app S 7 42" + tail, procStat{}, true},
		{"42 (app) S 7", procStat{}, true},
		{"42 (app) S x 42" + tail, procStat{}, true},
		{"42 (app) SS 7 42" + tail, procStat{}, true},
		{"", procStat{}, true},
	} {
		got, err := parseStat([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("parseStat(%q): error %v, want error %v", tc.in, err, tc.wantErr)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("parseStat(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PGID != syscall.Getpgrp() || st.PPID != os.Getppid() || st.StartTicks == 0 || !st.live() {
		t.Errorf("readStat(self) = %+v; want pgid %d, ppid %d, a start time, live", st, syscall.Getpgrp(), os.Getppid())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (app) S 7 42 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 987654 18 19"))
	f.Add([]byte("1 ((x)) R 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := parseStat(b)
		if err != nil && st != (procStat{}) {
			t.Errorf("parseStat returned %+v with error %v", st, err)
		}
	})
}

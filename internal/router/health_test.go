package router

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAfterConnectFailure(t *testing.T) {
	o := HealthOptions{}.withDefaults()
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var s ejectState
	steps := []struct {
		at   time.Duration
		want ejectState
	}{
		{0, ejectState{fails: 1}},
		{0, ejectState{fails: 2}},
		{0, ejectState{fails: 3, ejected: true, backoff: time.Second, until: at(time.Second)}},
		// Still out: requests that picked it before fail too, without
		// growing the back-off.
		{500 * time.Millisecond, ejectState{fails: 4, ejected: true, backoff: time.Second, until: at(time.Second)}},
		// On probation after the back-off: one failure sends it out for twice as long.
		{2 * time.Second, ejectState{fails: 5, ejected: true, backoff: 2 * time.Second, until: at(4 * time.Second)}},
		{5 * time.Second, ejectState{fails: 6, ejected: true, backoff: 4 * time.Second, until: at(9 * time.Second)}},
		{10 * time.Second, ejectState{fails: 7, ejected: true, backoff: 8 * time.Second, until: at(18 * time.Second)}},
		{20 * time.Second, ejectState{fails: 8, ejected: true, backoff: 16 * time.Second, until: at(36 * time.Second)}},
		{40 * time.Second, ejectState{fails: 9, ejected: true, backoff: 30 * time.Second, until: at(70 * time.Second)}},
		{80 * time.Second, ejectState{fails: 10, ejected: true, backoff: 30 * time.Second, until: at(110 * time.Second)}},
	}
	for i, st := range steps {
		s = afterConnectFailure(s, at(st.at), o)
		if d := cmp.Diff(st.want, s, cmp.AllowUnexported(ejectState{})); d != "" {
			t.Fatalf("failure %d (-want +got):\n%s", i+1, d)
		}
	}
	if s := afterConnectFailure(ejectState{fails: 9}, t0, HealthOptions{EjectAfter: -1}.withDefaults()); s.ejected {
		t.Errorf("EjectAfter -1 ejected: %+v", s)
	}
}

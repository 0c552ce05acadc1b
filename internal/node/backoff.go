package node

import "time"

// Backoff is the restart back-off: Base doubling to Max, forgotten once a
// container has run for Reset. DefaultBackoff is the kubelet's.
type Backoff struct {
	Base, Max, Reset time.Duration
}

// DefaultBackoff: 10s doubling to 5 minutes, reset after 10 minutes of running.
var DefaultBackoff = Backoff{Base: 10 * time.Second, Max: 5 * time.Minute, Reset: 10 * time.Minute}

// Delay returns how long to wait before restarting a container whose last
// run lasted ran, after crashes consecutive crashes before this one (0 for
// the first), and the crash count to keep.
func (b Backoff) Delay(crashes int, ran time.Duration) (time.Duration, int) {
	if ran >= b.Reset {
		crashes = 0
	}
	d := b.Base
	for i := 0; i < crashes && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max), crashes + 1
}

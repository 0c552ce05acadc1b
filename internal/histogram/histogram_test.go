package histogram

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := time.Millisecond
	bounds := []time.Duration{10 * ms, 20 * ms, 40 * ms}
	for _, tc := range []struct {
		counts []int64
		q      float64
		want   time.Duration
	}{
		{[]int64{0, 0, 0, 0}, 0.5, 0},          // nothing counted
		{[]int64{10, 0, 0, 0}, 0.5, 5 * ms},    // halfway into the first bucket
		{[]int64{0, 10, 0, 0}, 0.5, 15 * ms},   // halfway between 10 and 20 ms
		{[]int64{5, 5, 0, 0}, 1, 20 * ms},      // the top of the last bucket used
		{[]int64{0, 0, 0, 10}, 0.99, 40 * ms},  // the unbounded bucket: its lower bound
		{[]int64{90, 0, 0, 10}, 0.95, 40 * ms}, // a tail in the unbounded bucket
		{[]int64{90, 10, 0, 0}, 0.9, 10 * ms},  // exactly at a bucket's end
	} {
		if got := Quantile(bounds, tc.counts, tc.q); got != tc.want {
			t.Errorf("Quantile(%v, %v) = %v, want %v", tc.counts, tc.q, got, tc.want)
		}
	}
	if got := Quantile(nil, []int64{3}, 0.5); got != 0 {
		t.Errorf("no bounds: %v, want 0", got)
	}
}

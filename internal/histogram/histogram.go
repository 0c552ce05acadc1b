// Package histogram is what the router's latency counters and the rollout
// analysis share: the quantile of a bucketed latency histogram. A leaf
// (standard library only) that every package may take.
package histogram

import (
	"math"
	"time"
)

// Quantile returns the latency below which a share q (0–1) of the counted
// requests fell: counts[i] requests took at most bounds[i] (and more than
// bounds[i-1]), and a last bucket past the bounds holds the slower ones.
// The quantile is interpolated within its bucket; in the last, unbounded
// bucket it is that bucket's lower bound. 0 when nothing was counted.
func Quantile(bounds []time.Duration, counts []int64, q float64) time.Duration {
	var total int64
	for _, c := range counts {
		total += c
	}
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen float64
	for i, c := range counts {
		if c == 0 {
			continue
		}
		if seen+float64(c) >= rank {
			lo := time.Duration(0)
			if i > 0 {
				lo = bounds[min(i, len(bounds))-1]
			}
			if i >= len(bounds) {
				return lo
			}
			frac := math.Max(0, (rank-seen)/float64(c))
			return lo + time.Duration(frac*float64(bounds[i]-lo))
		}
		seen += float64(c)
	}
	return bounds[len(bounds)-1]
}

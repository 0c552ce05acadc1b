package router

import (
	"fmt"
	"slices"
)

// MaxTries bounds the endpoints one request is sent to: connect failures
// move on to the next endpoint (nothing reached the app), so a route with
// many dead endpoints could otherwise take a request on a long tour.
const MaxTries = 8

// Retries is a route's retry policy beyond the safe retries every route
// gets: an answer whose status is in OnStatus is retried on another
// endpoint, up to Attempts times, when the request is idempotent and its
// body (if any) is buffered.
type Retries struct {
	Attempts int
	OnStatus []int
}

func (p Retries) validate() error {
	if p.Attempts < 0 {
		return fmt.Errorf("retries.attempts %d: must be 0 or more", p.Attempts)
	}
	for i, s := range p.OnStatus {
		if s < 500 || s > 599 {
			return fmt.Errorf("retries.onStatus[%d] %d: must be a server error status (500-599)", i, s)
		}
	}
	return nil
}

// RetryOnStatus reports whether an answer with status may be retried.
func (p Retries) RetryOnStatus(status int) bool {
	return p.Attempts > 0 && slices.Contains(p.OnStatus, status)
}

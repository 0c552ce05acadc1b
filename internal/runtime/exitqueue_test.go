package runtime

import (
	"fmt"
	"testing"
	"time"
)

// TestExitQueueKeepsOrderWithoutBlocking: pushes never wait for a reader,
// events come out in the order pushed, and Close ends the channel.
func TestExitQueueKeepsOrderWithoutBlocking(t *testing.T) {
	q := NewExitQueue()
	for i := range 1000 {
		q.Push(ExitEvent{PodUID: fmt.Sprint(i)}) // no reader yet: must not block
	}
	for i := range 1000 {
		select {
		case e := <-q.Out():
			if e.PodUID != fmt.Sprint(i) {
				t.Fatalf("event %d is %q", i, e.PodUID)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d never came", i)
		}
	}
	q.Close()
	select {
	case _, ok := <-q.Out():
		if ok {
			t.Fatal("an event after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Out not closed after Close")
	}
}

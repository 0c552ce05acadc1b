package runtime

import "sync"

// ExitQueue delivers exit events in order without ever blocking the
// watchers that report them, however slowly the caller reads: what a
// driver's Exits channel is made of.
type ExitQueue struct {
	mu    sync.Mutex
	items []ExitEvent
	wake  chan struct{}
	out   chan ExitEvent
	done  chan struct{}
}

// NewExitQueue starts a queue; Close stops it.
func NewExitQueue() *ExitQueue {
	q := &ExitQueue{wake: make(chan struct{}, 1), out: make(chan ExitEvent), done: make(chan struct{})}
	go q.run()
	return q
}

// Push queues e; it never blocks.
func (q *ExitQueue) Push(e ExitEvent) {
	q.mu.Lock()
	q.items = append(q.items, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Out is the channel the events come out of, closed after Close.
func (q *ExitQueue) Out() <-chan ExitEvent { return q.out }

// Close stops delivery; events not yet read are dropped.
func (q *ExitQueue) Close() { close(q.done) }

func (q *ExitQueue) run() {
	defer close(q.out)
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.mu.Unlock()
			select {
			case <-q.wake:
				continue
			case <-q.done:
				return
			}
		}
		e := q.items[0]
		q.mu.Unlock()
		select {
		case q.out <- e:
			q.mu.Lock()
			q.items[0] = ExitEvent{}
			q.items = q.items[1:]
			q.mu.Unlock()
		case <-q.done:
			return
		}
	}
}

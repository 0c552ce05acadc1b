package console

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"slipway.dev/slipway/internal/api"
)

// sse writes server-sent events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	mu sync.Mutex
}

func startSSE(w http.ResponseWriter) *sse {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	return &sse{w: w, rc: rc}
}

// send writes one event; data may hold newlines (each becomes a data line).
func (s *sse) send(event, id, data string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", event)
	}
	if id != "" {
		fmt.Fprintf(&b, "id: %s\n", id)
	}
	for _, l := range strings.Split(data, "\n") {
		fmt.Fprintf(&b, "data: %s\n", l)
	}
	b.WriteString("\n")
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return err
	}
	return s.rc.Flush()
}

// comment keeps an idle stream open through proxies and tells both ends
// when the connection died.
func (s *sse) comment() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write([]byte(": keep-alive\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}

// patchMsg replaces (or adds, or with HTML "" removes) one element.
type patchMsg struct {
	ID      string `json:"id"`
	HTML    string `json:"html"`
	Section string `json:"section,omitempty"`
	First   bool   `json:"first,omitempty"`
}

func (s *sse) patches(ps []patchMsg) error {
	if len(ps) == 0 {
		return nil
	}
	b, _ := json.Marshal(ps)
	return s.send("patch", "", string(b))
}

// debounce is how long a stream gathers changes before it renders them:
// a rollout touching many pods becomes one update.
const debounce = 150 * time.Millisecond

// pump runs a page's stream: it waits for changes (dirty is signalled),
// gathers them for the debounce, calls flush, and keeps the connection
// alive (and calls onTick on every tick), until the client goes or gone is closed (send reload then).
func pump(ctx context.Context, s *sse, dirty <-chan struct{}, gone <-chan struct{}, tick <-chan time.Time, flush, onTick func() error) {
	keep := time.NewTicker(20 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			_ = s.send("reload", "", "")
			return
		case <-keep.C:
			if s.comment() != nil {
				return
			}
		case <-tick:
			if onTick() != nil {
				return
			}
		case <-dirty:
			t := time.NewTimer(debounce)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if flush() != nil {
				return
			}
		}
	}
}

// signal makes a non-blocking, coalescing notifier.
func signal() (chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	return ch, func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// goneOnce closes a channel once.
func goneOnce() (chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, func() { once.Do(func() { close(ch) }) }
}

// revs reads the revisions a page was rendered at ("apps:12,pods:14"),
// so its stream starts where the page ended.
func revs(q string) map[string]int64 {
	m := map[string]int64{}
	for _, kv := range strings.Split(q, ",") {
		k, v, ok := strings.Cut(kv, ":")
		if n, err := strconv.ParseInt(v, 10, 64); ok && err == nil && n > 0 {
			m[k] = n
		}
	}
	return m
}

func revsParam(m map[string]int64) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+":"+strconv.FormatInt(v, 10))
	}
	return strings.Join(parts, ",")
}

func kindOf(name string) api.KindInfo {
	k, _ := api.LookupKind(name)
	return k
}

var (
	appKind      = kindOf("App")
	podKind      = kindOf("Pod")
	revisionKind = kindOf("Revision")
	routeKind    = kindOf("Route")
	serviceKind  = kindOf("Service")
	eventKind    = kindOf("Event")
	buildKind    = kindOf("Build")
)

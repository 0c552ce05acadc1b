package router_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/router"

	"github.com/google/go-cmp/cmp"
)

// shadow is a mirror endpoint that records what it receives and, while
// hold is open, never answers.
type shadow struct {
	addr netip.AddrPort
	mu   sync.Mutex
	got  []string // method path body xff
	hold chan struct{}
	seen atomic.Int64
}

func newShadow(t *testing.T, holding bool) *shadow {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &shadow{addr: netip.MustParseAddrPort(ln.Addr().String()), hold: make(chan struct{})}
	if !holding {
		close(s.hold)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		s.mu.Lock()
		s.got = append(s.got, fmt.Sprintf("%s %s %s %s", req.Method, req.URL.Path, b, req.Header.Get("X-Forwarded-For")))
		s.mu.Unlock()
		s.seen.Add(1)
		<-s.hold
		w.WriteHeader(500) // dropped by the router whatever it is
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return s
}

// TestMirror: with percent 100, every request with no body or a buffered
// one gets a shadow copy (same method, path, body; forwarding headers from
// the connection) while the client gets the primary's answer; a mirror
// that never answers delays nothing: once its slots are taken, copies are
// dropped and counted, and the primary requests all pass.
func TestMirror(t *testing.T) {
	primary := newUpstream(t, "primary")
	sh := newShadow(t, false)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	rc := router.OneBackend("p/m", "m.test", "", primary.addr.String())
	rc.Mirror = &router.MirrorConfig{Service: "p/shadow", Percent: 100, Endpoints: []netip.AddrPort{sh.addr}}
	apply(t, r, rc)

	c := &http.Client{}
	for i := range 10 {
		var body io.Reader
		method := "GET"
		if i%2 == 1 {
			method, body = "POST", strings.NewReader(fmt.Sprintf("b%d", i))
		}
		req, _ := http.NewRequest(method, fmt.Sprintf("%s/p%d", base, i), body)
		req.Host = "m.test"
		req.Header.Set("X-Forwarded-For", "203.0.113.9") // untrusted: replaced
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e echo
		if resp.StatusCode != 200 || json.Unmarshal(b, &e) != nil || e.Name != "primary" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}
	waitFor(t, "10 shadow copies", func() bool { return sh.seen.Load() == 10 })
	var want []string
	for i := range 10 {
		if i%2 == 1 {
			want = append(want, fmt.Sprintf("POST /p%d b%d 127.0.0.1", i, i))
		} else {
			want = append(want, fmt.Sprintf("GET /p%d  127.0.0.1", i))
		}
	}
	sh.mu.Lock()
	got := append([]string(nil), sh.got...)
	sh.mu.Unlock()
	slices.Sort(got) // copies run concurrently: any order
	slices.Sort(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("shadow copies (-want +got):\n%s", d)
	}

	waitFor(t, "the first copies' slots to be free", func() bool { return router.MirrorsInFlight(r) == 0 })

	// A mirror that never answers: primaries are unaffected, copies
	// beyond the slots are dropped.
	stuck := newShadow(t, true)
	defer close(stuck.hold)
	rc.Mirror.Endpoints = []netip.AddrPort{stuck.addr}
	apply(t, r, rc)
	const n = 3 * router.MaxMirrorsInFlight
	var wg sync.WaitGroup
	var failed atomic.Int64
	cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	defer cl.CloseIdleConnections()
	for g := range 16 {
		wg.Go(func() {
			for i := range n / 16 {
				resp, _, err := get(cl, base, "m.test", fmt.Sprintf("/s%d/%d", g, i))
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d primary requests failed with a stuck mirror", failed.Load())
	}
	st, _ := r.Stats("p/m")
	if st.Total.Mirrored+st.Total.MirrorsDropped != 10+n || st.Total.Mirrored != 10+router.MaxMirrorsInFlight {
		t.Errorf("mirrored %d, dropped %d; want %d sent (10 + the %d slots) and the rest of %d dropped", st.Total.Mirrored, st.Total.MirrorsDropped, 10+router.MaxMirrorsInFlight, router.MaxMirrorsInFlight, 10+n)
	}
}

func TestMirrorPercent(t *testing.T) {
	primary := newUpstream(t, "primary")
	sh := newShadow(t, false)
	r := router.New(router.Options{})
	base := serveRouter(t, r)
	rc := router.OneBackend("p/m", "m.test", "", primary.addr.String())
	rc.Mirror = &router.MirrorConfig{Service: "p/shadow", Percent: 20, Endpoints: []netip.AddrPort{sh.addr}}
	apply(t, r, rc)
	c := &http.Client{}
	for range 1000 {
		if resp, _, err := get(c, base, "m.test", "/"); err != nil || resp.StatusCode != 200 {
			t.Fatal(resp, err)
		}
	}
	st, _ := r.Stats("p/m")
	// 20% of 1000 is 200; binomial σ ≈ 12.6, so ±65 is beyond 5σ.
	if m := st.Total.Mirrored; m < 135 || m > 265 {
		t.Errorf("mirrored %d of 1000 at 20%%, want about 200", m)
	}
	waitFor(t, "every copy received", func() bool { return sh.seen.Load() == st.Total.Mirrored })
}

// TestAccessLog: one JSON record per request naming route, service,
// revision, endpoint and status; no query string, cookie or credential.
func TestAccessLog(t *testing.T) {
	u := newUpstream(t, "u")
	var buf syncBuffer
	r := router.New(router.Options{AccessLog: slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: dropTime}))})
	base := serveRouter(t, r)
	apply(t, r, router.OneBackend("p/al", "al.test", "", u.addr.String()))
	get(&http.Client{}, base, "al.test", "/x?token=s3cret", func(req *http.Request) {
		req.Header.Set("Authorization", "Bearer s3cret")
		req.Header.Set("Cookie", "session=s3cret")
	})
	get(&http.Client{}, base, "nothing.test", "/")
	waitFor(t, "two records", func() bool { return strings.Count(buf.String(), "\n") == 2 })
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		if _, ok := m["durationMs"].(float64); !ok {
			t.Errorf("no durationMs in %q", l)
		}
		delete(m, "durationMs")
		got = append(got, m)
	}
	want := []map[string]any{
		{"level": "INFO", "msg": "request", "remote": "127.0.0.1", "proto": "HTTP/1.1", "method": "GET", "host": "al.test", "path": "/x", "status": 200.0,
			"route": "p/al", "service": "p/al", "revision": 1.0, "endpoint": u.addr.String()},
		{"level": "INFO", "msg": "request", "remote": "127.0.0.1", "proto": "HTTP/1.1", "method": "GET", "host": "nothing.test", "path": "/", "status": 404.0},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("access log (-want +got):\n%s", d)
	}
	if strings.Contains(buf.String(), "s3cret") {
		t.Errorf("a secret reached the access log: %s", buf.String())
	}
}

func dropTime(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

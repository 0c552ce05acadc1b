package proxy

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestTableSwapUnderLoad: 32 keep-alive HTTP clients hit the VIP while
// endpoints are added and removed continuously. Each removed backend is
// shut down the way the node agent stops a pod: Apply without it,
// WaitDrained with a bound (the agent's is the grace period), then a
// graceful shutdown. A bound shorter than the time a fresh connection
// counts in flight would stop backends with connections in their accept
// queue: their clients would get a reset. Not one request may fail, and
// every response must come whole from a backend that was started.
func TestTableSwapUnderLoad(t *testing.T) {
	const (
		clients  = 32
		duration = 3 * time.Second
		drainFor = 2 * time.Second
	)
	p := newProxy(t)
	vip := freeVIP(t)

	var mu sync.Mutex
	known := map[string]bool{}
	served := map[string]int{}
	start := func(n int) *backend {
		b := startBackend(t, fmt.Sprintf("b%d", n))
		mu.Lock()
		known[b.name] = true
		mu.Unlock()
		return b
	}
	live := []*backend{start(0), start(1), start(2)}
	mustApply(t, p, oneService(vip, addrs(live...)...))

	bodyRe := regexp.MustCompile(`^(b[0-9]+) 127\.[0-9.]+:[0-9]+$`)
	var ok atomic.Int64
	var fails collect
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		// A quarter of the clients make slow requests, so that backends are
		// shut down with requests in flight.
		path := "/"
		if i%4 == 0 {
			path = "/?sleep=20ms"
		}
		wg.Go(func() {
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}
			defer tr.CloseIdleConnections()
			cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				var reused, wrote bool
				tr2 := &httptrace.ClientTrace{GotConn: func(g httptrace.GotConnInfo) { reused = g.Reused }, WroteRequest: func(httptrace.WroteRequestInfo) { wrote = true }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), tr2), "GET", "http://"+vip.String()+path, nil)
				resp, err := cl.Do(req)
				if err != nil {
					fails.add("client %d: %v reused=%v wrote=%v", i, err, reused, wrote)
					continue
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				m := bodyRe.FindStringSubmatch(string(body))
				mu.Lock()
				switch {
				case err != nil:
					fails.add("client %d: reading body: %v", i, err)
				case resp.StatusCode != http.StatusOK:
					fails.add("client %d: status %d: %q", i, resp.StatusCode, body)
				case m == nil || !known[m[1]]:
					fails.add("client %d: unexpected body %q", i, body)
				default:
					served[m[1]]++
					ok.Add(1)
				}
				mu.Unlock()
			}
		})
	}

	churns := 0
	var shutdownErrs []string
	deadline := time.Now().Add(duration)
	for n := 3; time.Now().Before(deadline); n++ {
		nb := start(n)
		live = append(live, nb)
		mustApply(t, p, oneService(vip, addrs(live...)...))
		old := live[0]
		live = live[1:]
		mustApply(t, p, oneService(vip, addrs(live...)...))
		ctx, cancel := context.WithTimeout(context.Background(), drainFor)
		p.WaitDrained(ctx, old.addr) // bounded: idle keep-alive connections stay
		cancel()
		if err := old.shutdown(10 * time.Second); err != nil {
			shutdownErrs = append(shutdownErrs, fmt.Sprintf("%s: %v", old.name, err))
		}
		churns++
	}
	close(stop)
	wg.Wait()

	if f := fails.list(); len(f) > 0 {
		t.Errorf("%d+ failed requests (of %d ok), first ones:\n%v", len(f), ok.Load(), f)
	}
	if len(shutdownErrs) > 0 {
		t.Errorf("graceful shutdowns failed: %v", shutdownErrs)
	}
	mu.Lock()
	distinct := len(served)
	mu.Unlock()
	t.Logf("%d requests, %d endpoint changes, %d backends served", ok.Load(), churns, distinct)
	// Keep-alive clients move only when their backend shuts down, so a
	// short-lived backend may serve nothing; but clients must have moved
	// to backends added during the run.
	if churns < 5 || ok.Load() < 300 || distinct <= 3 {
		t.Errorf("the load or the churn did not happen: %d requests, %d churns, %d backends served", ok.Load(), churns, distinct)
	}
}

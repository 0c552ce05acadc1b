package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// abManifest is two Apps of the sample app, hello-v1 and hello-v2, one
// pod each and no service: expose makes those.
func abManifest() string {
	var b strings.Builder
	for _, v := range []string{"v1", "v2"} {
		fmt.Fprintf(&b, `---
apiVersion: slipway.dev/v1
kind: App
metadata: {name: hello-%s}
spec:
  replicas: 1
  template:
    containers:
      - name: web
        command: [%q]
        env: [{name: VERSION, value: %s}]
        ports: [{name: http, port: 8080}]
        readinessProbe:
          httpGet: {path: /healthz, port: http}
          periodSeconds: 1
`, v, helloBin, v)
	}
	return b.String()
}

// split is what a batch of requests through the router got.
type split struct {
	v1, v2 int
	errs   []string
}

// routerGet sends n GETs for host through the router from 8 keep-alive
// clients and counts the versions that answered.
func (p *platform) routerGet(host string, n int) split {
	const clients = 8
	var mu sync.Mutex
	var s split
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for range n/clients + min(1, max(0, n%clients-i)) {
				req, _ := http.NewRequest("GET", "http://"+p.router+"/", nil)
				req.Host = host
				resp, err := c.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				switch {
				case err != nil:
					s.errs = append(s.errs, err.Error())
				case resp.StatusCode == 200 && strings.HasPrefix(string(body), "hello from v1"):
					s.v1++
				case resp.StatusCode == 200 && strings.HasPrefix(string(body), "hello from v2"):
					s.v2++
				default:
					s.errs = append(s.errs, fmt.Sprintf("status %d body %q", resp.StatusCode, body))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return s
}

// TestExposeAndRouteBackends: expose makes the sample app reachable
// through the router; set route-backends then splits a route between two
// apps by its weights, exactly as configured, and records each change.
func TestExposeAndRouteBackends(t *testing.T) {
	p := startPlatform(t, t.TempDir())
	p.ok("apply", "-f", writeFile(t, t.TempDir(), "ab.yaml", abManifest()))
	p.waitApp("hello-v1", 1, 60*time.Second)
	p.waitApp("hello-v2", 1, 60*time.Second)

	if out := p.ok("expose", "app/hello-v1"); out != "service/hello-v1 created\nroute/hello-v1 created\n" {
		t.Fatalf("expose app/hello-v1: %q", out)
	}
	if out := p.ok("expose", "app/hello-v1"); out != "service/hello-v1 unchanged\nroute/hello-v1 unchanged\n" {
		t.Fatalf("expose app/hello-v1 again: %q", out)
	}
	if out := p.ok("expose", "app/hello-v2", "--host", "v2.example.test"); out != "service/hello-v2 created\nroute/hello-v2 created\n" {
		t.Fatalf("expose app/hello-v2: %q", out)
	}
	if out := p.ok("expose", "svc/hello-v1", "--name", "hello"); out != "route/hello created\n" {
		t.Fatalf("expose svc/hello-v1 --name hello: %q", out)
	}
	// Each route answers on its host: the router's default one, or --host.
	for host, want := range map[string]split{
		"hello-v1-default.localhost": {v1: 20},
		"v2.example.test":            {v2: 20},
		"hello-default.localhost":    {v1: 20},
	} {
		waitUntil(t, 20*time.Second, host+" answers through the router", func() bool {
			s := p.routerGet(host, 1)
			return s.v1+s.v2 == 1
		})
		if got := p.routerGet(host, 20); got.v1 != want.v1 || got.v2 != want.v2 || len(got.errs) != 0 {
			t.Fatalf("%s: %d from v1, %d from v2, errors %q; want %d and %d", host, got.v1, got.v2, got.errs, want.v1, want.v2)
		}
	}

	if out := p.ok("set", "route-backends", "hello", "hello-v1=50", "hello-v2=50"); out != "route/hello backends updated\n" {
		t.Fatalf("set route-backends 50/50: %q", out)
	}
	// The route sent everything to v1: the first v2 answer shows the new
	// table is in place; every request after it is split by the weights.
	waitUntil(t, 20*time.Second, "v2 answers on hello-default.localhost", func() bool {
		return p.routerGet("hello-default.localhost", 8).v2 > 0
	})
	s := p.routerGet("hello-default.localhost", 2000)
	share := float64(s.v2) * 100 / 2000
	t.Logf("50/50: %d from v1, %d from v2 (%.1f%% v2)", s.v1, s.v2, share)
	if len(s.errs) != 0 || s.v1+s.v2 != 2000 {
		t.Fatalf("50/50: %d answers of 2000, errors %q", s.v1+s.v2, s.errs)
	}
	if share < 45 || share > 55 {
		t.Errorf("50/50: v2 answered %.1f%% of 2000 requests, want 50 ± 5", share)
	}

	if out := p.ok("set", "route-backends", "hello", "hello-v1=0", "hello-v2=100"); out != "route/hello backends updated\n" {
		t.Fatalf("set route-backends 0/100: %q", out)
	}
	// At 50/50, 64 v2 answers in a row happen by chance once in 2^64.
	waitUntil(t, 20*time.Second, "only v2 answers on hello-default.localhost", func() bool {
		return p.routerGet("hello-default.localhost", 64).v2 == 64
	})
	if s := p.routerGet("hello-default.localhost", 1000); s.v2 != 1000 || len(s.errs) != 0 {
		t.Errorf("0/100: %d from v1, %d from v2, errors %q; want all 1000 from v2", s.v1, s.v2, s.errs)
	}

	want := "NAME           KIND      TO         WEIGHT\n" +
		"routes/hello   Service   hello-v1   0 (0%)\n" +
		"routes/hello   Service   hello-v2   100 (100%)\n"
	if out := p.ok("set", "route-backends", "hello"); out != want {
		t.Errorf("set route-backends hello: %q, want %q", out, want)
	}
	var evs struct {
		Items []struct {
			Reason, Message string
			InvolvedObject  struct{ Kind, Name string }
		}
	}
	if err := json.Unmarshal([]byte(p.ok("get", "events", "-o", "json")), &evs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs.Items {
		if ev.Reason == "BackendsChanged" {
			got = append(got, ev.InvolvedObject.Kind+"/"+ev.InvolvedObject.Name+": "+ev.Message)
		}
	}
	wantEvents := []string{
		"Route/hello: backends set to hello-v1=50, hello-v2=50 (were hello-v1=100)",
		"Route/hello: backends set to hello-v1=0, hello-v2=100 (were hello-v1=50, hello-v2=50)",
	}
	if diff := cmp.Diff(wantEvents, got); diff != "" {
		t.Errorf("BackendsChanged events (-want +got):\n%s", diff)
	}
}

package docker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/docker"
)

func TestUnreachableEngineIsAClearError(t *testing.T) {
	_, err := docker.New(context.Background(), docker.Options{Dir: t.TempDir(), Host: "unix:///nonexistent/docker.sock"})
	want := "cannot reach the Docker engine at unix:///nonexistent/docker.sock: "
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("New with no engine: %v, want an error starting %q", err, want)
	}
}

func startPod(t *testing.T, d *docker.Driver, uid string) runtime.Sandbox {
	t.Helper()
	sb, err := d.CreateSandbox(context.Background(), runtime.PodConfig{UID: uid, Name: uid})
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	t.Cleanup(func() {
		if err := d.RemoveSandbox(context.Background(), uid); err != nil {
			t.Errorf("RemoveSandbox: %v", err)
		}
	})
	return sb
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := c.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = errors.New(resp.Status + ": " + string(b))
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval while the app starts
	}
}

// Two containers of one pod share its network namespace: the web container
// reaches the sidecar on localhost, and both serve on the pod's IP.
func TestTwoContainerPodSharesLocalhost(t *testing.T) {
	requireEngine(t)
	d := newDriver(t, t.TempDir())
	image, cmd := appImage(t, testApp)
	sb := startPod(t, d, "pair-"+strings.ToLower(t.Name()[4:8]))
	ctx := context.Background()
	for _, c := range []runtime.ContainerConfig{
		{Name: "sidecar", Image: image, Command: cmd, Env: []string{"HOST=0.0.0.0", "PORT=9001", "WHO=sidecar"}},
		{Name: "web", Image: image, Command: cmd, Env: []string{"HOST=0.0.0.0", "PORT=8080", "WHO=web"}},
	} {
		if _, err := d.StartContainer(ctx, sb.PodUID, c); err != nil {
			t.Fatalf("StartContainer(%s): %v", c.Name, err)
		}
	}
	ip := sb.IP.String()
	var env []string
	if err := json.Unmarshal([]byte(httpGet(t, "http://"+ip+":8080/fetch?url=http://localhost:9001/env")), &env); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(env, "WHO=sidecar") {
		t.Errorf("web fetching localhost:9001/env got %q, want the sidecar's env (WHO=sidecar)", env)
	}
	for port, who := range map[string]string{"8080": "WHO=web", "9001": "WHO=sidecar"} {
		if err := json.Unmarshal([]byte(httpGet(t, "http://"+ip+":"+port+"/env")), &env); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(env, who) {
			t.Errorf("pod IP %s:%s answered with env %q, want %s", ip, port, env, who)
		}
	}
}

func TestMissingImageIsAClearError(t *testing.T) {
	requireEngine(t)
	d := newDriver(t, t.TempDir())
	sb := startPod(t, d, "noimage")
	_, err := d.StartContainer(context.Background(), sb.PodUID, runtime.ContainerConfig{Name: "web", Image: "slipway-test/never-built:1"})
	want := "image \"slipway-test/never-built:1\" is not present locally and cannot be pulled: build it with `slipway build` or `docker build`"
	if err == nil || err.Error() != want || !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("StartContainer with a missing image: %v, want %q (ErrNotFound)", err, want)
	}
	if _, err := d.StartContainer(context.Background(), sb.PodUID, runtime.ContainerConfig{Name: "web"}); !errors.Is(err, runtime.ErrInvalid) {
		t.Errorf("StartContainer without an image: %v, want ErrInvalid", err)
	}
}

// Two Slipways on one engine (two ids) may even use the same pod UID:
// each removes and recovers only its own containers.
func TestOnlyOwnContainersAreTouched(t *testing.T) {
	requireEngine(t)
	ctx := context.Background()
	image, cmd := appImage(t, testApp)
	dirA := t.TempDir()
	a, b := newDriver(t, dirA), newDriver(t, t.TempDir())
	if a.ID() == b.ID() {
		t.Fatalf("two drivers on two directories share the id %s", a.ID())
	}
	const uid = "shared-uid"
	sbA, sbB := startPod(t, a, uid), startPod(t, b, uid)
	for _, x := range []struct {
		d  *docker.Driver
		sb runtime.Sandbox
	}{{a, sbA}, {b, sbB}} {
		if _, err := x.d.StartContainer(ctx, uid, runtime.ContainerConfig{Name: "web", Image: image, Command: cmd, Env: []string{"HOST=0.0.0.0", "PORT=8080"}}); err != nil {
			t.Fatal(err)
		}
		httpGet(t, "http://"+x.sb.IP.String()+":8080/healthz")
	}
	if err := a.RemoveSandbox(ctx, uid); err != nil {
		t.Fatal(err)
	}
	if got := httpGet(t, "http://"+sbB.IP.String()+":8080/healthz"); got != "ok" {
		t.Errorf("the other Slipway's pod answered %q after RemoveSandbox of the same UID here", got)
	}
	if st, err := b.ContainerStatus(ctx, uid, "web"); err != nil || st.State != runtime.StateRunning {
		t.Errorf("the other Slipway's container: %+v, %v; want it Running", st, err)
	}
	// A third driver on a's directory recovers nothing of b's.
	got, err := newDriver(t, dirA).Recover(ctx)
	if err != nil || len(got) != 0 {
		t.Errorf("Recover with a's id after its pod was removed: %+v, %v; want nothing", got, err)
	}
}

// The engine rotates a container's log at LogMaxBytes of its JSON
// encoding, keeping LogKeep rotated files: what Logs returns stays under
// (LogKeep+1)×LogMaxBytes however much the app writes, and ends with the
// newest output.
func TestLogsAreCapped(t *testing.T) {
	requireEngine(t)
	ctx := context.Background()
	d, err := docker.New(ctx, docker.Options{Dir: t.TempDir(), Logger: testLogger(), LogMaxBytes: 16 << 10, LogKeep: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	image, cmd := appImage(t, testApp)
	sb := startPod(t, d, "capped")
	if _, err := d.StartContainer(ctx, sb.PodUID, runtime.ContainerConfig{Name: "web", Image: image, Command: cmd, Env: []string{"HOST=0.0.0.0", "PORT=8080"}}); err != nil {
		t.Fatal(err)
	}
	base := "http://" + sb.IP.String() + ":8080"
	for i := 1; i <= 8; i++ { // 8 × 20 KB of output against a 2 × 16 KiB cap
		httpGet(t, fmt.Sprintf("%s/write?lines=20&size=1000&last=mark-%d", base, i))
	}
	var logs string
	deadline := time.Now().Add(15 * time.Second)
	for !strings.HasSuffix(logs, "mark-8\n") && time.Now().Before(deadline) {
		r, err := d.Logs(ctx, sb.PodUID, "web", runtime.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		logs = string(b)
		time.Sleep(50 * time.Millisecond) // poll interval while the engine writes
	}
	if !strings.HasSuffix(logs, "mark-8\n") || len(logs) > 2*16<<10 || strings.Contains(logs, "mark-1\n") {
		t.Errorf("%d bytes of logs ending %q: want at most %d, the newest output last, the oldest rotated away", len(logs), logs[max(0, len(logs)-20):], 2*16<<10)
	}
}

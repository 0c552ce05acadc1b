package process_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// TestVolumesHideDataDir: a container that mounts volumes sees neither
// the driver's directory nor the claims, only its mounts; a mountPath
// inside them is refused.
func TestVolumesHideDataDir(t *testing.T) {
	dir := t.TempDir()
	d := newDriver(t, testOptions(dir))
	if c := d.Capabilities().Mounts; !c.Supported {
		if os.Getenv("SLIPWAY_REQUIRE_MOUNTS") != "" {
			t.Fatalf("SLIPWAY_REQUIRE_MOUNTS is set but volumes cannot be mounted here: %s", c.Reason)
		}
		t.Skipf("volumes cannot be mounted here: %s", c.Reason)
	}
	ctx := context.Background()
	cfg := runtime.PodConfig{UID: "hide", Name: "hide", Project: "default", Volumes: []runtime.Volume{
		{Name: "data", Claim: &runtime.ClaimVolume{Project: "default", Name: "db"}},
	}}
	sb, err := d.CreateSandbox(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.RemoveSandbox(ctx, "hide")
	ip := sb.IP.String()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	at := filepath.Join(t.TempDir(), "data")
	c := runtime.ContainerConfig{Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port},
		Mounts: []runtime.Mount{{Volume: "data", MountPath: at}}}
	if _, err := d.StartContainer(ctx, "hide", c); err != nil {
		t.Fatal(err)
	}
	defer d.StopContainer(ctx, "hide", "web", time.Second)
	get := func(path string) (int, string) {
		for deadline := time.Now().Add(10 * time.Second); ; {
			resp, err := http.Get("http://" + net.JoinHostPort(ip, port) + path)
			if err != nil {
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
				time.Sleep(20 * time.Millisecond) // poll while the app starts
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b)
		}
	}
	if code, body := get("/writefile?path=" + url.QueryEscape(at+"/f") + "&data=x"); code != 200 {
		t.Fatalf("writing into the claim: %d %s", code, body)
	}
	for _, p := range []string{
		filepath.Join(dir, "pods", "hide", "sandbox.json"),
		filepath.Join(dir, "claims", "default", "db", "f"),
	} {
		if code, body := get("/file?path=" + url.QueryEscape(p)); code == 200 {
			t.Errorf("the container read %s (%q): Slipway's directories must be hidden", p, body)
		}
	}

	bad := c
	bad.Name = "bad"
	bad.Mounts = []runtime.Mount{{Volume: "data", MountPath: filepath.Join(dir, "pods")}}
	_, err = d.StartContainer(ctx, "hide", bad)
	if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "overlaps Slipway's own directory") {
		t.Errorf("a mountPath inside the driver's directory: %v, want ErrInvalid naming the overlap", err)
	}
}

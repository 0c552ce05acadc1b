package docker_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"testing"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/docker"
)

// A listener on an address of the service range (as the service proxy
// binds one) is reachable from a pod across the bridge, and from the host;
// pods themselves never get an address of that range.
func TestPodReachesServiceRange(t *testing.T) {
	requireEngine(t)
	d := newDriver(t, t.TempDir())
	if got, want := d.ServiceRange(), netip.MustParsePrefix("172.29.255.0/24"); got != want {
		t.Fatalf("ServiceRange() = %s, want %s", got, want)
	}
	// High in the range: the e2e platforms allocate from its bottom.
	vip := netip.MustParseAddr("172.29.255.241")
	ln, err := net.Listen("tcp", netip.AddrPortFrom(vip, 0).String())
	if err != nil {
		t.Fatalf("binding a service address on the host: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "service answered %s", r.URL.Path)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	image, cmd := appImage(t, testApp)
	sb := startPod(t, d, "svcclient")
	if !docker.ContainerRange(docker.DefaultSubnet).Contains(sb.IP) {
		t.Errorf("pod IP %s is outside the containers' range %s", sb.IP, docker.ContainerRange(docker.DefaultSubnet))
	}
	if _, err := d.StartContainer(context.Background(), sb.PodUID, runtime.ContainerConfig{
		Name: "web", Image: image, Command: cmd, Env: []string{"HOST=0.0.0.0", "PORT=8080"},
	}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	target := "http://" + ln.Addr().String() + "/from-pod"
	got := httpGet(t, "http://"+sb.IP.String()+":8080/fetch?url="+url.QueryEscape(target))
	if want := "service answered /from-pod"; got != want {
		t.Errorf("the pod fetching %s got %q, want %q", target, got, want)
	}
	if got, want := httpGet(t, "http://"+ln.Addr().String()+"/from-host"), "service answered /from-host"; got != want {
		t.Errorf("the host fetching the service address got %q, want %q", got, want)
	}
}

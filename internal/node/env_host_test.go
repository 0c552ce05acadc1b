package node

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

// HOST is the pod IP where pods share the host's network (loopback pod
// IPs, the process runtime) and every address of the pod where it has a
// network namespace of its own (the Docker runtime's bridge network);
// POD_IP is the pod's IP either way.
func TestHostDependsOnWhetherThePodHasItsOwnNetwork(t *testing.T) {
	pod := &api.Pod{Metadata: api.ObjectMeta{Name: "web-1-abcde", Project: "default"}, Spec: api.PodSpec{App: "web"}}
	for _, tc := range []struct{ ip, host string }{
		{"127.20.0.7", "127.20.0.7"},
		{"172.29.0.5", "0.0.0.0"},
		{"fd00::5", "::"},
	} {
		env, err := ContainerEnv(pod, api.Container{Name: "web"}, netip.MustParseAddr(tc.ip), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"HOST=" + tc.host, "POD_IP=" + tc.ip, "POD_NAME=web-1-abcde", "SLIPWAY_PROJECT=default", "SLIPWAY_APP=web"}
		if diff := cmp.Diff(want, env); diff != "" {
			t.Errorf("pod IP %s: env (-want +got):\n%s", tc.ip, diff)
		}
	}
}

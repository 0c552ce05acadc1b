package docker

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/network"

	"slipway.dev/slipway/internal/runtime"
)

func TestServiceRangeDefaults(t *testing.T) {
	for _, tc := range []struct{ subnet, containers, services string }{
		{"172.29.0.0/16", "172.29.0.0/17", "172.29.255.0/24"},
		{"10.9.0.0/20", "10.9.0.0/21", "10.9.15.0/24"},
		{"192.168.7.0/24", "192.168.7.0/25", "192.168.7.128/25"},
		{"192.168.7.16/28", "192.168.7.16/29", "192.168.7.24/29"},
	} {
		s := netip.MustParsePrefix(tc.subnet)
		got := []string{ContainerRange(s).String(), DefaultServiceRange(s).String()}
		if diff := cmp.Diff([]string{tc.containers, tc.services}, got); diff != "" {
			t.Errorf("%s: container and service ranges (-want +got):\n%s", tc.subnet, diff)
		}
		if err := CheckServiceRange(s, DefaultServiceRange(s)); err != nil {
			t.Errorf("%s: the default service range is refused: %v", tc.subnet, err)
		}
	}
}

// A service range where pods cannot reach it, or where Docker may place a
// container, is refused with a message naming the range and the rule;
// Options report it before any engine is contacted.
func TestServiceRangeBadInput(t *testing.T) {
	subnet := netip.MustParsePrefix("172.29.0.0/16")
	for _, tc := range []struct{ r, want string }{
		{"127.30.0.0/16", "127.30.0.0/16: must lie inside 172.29.128.0/17, the upper half of the Docker network's subnet 172.29.0.0/16"},
		{"172.28.255.0/24", "172.28.255.0/24: must lie inside 172.29.128.0/17"},
		{"172.29.3.0/24", "172.29.3.0/24: must lie inside 172.29.128.0/17"}, // containers' half
		{"172.29.0.0/16", "172.29.0.0/16: must lie inside 172.29.128.0/17"}, // overlaps it
		{"172.29.255.252/31", "172.29.255.252/31: must be at most a /30"},
	} {
		err := CheckServiceRange(subnet, netip.MustParsePrefix(tc.r))
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("CheckServiceRange(%s) = %v, want an error starting %q", tc.r, err, tc.want)
		}
		o := Options{Dir: t.TempDir(), ServiceRange: netip.MustParsePrefix(tc.r)}
		if err := o.setDefaults(); !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "ServiceRange: "+tc.want) {
			t.Errorf("Options{ServiceRange: %s}: got %v, want ErrInvalid naming ServiceRange and %q", tc.r, err, tc.want)
		}
	}
}

func TestJudgeNetwork(t *testing.T) {
	subnet := netip.MustParsePrefix("172.29.0.0/16")
	nw := func(labels map[string]string, containers int, cfg ...network.IPAMConfig) network.Inspect {
		n := network.Inspect{Containers: map[string]network.EndpointResource{}}
		n.Labels = labels
		n.IPAM.Config = cfg
		for i := range containers {
			n.Containers[string(rune('a'+i))] = network.EndpointResource{}
		}
		return n
	}
	ours := map[string]string{LabelNetwork: "slipway"}
	good := network.IPAMConfig{Subnet: subnet, IPRange: netip.MustParsePrefix("172.29.0.0/17")}
	old := network.IPAMConfig{Subnet: subnet}
	for _, tc := range []struct {
		name    string
		nw      network.Inspect
		want    networkVerdict
		wantErr string
	}{
		{"current, in use", nw(ours, 3, good), networkOK, ""},
		{"old, unused", nw(ours, 0, old), networkRecreate, ""},
		{"other subnet, unused", nw(ours, 0, network.IPAMConfig{Subnet: netip.MustParsePrefix("172.28.0.0/16")}), networkRecreate, ""},
		{"old, in use", nw(ours, 2, old), 0, `docker network "slipway" has [subnet 172.29.0.0/16] but Slipway needs subnet 172.29.0.0/16 with ip-range 172.29.0.0/17`},
		{"not ours", nw(nil, 0, good), 0, `docker network "slipway" exists but was not created by Slipway`},
	} {
		got, err := judgeNetwork("slipway", tc.nw, subnet)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("%s: got %v, %v; want an error starting %q", tc.name, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
}

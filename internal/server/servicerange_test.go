package server

import (
	"net/netip"
	"strings"
	"testing"
)

// The service range defaults by runtime, a range given is kept, and on
// Docker a range the pods could not reach is refused naming the flag, the
// value and the rule, before anything is started.
func TestServiceRangeByRuntime(t *testing.T) {
	for _, tc := range []struct {
		runtime, asked, want, wantErr string
	}{
		{"process", "", "127.30.0.0/16", ""},
		{"", "", "127.30.0.0/16", ""},
		{"process", "127.32.7.0/24", "127.32.7.0/24", ""},
		{"docker", "", "172.29.255.0/24", ""},
		{"docker", "172.29.130.64/26", "172.29.130.64/26", ""},
		{"docker", "127.30.0.0/16", "", "--service-ip-range 127.30.0.0/16: must lie inside 172.29.128.0/17, the upper half of the Docker network's subnet 172.29.0.0/16"},
		{"docker", "172.29.1.0/24", "", "--service-ip-range 172.29.1.0/24: must lie inside 172.29.128.0/17"},
	} {
		var asked netip.Prefix
		if tc.asked != "" {
			asked = netip.MustParsePrefix(tc.asked)
		}
		got, err := serviceRange(tc.runtime, asked)
		if tc.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("serviceRange(%q, %s) = %s, %v; want an error starting %q", tc.runtime, tc.asked, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("serviceRange(%q, %s) = %s, %v; want %s", tc.runtime, tc.asked, got, err, tc.want)
		}
	}
}

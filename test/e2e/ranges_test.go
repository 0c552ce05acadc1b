package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"slipway.dev/slipway/internal/proxy"
)

// pickServiceRange is the service range of the platform in home: the one
// it had if it ran before (services keep their addresses for life), else
// serviceRangeFor(n) or, if another process (another test's platform, on
// this machine shared by several test runs) already listens there, the next
// one where nothing does, since `slipway up` refuses a range in use.
func pickServiceRange(t *testing.T, home string, n int, extra []string) string {
	t.Helper()
	file := filepath.Join(home, "service-ip-range")
	if b, err := os.ReadFile(file); err == nil {
		return strings.TrimSpace(string(b))
	}
	r := serviceRangeFor(n, extra)
	for i := range 250 {
		r = serviceRangeFor((n+i)%250, extra)
		if socks, err := proxy.ListeningIn(netip.MustParsePrefix(r)); err != nil || len(socks) == 0 {
			break
		}
	}
	if err := os.WriteFile(file, []byte(r+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

package process_test

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/drivertest"
	"slipway.dev/slipway/internal/runtime/process"
)

// Tests use 127.21.<n>.0/24, one /24 per state directory, so that parallel
// tests (and other packages' tests on the default 127.20/16) never share an
// address.
var (
	rangeMu   sync.Mutex
	rangeNext = 1
	rangeOf   = map[string]netip.Prefix{}
)

func testRange(dir string) netip.Prefix {
	rangeMu.Lock()
	defer rangeMu.Unlock()
	if p, ok := rangeOf[dir]; ok {
		return p
	}
	p := netip.PrefixFrom(netip.AddrFrom4([4]byte{127, 21, byte(rangeNext), 0}), 24)
	rangeNext = rangeNext%250 + 1
	rangeOf[dir] = p
	return p
}

func testLogger() *slog.Logger {
	if os.Getenv("SLIPWAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

const (
	testLogMax  = 16 << 10
	testLogKeep = 1
)

func testOptions(dir string) process.Options {
	return process.Options{
		Dir: dir, IPRange: testRange(dir), Logger: testLogger(),
		LogMaxBytes: testLogMax, LogKeep: testLogKeep, LogCheckInterval: 50 * time.Millisecond,
	}
}

func newDriver(t *testing.T, o process.Options) *process.Driver {
	t.Helper()
	d, err := process.New(o)
	if err != nil {
		t.Fatalf("process.New: %v", err)
	}
	return d
}

// testApp is the harness's test app, built once for the package.
var testApp string

func TestMain(m *testing.M) {
	if os.Getenv(helperDirVar) != "" {
		os.Exit(runHelper())
	}
	dir, err := os.MkdirTemp("", "slipway-process-test-")
	if err == nil {
		testApp, err = drivertest.BuildTestAppTo(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHarness(t *testing.T) {
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T, dir string) runtime.Driver {
			return newDriver(t, testOptions(dir))
		},
		LogMaxBytes: testLogMax,
		LogKeep:     testLogKeep,
		Binary:      testApp,
	})
}

package docker_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/docker"
	"slipway.dev/slipway/internal/runtime/drivertest"
)

// requireDockerVar makes these tests fail instead of skipping where no
// engine answers (CI sets it after starting one).
const requireDockerVar = "SLIPWAY_REQUIRE_DOCKER"

// testApp is the harness's test app, built once for the package.
var testApp string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-docker-test-")
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

var (
	engineOnce sync.Once
	engineErr  error
)

// requireEngine skips the test when no Docker engine answers, or fails it
// when SLIPWAY_REQUIRE_DOCKER=1.
func requireEngine(t testing.TB) {
	t.Helper()
	engineOnce.Do(func() {
		cli, err := client.New(client.FromEnv)
		if err != nil {
			engineErr = err
			return
		}
		defer cli.Close()
		engineErr = docker.Ping(context.Background(), cli)
	})
	if engineErr == nil {
		return
	}
	if os.Getenv(requireDockerVar) == "1" {
		t.Fatalf("no Docker engine, and %s=1 requires one: %v", requireDockerVar, engineErr)
	}
	t.Skipf("no Docker engine answers (set %s=1 to make this a failure): %v", requireDockerVar, engineErr)
}

func testLogger() *slog.Logger {
	if os.Getenv("SLIPWAY_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

func newDriver(t testing.TB, dir string) *docker.Driver {
	t.Helper()
	d, err := docker.New(context.Background(), docker.Options{Dir: dir, Logger: testLogger()})
	if err != nil {
		t.Fatalf("docker.New: %v", err)
	}
	t.Cleanup(func() { d.Close() }) // a second Close is a no-op
	return d
}

var (
	imageMu  sync.Mutex
	imageRef = map[string]string{}
)

// appImage packages a static binary FROM scratch as /app (once per binary
// content) and returns the image and the command that runs it.
func appImage(t testing.TB, binary string) (string, []string) {
	t.Helper()
	imageMu.Lock()
	defer imageMu.Unlock()
	if ref, ok := imageRef[binary]; ok {
		return ref, []string{"/app"}
	}
	b, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	ref := "slipway-test/app:" + hex.EncodeToString(sum[:6])
	cli, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if err := docker.BuildScratchImage(context.Background(), cli, ref, []docker.File{{Path: "/app", Mode: 0o755, Data: b}}, []string{"/app"}); err != nil {
		t.Fatal(err)
	}
	imageRef[binary] = ref
	return ref, []string{"/app"}
}

func TestHarness(t *testing.T) {
	requireEngine(t)
	drivertest.Run(t, drivertest.Config{
		New: func(t *testing.T, dir string) runtime.Driver { return newDriver(t, dir) },
		App: func(t *testing.T, binary string) (string, []string) { return appImage(t, binary) },
		// The engine's json-file cap counts its JSON encoding, not the
		// app's bytes, so the harness's exact rotation arithmetic does not
		// apply: LogMaxBytes stays 0.
		Binary:    testApp,
		AsyncLogs: true,
	})
}

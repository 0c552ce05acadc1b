// Package drivertest is the harness every runtime driver passes: real
// processes (or containers) of a small test app, real sockets on the pods'
// addresses, timings taken from the driver's own timestamps.
//
// A driver's test calls Run:
//
//	func TestHarness(t *testing.T) {
//		drivertest.Run(t, drivertest.Config{New: func(t *testing.T, dir string) runtime.Driver { ... }})
//	}
package drivertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"slipway.dev/slipway/internal/runtime"
)

// Config describes the driver under test.
type Config struct {
	// New returns a driver keeping its state under dir. Run calls it twice
	// on one dir to play a Slipway restart (after closing the first), so it
	// must not clean dir up itself. Each call outside that pair gets a
	// fresh dir; drivers on different dirs may run at the same time.
	New func(t *testing.T, dir string) runtime.Driver
	// App turns the test app binary into what a ContainerConfig runs: nil
	// runs the binary itself (the process driver); a Docker driver builds
	// an image holding it and returns that image and the binary's path in it.
	App func(t *testing.T, binary string) (image string, command []string)
	// LogMaxBytes and LogKeep are the log cap and rotated-file count that
	// New configures; LogMaxBytes 0 skips the rotation test.
	LogMaxBytes int64
	LogKeep     int
	// Binary is a test app already built with BuildTestAppTo; empty builds one.
	Binary string
	// AsyncLogs: the driver's medium collects output on its own time
	// (Docker reads the two pipes apart and writes what it read a moment
	// later). Each stream keeps its order but their interleaving is the
	// medium's, and output written is in the logs shortly after, not at
	// once: log tests compare each stream on its own, a tail with the
	// driver's own full log, and wait (15 s at most) for output to show.
	AsyncLogs bool
}

// leakVar is set in the test process: no container may see it, since
// drivers must never pass Slipway's own environment on.
const leakVar = "SLIPWAY_DRIVERTEST_MUST_NOT_LEAK"

// requireCgroupsVar makes limit tests fail instead of skipping.
const requireCgroupsVar = "SLIPWAY_REQUIRE_CGROUPS"

// Run runs the whole harness against one driver. It sets an environment
// variable for its duration, so the calling test must not be parallel.
func Run(t *testing.T, cfg Config) {
	if cfg.New == nil {
		t.Fatal("drivertest.Config.New must be set")
	}
	h := &harness{cfg: cfg}
	h.binary = cfg.Binary
	if h.binary == "" {
		h.binary = BuildTestApp(t)
	}
	h.command = []string{h.binary}
	if cfg.App != nil {
		h.image, h.command = cfg.App(t, h.binary)
	}
	if err := os.Setenv(leakVar, "secret"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Unsetenv(leakVar) })

	t.Run("StartStatusStop", h.testStartStatusStop)
	t.Run("ExitCodes", h.testExitCodes)
	t.Run("StopKillsAfterGrace", h.testStopKillsAfterGrace)
	t.Run("StopPromptWhenTermHonoured", h.testStopPrompt)
	t.Run("Errors", h.testErrors)
	t.Run("PodNetwork", h.testPodNetwork)
	t.Run("EnvAndWorkingDir", h.testEnvAndWorkingDir)
	t.Run("Logs", h.testLogs)
	t.Run("LogsFollow", h.testLogsFollow)
	t.Run("LogRotation", h.testLogRotation)
	t.Run("Exec", h.testExec)
	t.Run("ExecStream", h.testExecStream)
	t.Run("Recover", h.testRecover)
	t.Run("MemoryLimitOOMKilled", h.testOOM)
	t.Run("CPULimit", h.testCPULimit)
	t.Run("Claims", h.testClaims)
	t.Run("EmptyDir", h.testEmptyDir)
	t.Run("FilesUpdate", h.testFilesUpdate)
	t.Run("ReadOnly", h.testReadOnly)
	t.Run("SubPath", h.testSubPath)
}

// BuildTestApp compiles the test app (static, no cgo) into a temporary
// directory of t and returns its path.
func BuildTestApp(t testing.TB) string {
	t.Helper()
	out, err := BuildTestAppTo(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// BuildTestAppTo compiles the test app into dir (for a TestMain that shares
// one build between tests) and returns its path.
func BuildTestAppTo(dir string) (string, error) {
	out := filepath.Join(dir, "testapp")
	cmd := exec.Command("go", "build", "-o", out, "slipway.dev/slipway/internal/runtime/drivertest/testapp")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test app: %v\n%s", err, b)
	}
	return out, nil
}

type harness struct {
	cfg     Config
	binary  string
	image   string
	command []string
}

// env is one driver under test, with the exits it reported.
type env struct {
	t    *testing.T
	h    *harness
	d    runtime.Driver
	dir  string
	mu   sync.Mutex
	seen map[string][]runtime.ExitEvent // by podUID/name
	wake chan struct{}                  // closed and replaced on each exit
	pods []string
	done chan struct{}
	// closedEarly: the test closed the driver itself (a simulated crash of
	// Slipway); cleanup then leaves its pods to the next driver.
	closedEarly bool
}

// newEnv starts a driver on a fresh directory; its pods are removed and the
// driver closed when the test ends.
func (h *harness) newEnv(t *testing.T) *env {
	return h.envOn(t, t.TempDir())
}

func (h *harness) envOn(t *testing.T, dir string) *env {
	e := &env{t: t, h: h, d: h.cfg.New(t, dir), dir: dir, seen: map[string][]runtime.ExitEvent{}, wake: make(chan struct{}), done: make(chan struct{})}
	go e.collect()
	t.Cleanup(func() {
		e.mu.Lock()
		pods, early := e.pods, e.closedEarly
		e.mu.Unlock()
		if early {
			return
		}
		for _, uid := range pods {
			if err := e.d.RemoveSandbox(context.Background(), uid); err != nil {
				t.Errorf("RemoveSandbox(%s) at cleanup: %v", uid, err)
			}
		}
		e.close()
	})
	return e
}

// closeNow closes the driver without stopping anything, as a Slipway that
// is restarted would leave its containers.
func (e *env) closeNow() {
	e.mu.Lock()
	e.closedEarly = true
	e.mu.Unlock()
	e.close()
}

// adoptPod makes the pod's removal at cleanup this driver's job.
func (e *env) adoptPod(uid string) {
	e.mu.Lock()
	e.pods = append(e.pods, uid)
	e.mu.Unlock()
}

func (e *env) close() {
	if err := e.d.Close(); err != nil {
		e.t.Errorf("Close: %v", err)
	}
	<-e.done
}

func (e *env) collect() {
	defer close(e.done)
	for ev := range e.d.Exits() {
		e.mu.Lock()
		k := ev.PodUID + "/" + ev.Name
		e.seen[k] = append(e.seen[k], ev)
		close(e.wake)
		e.wake = make(chan struct{})
		e.mu.Unlock()
	}
}

// exit waits for the n-th (1-based) exit event of a container.
func (e *env) exit(uid, name string, n int) runtime.ExitEvent {
	e.t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		e.mu.Lock()
		evs, wake := e.seen[uid+"/"+name], e.wake
		e.mu.Unlock()
		if len(evs) >= n {
			return evs[n-1]
		}
		select {
		case <-wake:
		case <-deadline:
			e.t.Fatalf("no exit event #%d for container %s of pod %s within 20s (have %d)", n, name, uid, len(evs))
		}
	}
}

// exitCount is how many exit events a container has had so far.
func (e *env) exitCount(uid, name string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.seen[uid+"/"+name])
}

// pod creates a sandbox that is removed when the test ends.
func (e *env) pod() (uid, ip string) {
	e.t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	uid = "pod-" + hex.EncodeToString(b)
	sb, err := e.d.CreateSandbox(context.Background(), podConfig(uid))
	if err != nil {
		e.t.Fatalf("CreateSandbox: %v", err)
	}
	if sb.PodUID != uid || !sb.IP.IsValid() {
		e.t.Fatalf("CreateSandbox returned %+v, want PodUID %s and a valid IP", sb, uid)
	}
	e.mu.Lock()
	e.pods = append(e.pods, uid)
	e.mu.Unlock()
	return uid, sb.IP.String()
}

func podConfig(uid string) runtime.PodConfig {
	return runtime.PodConfig{
		UID: uid, Name: "web-1-" + uid[4:9], Project: "default", App: "web", Revision: "web-1",
		Labels: map[string]string{"app": "web"}, Ports: []runtime.Port{{Number: 8080, Protocol: "TCP"}},
	}
}

// app is a container config running the test app.
func (e *env) app(name, ip, port string, args []string, extraEnv ...string) runtime.ContainerConfig {
	env := []string{"HOST=" + ip, "PORT=" + port}
	return runtime.ContainerConfig{
		Name: name, Image: e.h.image, Command: e.h.command, Args: args,
		Env: append(env, extraEnv...),
	}
}

func (e *env) start(uid string, c runtime.ContainerConfig) runtime.ContainerStatus {
	e.t.Helper()
	st, err := e.d.StartContainer(context.Background(), uid, c)
	if err != nil {
		e.t.Fatalf("StartContainer(%s): %v", c.Name, err)
	}
	return st
}

// startServing starts the app as a server and waits until it answers.
func (e *env) startServing(uid, ip, name string, args []string, extraEnv ...string) (runtime.ContainerConfig, runtime.ContainerStatus, string) {
	e.t.Helper()
	port := freePort(e.t, ip)
	c := e.app(name, ip, port, args, extraEnv...)
	st := e.start(uid, c)
	get(e.t, ip, port, "/healthz")
	return c, st, port
}

func (e *env) stop(uid, name string, grace time.Duration) {
	e.t.Helper()
	if err := e.d.StopContainer(context.Background(), uid, name, grace); err != nil {
		e.t.Fatalf("StopContainer(%s): %v", name, err)
	}
}

func (e *env) status(uid, name string) runtime.ContainerStatus {
	e.t.Helper()
	st, err := e.d.ContainerStatus(context.Background(), uid, name)
	if err != nil {
		e.t.Fatalf("ContainerStatus(%s): %v", name, err)
	}
	return st
}

// freePort picks a port free on ip. Pods have addresses of their own, so
// only the pod's own containers could race for it.
func freePort(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		// Not a local address (a bridge network): only the pod's own
		// containers could hold a port, and each call gets a new one.
		return strconv.Itoa(int(20000 + bridgePorts.Add(1)%40000))
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// bridgePorts numbers the ports freePort hands out on non-local addresses.
var bridgePorts atomic.Int32

var client = &http.Client{Timeout: 5 * time.Second}

// get waits (up to 15 s) for the app at ip:port to answer path with 200.
func get(t *testing.T, ip, port, path string) string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	url := "http://" + net.JoinHostPort(ip, port) + path
	for {
		body, err := tryGet(url)
		if err == nil {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval while the app starts
	}
}

func tryGet(url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s: %s", resp.Status, b)
	}
	return string(b), nil
}

// refused reports whether nothing listens at ip:port any more.
func refused(ip, port string) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, port), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// eventually polls cond until it holds or 15 s pass.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s; last: %s", what, last)
		}
		time.Sleep(20 * time.Millisecond) // poll interval
	}
}

// logsOf reads a container's logs, which must be want (by sameLog); with
// AsyncLogs it waits until they are. It returns what it read last.
func (h *harness) logsOf(t *testing.T, d runtime.Driver, uid, name string, o runtime.LogOptions, want string) string {
	t.Helper()
	got := readLogs(t, d, uid, name, o)
	if !h.cfg.AsyncLogs {
		return got
	}
	deadline := time.Now().Add(15 * time.Second)
	for !h.sameLog(got, want) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond) // poll interval while the medium catches up
		got = readLogs(t, d, uid, name, o)
	}
	return got
}

func readLogs(t *testing.T, d runtime.Driver, uid, name string, o runtime.LogOptions) string {
	t.Helper()
	r, err := d.Logs(context.Background(), uid, name, o)
	if err != nil {
		t.Fatalf("Logs(%s, %+v): %v", name, o, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading logs of %s: %v", name, err)
	}
	return string(b)
}

func requireLimits(t *testing.T, c runtime.Capability, what string) {
	t.Helper()
	if c.Supported {
		return
	}
	if os.Getenv(requireCgroupsVar) == "1" {
		t.Fatalf("%s limits are not enforceable here (%s), and %s=1 requires them", what, c.Reason, requireCgroupsVar)
	}
	t.Skipf("%s limits are not enforceable on this machine: %s (set %s=1 to make this a failure)", what, c.Reason, requireCgroupsVar)
}

// normal drops what varies between runs from a status, for comparison.
func normal(s runtime.ContainerStatus) runtime.ContainerStatus {
	s.PID, s.StartedAt, s.FinishedAt, s.Message = 0, time.Time{}, time.Time{}, ""
	return s
}

func isErr(err, target error) bool { return err != nil && errors.Is(err, target) }

func lines(s string) []string { return strings.SplitAfter(s, "\n") }

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

package process_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/runtime"
	"slipway.dev/slipway/internal/runtime/process"
)

// fixture is one driver with cleanup.
type fixture struct {
	t *testing.T
	d *process.Driver
}

func newFixture(t *testing.T, o process.Options) *fixture {
	d := newDriver(t, o)
	f := &fixture{t: t, d: d}
	t.Cleanup(func() {
		recs, _ := d.Recover(context.Background())
		for _, r := range recs {
			if err := d.RemoveSandbox(context.Background(), r.Pod.UID); err != nil {
				t.Errorf("RemoveSandbox(%s): %v", r.Pod.UID, err)
			}
		}
		d.Close()
	})
	return f
}

func (f *fixture) sandbox(uid string) string {
	f.t.Helper()
	sb, err := f.d.CreateSandbox(context.Background(), runtime.PodConfig{UID: uid})
	if err != nil {
		f.t.Fatalf("CreateSandbox(%s): %v", uid, err)
	}
	return sb.IP.String()
}

// serve starts the test app serving on the pod's IP and waits for it.
func (f *fixture) serve(uid, ip, name string, args []string, env ...string) (runtime.ContainerStatus, string) {
	f.t.Helper()
	port := freePort(f.t, ip)
	st, err := f.d.StartContainer(context.Background(), uid, runtime.ContainerConfig{
		Name: name, Command: []string{testApp}, Args: args, Env: append([]string{"HOST=" + ip, "PORT=" + port}, env...),
	})
	if err != nil {
		f.t.Fatalf("StartContainer(%s): %v", name, err)
	}
	httpGet(f.t, ip, port, "/healthz")
	return st, port
}

func (f *fixture) nextExit() runtime.ExitEvent {
	f.t.Helper()
	select {
	case ev := <-f.d.Exits():
		return ev
	case <-time.After(20 * time.Second):
		f.t.Fatal("no exit event within 20s")
		return runtime.ExitEvent{}
	}
}

func freePort(t *testing.T, ip string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("binding %s: %v", ip, err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

func httpGet(t *testing.T, ip, port, path string) string {
	t.Helper()
	url := "http://" + net.JoinHostPort(ip, port) + path
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			b, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				return string(b)
			}
			err = fmt.Errorf("status %d, %v", resp.StatusCode, rerr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval while the app starts
	}
}

// procState is a process's state letter from /proc, or 0 when it is gone.
func procState(pid int) byte {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	return b[i+2]
}

func alive(pid int) bool { s := procState(pid); return s != 0 && s != 'Z' && s != 'X' }

// Linux routes all of 127/8 to lo: a pod address can be bound and reached
// with no setup.
func TestLoopbackBind(t *testing.T) {
	f := newFixture(t, testOptions(t.TempDir()))
	ip := f.sandbox("pod-bind")
	if !netip.MustParsePrefix("127.0.0.0/8").Contains(netip.MustParseAddr(ip)) || ip == "127.0.0.1" {
		t.Fatalf("pod IP %s is not a loopback address of its own", ip)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("binding the pod IP %s: %v", ip, err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Write([]byte("hi"))
			c.Close()
		}
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "hi" {
		t.Errorf("read %q over %s, want hi", b, l.Addr())
	}
}

func TestDefaultIPRange(t *testing.T) {
	o := testOptions(t.TempDir())
	o.IPRange = netip.Prefix{}
	f := newFixture(t, o)
	// Other Slipways on this machine (tests running beside this one) may
	// hold the first addresses: the driver skips those.
	ip := netip.MustParseAddr(f.sandbox("pod-default"))
	if !process.DefaultIPRange.Contains(ip) {
		t.Errorf("first pod IP %s is outside the default range %s", ip, process.DefaultIPRange)
	}
}

func TestOptionsValidation(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		mod  func(*process.Options)
		want string
	}{
		{func(o *process.Options) { o.Dir = "" }, "Dir: must be set"},
		{func(o *process.Options) { o.IPRange = netip.MustParsePrefix("10.0.0.0/8") }, "IPRange: 10.0.0.0/8: must lie inside 127.0.0.0/8"},
		{func(o *process.Options) { o.IPRange = netip.MustParsePrefix("127.0.0.0/16") }, "IPRange: 127.0.0.0/16: must not contain 127.0.0.1"},
		{func(o *process.Options) { o.IPRange = netip.MustParsePrefix("127.22.0.0/30") }, "IPRange: 127.22.0.0/30: must be /29 or larger"},
		{func(o *process.Options) { o.IPRange = netip.MustParsePrefix("127.22.0.1/24") }, "IPRange: 127.22.0.1/24: must be a network address (127.22.0.0/24)"},
		{func(o *process.Options) { o.LogMaxBytes = 10 }, "LogMaxBytes: 10: must be at least 1024"},
		{func(o *process.Options) { o.CgroupName = "../x" }, `CgroupName: "../x"`},
	} {
		o := testOptions(dir)
		tc.mod(&o)
		d, err := process.New(o)
		if err == nil {
			d.Close()
			t.Errorf("New(%+v) succeeded, want an error containing %q", o, tc.want)
			continue
		}
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v; want ErrInvalid containing %q", err, tc.want)
		}
	}
}

func TestDirLocked(t *testing.T) {
	o := testOptions(t.TempDir())
	newFixture(t, o)
	d, err := process.New(o)
	if err == nil {
		d.Close()
		t.Fatal("a second driver opened a directory in use")
	}
	if !strings.Contains(err.Error(), "in use by another driver") {
		t.Errorf("error %q does not say the directory is in use", err)
	}
}

// Addresses are recorded durably and never handed out twice, across
// restarts; an exhausted range says so; a released address is reusable.
func TestIPAllocationPersistsAndExhausts(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	o.IPRange = netip.MustParsePrefix("127.21.252.8/29") // .9 to .14 are usable
	d1 := newDriver(t, o)
	ctx := context.Background()
	var got []string
	for i := range 3 {
		sb, err := d1.CreateSandbox(ctx, runtime.PodConfig{UID: fmt.Sprintf("p%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, sb.IP.String())
	}
	d1.Close()
	f := newFixture(t, o)
	for i := 3; i < 6; i++ {
		got = append(got, f.sandbox(fmt.Sprintf("p%d", i)))
	}
	want := []string{"127.21.252.9", "127.21.252.10", "127.21.252.11", "127.21.252.12", "127.21.252.13", "127.21.252.14"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addresses across a restart (-want +got):\n%s", diff)
	}
	_, err := f.d.CreateSandbox(ctx, runtime.PodConfig{UID: "p6"})
	if err == nil || !strings.Contains(err.Error(), "no free pod address left in 127.21.252.8/29 (6 in use)") {
		t.Errorf("CreateSandbox in a full range: %v, want it to say the range is full", err)
	}
	if err := f.d.RemoveSandbox(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if ip := f.sandbox("p6"); ip != "127.21.252.11" {
		t.Errorf("after releasing 127.21.252.11, the next pod got %s", ip)
	}
}

// State files are versioned, private, and written without leftovers.
func TestStateFiles(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, testOptions(dir))
	ip := f.sandbox("pod-files")
	st, _ := f.serve("pod-files", ip, "web", nil, "SECRET=hunter2")
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if e.IsDir() {
			want = 0o700
		}
		if p != dir && fi.Mode().Perm() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode().Perm(), want)
		}
		if strings.HasSuffix(p, ".tmp") {
			t.Errorf("leftover temporary file %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var sb struct {
		Version int    `json:"version"`
		UID     string `json:"uid"`
		IP      string `json:"ip"`
	}
	readJSONFile(t, filepath.Join(dir, "pods", "pod-files", "sandbox.json"), &sb)
	if sb.Version != 1 || sb.UID != "pod-files" || sb.IP != ip {
		t.Errorf("sandbox.json: %+v, want version 1, uid pod-files, ip %s", sb, ip)
	}
	var cs struct {
		Version    int    `json:"version"`
		Phase      string `json:"phase"`
		PID        int    `json:"pid"`
		PGID       int    `json:"pgid"`
		StartTicks uint64 `json:"startTicks"`
		BootID     string `json:"bootID"`
		ConfigHash string `json:"configHash"`
	}
	readJSONFile(t, filepath.Join(dir, "pods", "pod-files", "containers", "web", "state.json"), &cs)
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if cs.Version != 1 || cs.Phase != "running" || cs.PID != st.PID || cs.PGID != st.PID || cs.StartTicks == 0 ||
		cs.BootID != strings.TrimSpace(string(boot)) || cs.ConfigHash != st.ConfigHash {
		t.Errorf("state.json: %+v; want version 1, running, pid=pgid=%d, start ticks, this boot's id, hash %s", cs, st.PID, st.ConfigHash)
	}
}

func readJSONFile(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The process driver adds nothing to a container's environment.
func TestExactEnv(t *testing.T) {
	f := newFixture(t, testOptions(t.TempDir()))
	ip := f.sandbox("pod-env")
	port := freePort(t, ip)
	env := []string{"HOST=" + ip, "PORT=" + port, "B=2", "A=1"}
	if _, err := f.d.StartContainer(context.Background(), "pod-env", runtime.ContainerConfig{Name: "web", Command: []string{testApp}, Env: env}); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := json.Unmarshal([]byte(httpGet(t, ip, port, "/env")), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(env, got); diff != "" {
		t.Errorf("container environment (-given +seen):\n%s", diff)
	}
}

// A command is resolved in the container's PATH and working directory, and
// a missing one is a clear error, not a started-then-failed container.
func TestCommandResolution(t *testing.T) {
	f := newFixture(t, testOptions(t.TempDir()))
	f.sandbox("pod-cmd")
	ctx := context.Background()
	binDir := filepath.Dir(testApp)
	for _, tc := range []struct {
		name string
		c    runtime.ContainerConfig
	}{
		{"inpath", runtime.ContainerConfig{Command: []string{"testapp"}, Env: []string{"PATH=/nonexistent:" + binDir}}},
		{"relative", runtime.ContainerConfig{Command: []string{"./testapp"}, WorkingDir: binDir}},
	} {
		tc.c.Name = tc.name
		tc.c.Args = []string{"-exit", "5"}
		if _, err := f.d.StartContainer(ctx, "pod-cmd", tc.c); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if ev := f.nextExit(); ev.Name != tc.name || ev.Status.ExitCode != 5 {
			t.Errorf("%s: exit %+v, want %s with code 5", tc.name, ev, tc.name)
		}
	}
	for _, tc := range []struct {
		c    runtime.ContainerConfig
		want string
	}{
		{runtime.ContainerConfig{Name: "nope", Command: []string{"no-such-binary"}, Env: []string{"PATH=" + binDir}},
			`executable "no-such-binary" not found in the pod's PATH`}, // issue #18: once, without the PATH
		{runtime.ContainerConfig{Name: "nocmd"}, "command: must be set"},
		{runtime.ContainerConfig{Name: "badwd", Command: []string{testApp}, WorkingDir: "/no/such/dir"}, `workingDir: "/no/such/dir": not a directory`},
	} {
		_, err := f.d.StartContainer(ctx, "pod-cmd", tc.c)
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("StartContainer(%s): %v; want ErrInvalid containing %q", tc.c.Name, err, tc.want)
		}
		if _, err := f.d.ContainerStatus(ctx, "pod-cmd", tc.c.Name); !errors.Is(err, runtime.ErrNotFound) {
			t.Errorf("a failed start left a container %s behind: %v", tc.c.Name, err)
		}
	}
}

// What a container forks is stopped with it: a child that ignores SIGTERM
// is killed once the leader has gone, whether the leader was stopped or
// exited by itself, with or without cgroups.
func TestProcessGroupCleanup(t *testing.T) {
	for _, noCgroups := range []bool{false, true} {
		t.Run(fmt.Sprintf("noCgroups=%v", noCgroups), func(t *testing.T) {
			o := testOptions(t.TempDir())
			o.NoCgroups = noCgroups
			f := newFixture(t, o)
			ip := f.sandbox("pod-group")
			for _, how := range []string{"stop", "exit"} {
				st, port := f.serve("pod-group", ip, how, []string{"-spawn-child"})
				child, _ := strconv.Atoi(httpGet(t, ip, port, "/child"))
				if !alive(child) {
					t.Fatalf("%s: child %d not running", how, child)
				}
				if how == "stop" {
					if err := f.d.StopContainer(context.Background(), "pod-group", how, 30*time.Second); err != nil {
						t.Fatal(err)
					}
				} else {
					httpGet(t, ip, port, "/exit?code=0")
				}
				ev := f.nextExit()
				if ev.Status.PID != st.PID {
					t.Fatalf("%s: exit of pid %d, want %d", how, ev.Status.PID, st.PID)
				}
				if alive(child) {
					t.Errorf("%s: the container's child %d still runs after the container ended", how, child)
				}
				if took := ev.Status.FinishedAt.Sub(st.StartedAt); how == "stop" && took > 10*time.Second {
					t.Errorf("stop took %v: the leader honoured SIGTERM, so no grace should be waited", took)
				}
			}
		})
	}
}

// A recorded pid that now belongs to another process (different start
// time) is not adopted, and that process is never signalled.
func TestRecoverRejectsReusedPID(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	d1 := newDriver(t, o)
	ctx := context.Background()
	sb, err := d1.CreateSandbox(ctx, runtime.PodConfig{UID: "pod-reuse"})
	if err != nil {
		t.Fatal(err)
	}
	ip := sb.IP.String()
	port := freePort(t, ip)
	st, err := d1.StartContainer(ctx, "pod-reuse", runtime.ContainerConfig{Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port}})
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, ip, port, "/healthz")
	d1.Close()
	// The container dies while no driver watches; another process shows up
	// under the pid its state file names.
	syscall.Kill(st.PID, syscall.SIGKILL)
	for alive(st.PID) {
		time.Sleep(10 * time.Millisecond) // poll until the kill lands
	}
	other := exec.Command(testApp, "-sleep", "1h")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	statePath := filepath.Join(dir, "pods", "pod-reuse", "containers", "web", "state.json")
	var state map[string]any
	readJSONFile(t, statePath, &state)
	// Start times are in 10 ms ticks: forge one tick apart, the closest a
	// reused pid can come (and closer than any real reuse comes).
	otherStat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", other.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	f22 := strings.Fields(string(otherStat[strings.LastIndexByte(string(otherStat), ')')+1:]))[19]
	otherTicks, _ := strconv.ParseUint(f22, 10, 64)
	state["pid"], state["pgid"], state["startTicks"] = other.Process.Pid, other.Process.Pid, otherTicks-1
	b, _ := json.Marshal(state)
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t, o)
	recs, err := f.d.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(recs[0].Containers) != 1 {
		t.Fatalf("Recover: %+v, want one pod with one container", recs)
	}
	got := recs[0].Containers[0].Status
	if got.State != runtime.StateExited || got.Reason != runtime.ReasonUnknown || got.ExitCode != -1 ||
		!strings.Contains(got.Message, "its pid now belongs to another process") {
		t.Errorf("recovered status %+v; want Exited, Unknown, -1, saying the pid belongs to another process", got)
	}
	if err := f.d.StopContainer(ctx, "pod-reuse", "web", time.Second); err != nil {
		t.Errorf("StopContainer of the unadopted container: %v", err)
	}
	if err := f.d.RemoveSandbox(ctx, "pod-reuse"); err != nil {
		t.Fatal(err)
	}
	if !alive(other.Process.Pid) {
		t.Errorf("the unrelated process %d holding the reused pid was killed", other.Process.Pid)
	}
}

// Before Recover has verified them, recorded containers are Unknown and
// may not be acted on.
func TestActingBeforeRecover(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	d1 := newDriver(t, o)
	ctx := context.Background()
	sb, _ := d1.CreateSandbox(ctx, runtime.PodConfig{UID: "pod-early"})
	ip := sb.IP.String()
	port := freePort(t, ip)
	st, err := d1.StartContainer(ctx, "pod-early", runtime.ContainerConfig{Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port}})
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, ip, port, "/healthz")
	d1.Close()
	f := newFixture(t, o)
	if got, _ := f.d.ContainerStatus(ctx, "pod-early", "web"); got.State != runtime.StateUnknown {
		t.Errorf("status before Recover: %s, want Unknown", got.State)
	}
	if err := f.d.StopContainer(ctx, "pod-early", "web", 0); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("StopContainer before Recover: %v, want ErrConflict", err)
	}
	if _, err := f.d.StartContainer(ctx, "pod-early", runtime.ContainerConfig{Name: "web", Command: []string{testApp}}); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("StartContainer before Recover: %v, want ErrConflict", err)
	}
	if err := f.d.RemoveSandbox(ctx, "pod-early"); !errors.Is(err, runtime.ErrConflict) {
		t.Errorf("RemoveSandbox before Recover: %v, want ErrConflict", err)
	}
	if _, err := f.d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.d.ContainerStatus(ctx, "pod-early", "web"); got.State != runtime.StateRunning || got.PID != st.PID {
		t.Errorf("status after Recover: %s pid %d, want Running pid %d", got.State, got.PID, st.PID)
	}
}

const (
	helperDirVar   = "SLIPWAY_PROCESS_TEST_HELPER_DIR"
	helperAppVar   = "SLIPWAY_PROCESS_TEST_HELPER_APP"
	helperRangeVar = "SLIPWAY_PROCESS_TEST_HELPER_RANGE"
)

// runHelper plays a Slipway that starts one container and is then killed.
func runHelper() int {
	o := process.Options{Dir: os.Getenv(helperDirVar), IPRange: netip.MustParsePrefix(os.Getenv(helperRangeVar))}
	d, err := process.New(o)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ctx := context.Background()
	sb, err := d.CreateSandbox(ctx, runtime.PodConfig{UID: "pod-orphan"})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	l, err := net.Listen("tcp", net.JoinHostPort(sb.IP.String(), "0"))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	st, err := d.StartContainer(ctx, "pod-orphan", runtime.ContainerConfig{
		Name: "web", Command: []string{os.Getenv(helperAppVar)}, Args: []string{"-lines", "1"},
		Env: []string{"HOST=" + sb.IP.String(), "PORT=" + port, "LOG_TAG=before"},
	})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("ready %d %s %s\n", st.PID, sb.IP, port)
	time.Sleep(time.Hour) // until the test kills us
	return 0
}

// The real restart: the Slipway that started a container is SIGKILLed. The
// app keeps running and keeps writing its log (it holds the file itself, so
// there is no pipe to break), and a new driver adopts it, same pid, though it
// is no longer anyone's child but init's.
func TestAppSurvivesSlipwayKill(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), helperDirVar+"="+dir, helperAppVar+"="+testApp, helperRangeVar+"="+o.IPRange.String())
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	var got string
	select {
	case got = <-line:
	case <-time.After(30 * time.Second):
		helper.Process.Kill()
		t.Fatal("the helper did not start its container within 30s")
	}
	var pid int
	var ip, port string
	if _, err := fmt.Sscanf(got, "ready %d %s %s", &pid, &ip, &port); err != nil {
		helper.Process.Kill()
		t.Fatalf("helper said %q: %v", got, err)
	}
	httpGet(t, ip, port, "/healthz")
	helper.Process.Kill()
	helper.Wait()

	httpGet(t, ip, port, "/print?n=1&tag=after")
	if !alive(pid) {
		t.Fatalf("the app (pid %d) died with the Slipway that started it", pid)
	}
	f := newFixture(t, o)
	recs, err := f.d.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || len(recs[0].Containers) != 1 || recs[0].Containers[0].Status.PID != pid || recs[0].Containers[0].Status.State != runtime.StateRunning {
		t.Fatalf("Recover: %+v; want pod-orphan with web Running as pid %d", recs, pid)
	}
	r, err := f.d.Logs(context.Background(), "pod-orphan", "web", runtime.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := io.ReadAll(r)
	r.Close()
	if want := "out 1 before\nerr 1 before\nout 1 after\nerr 1 after\n"; string(logs) != want {
		t.Errorf("logs across the kill: %q, want %q", logs, want)
	}
	if err := f.d.StopContainer(context.Background(), "pod-orphan", "web", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	ev := f.nextExit()
	if ev.Status.PID != pid || ev.Status.Reason != runtime.ReasonUnknown || ev.Status.ExitCode != -1 || ev.Status.Message == "" {
		t.Errorf("exit of the adopted app: %+v; want pid %d, Unknown, -1, with a message saying why", ev.Status, pid)
	}
	if alive(pid) {
		t.Errorf("pid %d still runs after StopContainer returned", pid)
	}
}

// With cgroups, a container runs in its own cgroup from its first
// instruction, with its limits written, and Slipway's threads are all back
// in Slipway's cgroup afterwards.
func TestCgroupPlacementAndLimits(t *testing.T) {
	f := newFixture(t, testOptions(t.TempDir()))
	caps := f.d.Capabilities()
	if !caps.MemoryLimit.Supported || !caps.CPULimit.Supported {
		if os.Getenv("SLIPWAY_REQUIRE_CGROUPS") == "1" {
			t.Fatalf("cgroups required but not usable: memory: %s; cpu: %s", caps.MemoryLimit.Reason, caps.CPULimit.Reason)
		}
		t.Skipf("cgroups not usable here: memory: %s; cpu: %s", caps.MemoryLimit.Reason, caps.CPULimit.Reason)
	}
	ip := f.sandbox("pod-cg")
	port := freePort(t, ip)
	st, err := f.d.StartContainer(context.Background(), "pod-cg", runtime.ContainerConfig{
		Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port},
		Limits: runtime.Limits{MemoryBytes: 96 << 20, CPUMillis: 250},
	})
	if err != nil {
		t.Fatal(err)
	}
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", st.PID))
	var paths []string
	for l := range strings.SplitSeq(strings.TrimSpace(string(cg)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if strings.HasSuffix(parts[2], "/pod-pod-cg/ctr-web") {
			paths = append(paths, l)
		}
	}
	if len(paths) == 0 {
		t.Fatalf("container process is in no container cgroup:\n%s", cg)
	}
	var dirs []string
	for _, l := range paths {
		parts := strings.SplitN(l, ":", 3)
		var files map[string]string
		switch {
		case parts[1] == "":
			files = map[string]string{"memory.max": "100663296", "cpu.max": "25000 100000"}
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			files = map[string]string{"memory.limit_in_bytes": "100663296"}
			parts[1] = "memory"
		case slices.Contains(strings.Split(parts[1], ","), "cpu"):
			files = map[string]string{"cpu.cfs_quota_us": "25000", "cpu.cfs_period_us": "100000"}
			parts[1] = "cpu"
		}
		dir := filepath.Join("/sys/fs/cgroup", parts[1], parts[2])
		if _, err := os.Stat(dir); err != nil {
			t.Logf("cgroup directory %s not at the usual mount point; limit files not checked", dir)
			continue
		}
		for name, want := range files {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if got := strings.TrimSpace(string(b)); err != nil || got != want {
				t.Errorf("%s/%s = %q (%v), want %q", dir, name, got, err, want)
			}
		}
		dirs = append(dirs, dir)
	}
	tasks, _ := filepath.Glob("/proc/self/task/*/cgroup")
	for _, p := range tasks {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), "/pod-") {
			t.Errorf("a Slipway thread stayed in a container cgroup: %s:\n%s", p, b)
		}
	}
	if err := f.d.RemoveSandbox(context.Background(), "pod-cg"); err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Dir(dir)); err == nil {
			t.Errorf("pod cgroup %s left after RemoveSandbox", filepath.Dir(dir))
		}
	}
}

func TestNoCgroups(t *testing.T) {
	o := testOptions(t.TempDir())
	o.NoCgroups = true
	f := newFixture(t, o)
	want := runtime.Capabilities{
		MemoryLimit: runtime.Capability{Reason: "cgroups disabled by configuration"},
		CPULimit:    runtime.Capability{Reason: "cgroups disabled by configuration"},
	}
	// Mounts and SizeLimit do not depend on cgroups (volumes_test.go).
	if diff := cmp.Diff(want, f.d.Capabilities(), cmpopts.IgnoreFields(runtime.Capabilities{}, "Mounts", "SizeLimit")); diff != "" {
		t.Errorf("Capabilities (-want +got):\n%s", diff)
	}
	f.sandbox("pod-nocg")
	if _, err := f.d.StartContainer(context.Background(), "pod-nocg", runtime.ContainerConfig{
		Name: "web", Command: []string{testApp}, Args: []string{"-exit", "0"}, Limits: runtime.Limits{MemoryBytes: 1 << 20},
	}); err != nil {
		t.Fatalf("a container with limits that cannot be enforced must still start: %v", err)
	}
	if ev := f.nextExit(); ev.Status.Reason != runtime.ReasonCompleted {
		t.Errorf("exit %+v, want Completed", ev.Status)
	}
}

// A container inherits stdin from /dev/null, its own log as stdout and
// stderr, and no other descriptor of Slipway's (the state lock, pidfds,
// other containers' logs).
func TestNoDescriptorLeak(t *testing.T) {
	dir := t.TempDir()
	f := newFixture(t, testOptions(dir))
	ip := f.sandbox("pod-fds")
	f.serve("pod-fds", ip, "first", nil)
	st, _ := f.serve("pod-fds", ip, "second", nil)
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", st.PID))
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "pods", "pod-fds", "containers", "second", "current.log")
	for _, e := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", st.PID, e.Name()))
		switch e.Name() {
		case "0":
			if target != "/dev/null" {
				t.Errorf("stdin is %s, want /dev/null", target)
			}
		case "1", "2":
			if target != log {
				t.Errorf("fd %s is %s, want the container's log %s", e.Name(), target, log)
			}
		default:
			if strings.HasPrefix(target, dir) || strings.Contains(target, "pidfd") {
				t.Errorf("fd %s of the container is Slipway's %s", e.Name(), target)
			}
		}
	}
}

// A state file whose group id is not the container's own (damaged, or
// forged) must not make the driver signal that group: the adopted leader is
// still stopped, through its own handle, and the bystander group survives.
func TestAdoptedNeverSignalsForeignGroup(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir)
	d1 := newDriver(t, o)
	ctx := context.Background()
	sb, _ := d1.CreateSandbox(ctx, runtime.PodConfig{UID: "pod-pgid"})
	ip := sb.IP.String()
	port := freePort(t, ip)
	st, err := d1.StartContainer(ctx, "pod-pgid", runtime.ContainerConfig{Name: "web", Command: []string{testApp}, Env: []string{"HOST=" + ip, "PORT=" + port}})
	if err != nil {
		t.Fatal(err)
	}
	httpGet(t, ip, port, "/healthz")
	d1.Close()
	bystander := exec.Command(testApp, "-sleep", "1h")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bystander.Process.Kill(); bystander.Wait() })
	statePath := filepath.Join(dir, "pods", "pod-pgid", "containers", "web", "state.json")
	var state map[string]any
	readJSONFile(t, statePath, &state)
	state["pgid"] = bystander.Process.Pid
	b, _ := json.Marshal(state)
	if err := os.WriteFile(statePath, b, 0o600); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t, o)
	if _, err := f.d.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.d.ContainerStatus(ctx, "pod-pgid", "web"); got.State != runtime.StateRunning || got.PID != st.PID {
		t.Fatalf("not adopted: %+v", got)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.d.StopContainer(sctx, "pod-pgid", "web", 5*time.Second); err != nil {
		t.Fatalf("StopContainer: %v (the leader must be signalled directly)", err)
	}
	if ev := f.nextExit(); ev.Status.PID != st.PID {
		t.Errorf("exit of pid %d, want %d", ev.Status.PID, st.PID)
	}
	if !alive(bystander.Process.Pid) {
		t.Errorf("the bystander process group named by the damaged state file was signalled")
	}
}

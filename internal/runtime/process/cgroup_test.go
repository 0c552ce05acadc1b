package process

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/runtime"
)

const mountinfoFixture = `22 28 0:21 / /sys rw,nosuid - sysfs sysfs rw
31 22 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/with\040space rw,relatime - cgroup2 cgroup2 rw,nsdelegate
bad line
`

func TestParseMountinfo(t *testing.T) {
	got := parseMountinfo([]byte(mountinfoFixture))
	want := []mountInfo{
		{root: "/", point: "/sys", fstype: "sysfs", superOpts: []string{"rw"}},
		{root: "/", point: "/sys/fs/cgroup", fstype: "tmpfs", superOpts: []string{"rw", "mode=755"}},
		{root: "/", point: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOpts: []string{"rw", "cpu", "cpuacct"}},
		{root: "/docker/abc", point: "/sys/fs/cgroup/memory", fstype: "cgroup", superOpts: []string{"rw", "memory"}},
		{root: "/", point: "/sys/fs/cgroup/with space", fstype: "cgroup2", superOpts: []string{"rw", "nsdelegate"}},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(mountInfo{})); diff != "" {
		t.Errorf("parseMountinfo (-want +got):\n%s", diff)
	}
}

func TestParseProcCgroup(t *testing.T) {
	v1, v2, hasV2 := parseProcCgroup([]byte("4:memory:/process_api/0ab\n1:cpu,cpuacct:/\n9:name=systemd:/\n0::/user.slice\n"))
	want := map[string]string{"memory": "/process_api/0ab", "cpu": "/", "cpuacct": "/", "name=systemd": "/"}
	if diff := cmp.Diff(want, v1); diff != "" || v2 != "/user.slice" || !hasV2 {
		t.Errorf("parseProcCgroup: v1 diff %s, v2 %q %v; want v2 /user.slice", diff, v2, hasV2)
	}
}

func TestPathIn(t *testing.T) {
	for _, tc := range []struct {
		m       mountInfo
		cg      string
		want    string
		wantErr bool
	}{
		{mountInfo{root: "/", point: "/sys/fs/cgroup/memory"}, "/a/b", "/sys/fs/cgroup/memory/a/b", false},
		{mountInfo{root: "/docker/abc", point: "/sys/fs/cgroup/memory"}, "/docker/abc/x", "/sys/fs/cgroup/memory/x", false},
		{mountInfo{root: "/docker/abc", point: "/sys/fs/cgroup/memory"}, "/docker/abc", "/sys/fs/cgroup/memory", false},
		{mountInfo{root: "/docker/abc", point: "/sys/fs/cgroup/memory"}, "/docker/abcd", "", true},
		{mountInfo{root: "/docker/abc", point: "/sys/fs/cgroup/memory"}, "/other", "", true},
	} {
		got, err := pathIn(tc.m, tc.cg)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("pathIn(%+v, %q) = %q, %v; want %q, error %v", tc.m, tc.cg, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte(mountinfoFixture))
	f.Add([]byte(`1 2 3:4 /a\0 /b\04 - x`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range parseMountinfo(b) {
			if m.fstype == "" || len(m.superOpts) == 0 {
				t.Errorf("parsed an incomplete mount %+v", m)
			}
		}
		parseProcCgroup(b)
	})
}

// The v2 path (clone3 with CLONE_INTO_CGROUP, cgroup.kill) runs for real on
// any cgroup2 mount we may write to, controllers or not; on a v1 machine
// that is the hybrid "unified" mount.
func TestCgroupV2Placement(t *testing.T) {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	pc, _ := os.ReadFile("/proc/self/cgroup")
	_, v2path, hasV2 := parseProcCgroup(pc)
	var dir string
	for _, m := range parseMountinfo(mi) {
		if m.fstype == "cgroup2" && hasV2 {
			dir, _ = pathIn(m, v2path)
		}
	}
	if dir == "" {
		t.Skip("no cgroup2 hierarchy mounted")
	}
	base := filepath.Join(dir, fmt.Sprintf("slipway-v2test-%d", os.Getpid()))
	if err := os.Mkdir(base, 0o755); err != nil {
		t.Skipf("cgroup2 at %s not writable: %v", dir, err)
	}
	t.Cleanup(func() { os.Remove(base) })
	g := &cgroups{mode: cgroupV2, base: base}
	if _, err := g.prepare("u1", "web", runtime.Limits{}); err != nil {
		t.Fatal(err)
	}
	cmd, err := g.start("u1", "web", func() *exec.Cmd {
		c := exec.Command("sleep", "60")
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return c
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", cmd.Process.Pid))
	want := "0::" + strings.TrimPrefix(filepath.Join(base, "pod-u1", "ctr-web"), dir) + "\n"
	if !strings.HasSuffix(string(b), want) && !strings.Contains(string(b), want) {
		t.Errorf("process cgroups:\n%s\nwant the line %q", b, want)
	}
	if g.noCgroupFD.Load() {
		t.Log("clone3 with CLONE_INTO_CGROUP was refused here; the process was moved after start")
	}
	if got := g.procs("u1", "web"); len(got) != 1 || got[0] != cmd.Process.Pid {
		t.Errorf("procs = %v, want [%d]", got, cmd.Process.Pid)
	}
	if !g.killAll("u1", "web", 5*time.Second) {
		t.Errorf("killAll: the cgroup still holds %v", g.procs("u1", "web"))
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("after killAll the process ended with %v, want SIGKILL", err)
	}
	if err := g.removePod("u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(base, "pod-u1")); !os.IsNotExist(err) {
		t.Errorf("pod cgroup still there: %v", err)
	}
}

// On v1 the forking thread passes through the container's cgroups; it must
// never be the main thread, whose cgroups are what /proc/<pid>/cgroup shows
// and (for memory) where the whole process is charged. Many concurrent
// starts make the scheduler offer the main thread often.
func TestMovedThreadIsNeverTheMainThread(t *testing.T) {
	name := fmt.Sprintf("slipway-mt-%d", os.Getpid())
	g := detectCgroups(name)
	if g.mode != cgroupV1 {
		t.Skipf("the thread move is v1's; here: %s", g.memCap.Reason)
	}
	t.Cleanup(func() {
		// Removal fails if a misled detection nested a base in the pod.
		if err := g.removePod("mt"); err != nil {
			t.Error(err)
		}
		for _, b := range []string{g.memBase, g.cpuBase} {
			if err := os.Remove(b); b != "" && err != nil {
				t.Error(err)
			}
		}
	})
	if _, err := g.prepare("mt", "c", runtime.Limits{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var onMain, total int
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				cmd, err := g.start("mt", "c", func() *exec.Cmd {
					mu.Lock()
					total++
					if unix.Gettid() == unix.Getpid() {
						onMain++
					}
					mu.Unlock()
					return exec.Command("/bin/true")
				})
				if err != nil {
					t.Error(err)
					return
				}
				cmd.Wait()
			}
		})
	}
	// Meanwhile, drivers starting up must find Slipway's own cgroup.
	for range 20 {
		if d := detectCgroups(name); strings.Contains(d.memCap.Reason, "/pod-") {
			t.Errorf("a concurrent start misled cgroup detection: %s", d.memCap.Reason)
		}
	}
	wg.Wait()
	if onMain != 0 || total != 200 {
		t.Errorf("%d of %d starts forked from the main thread, want 0 of 200", onMain, total)
	}
}

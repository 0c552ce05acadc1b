package process

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/runtime"
)

type cgroupMode int

const (
	cgroupOff cgroupMode = iota
	cgroupV1
	cgroupV2
)

// cgroups gives each container its own cgroup, under Slipway's:
//
//	v1: <memory mount><own memory path>/<name>/pod-<uid>/ctr-<container>, the same under cpu
//	v2: <own cgroup, or the hierarchy's root>/<name>/pod-<uid>/ctr-<container>
//
// The pod-/ctr- prefixes keep our names from ever colliding with a
// controller's interface files. Limits are set on the container's cgroup.
type cgroups struct {
	mode cgroupMode
	// v1: where our cgroups go per controller ("" when unusable), and the
	// directory Slipway's own threads are in, to move a thread back to.
	memBase, cpuBase string
	memOwn, cpuOwn   string
	// v2: one base for both controllers.
	base         string
	v2Mem, v2CPU bool
	noCgroupFD   atomic.Bool // clone3 with CLONE_INTO_CGROUP refused once
	memCap       runtime.Capability
	cpuCap       runtime.Capability
}

func offCgroups(reason string) *cgroups {
	c := runtime.Capability{Reason: reason}
	return &cgroups{mode: cgroupOff, memCap: c, cpuCap: c}
}

type mountInfo struct {
	root, point, fstype string
	superOpts           []string
}

// parseMountinfo reads /proc/self/mountinfo (see proc(5)).
func parseMountinfo(b []byte) []mountInfo {
	var out []mountInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			continue
		}
		out = append(out, mountInfo{
			root: unescapeMount(f[3]), point: unescapeMount(f[4]),
			fstype: f[sep+1], superOpts: strings.Split(f[sep+3], ","),
		})
	}
	return out
}

// unescapeMount undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseProcCgroup reads /proc/self/cgroup: v1 paths by controller, and the
// v2 path (the "0::" line) when there is one.
func parseProcCgroup(b []byte) (v1 map[string]string, v2 string, hasV2 bool) {
	v1 = map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, hasV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[c] = parts[2]
		}
	}
	return v1, v2, hasV2
}

// pathIn maps a cgroup path from /proc/self/cgroup to a directory under
// mount m, whose root may itself be a sub-cgroup (bind mounts in containers).
func pathIn(m mountInfo, cg string) (string, error) {
	if m.root == "/" {
		return filepath.Join(m.point, cg), nil
	}
	if rel, ok := strings.CutPrefix(cg, m.root); ok && (rel == "" || rel[0] == '/') {
		return filepath.Join(m.point, rel), nil
	}
	return "", fmt.Errorf("cgroup %s is not under the mount of %s at %s", cg, m.root, m.point)
}

// detectCgroups finds usable memory and cpu controllers and creates the base
// cgroup named name. Anything missing is reported through the capabilities,
// never as an error: containers then run without enforced limits.
func detectCgroups(name string) *cgroups {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return offCgroups("cannot read /proc/self/mountinfo: " + err.Error())
	}
	pc, err := ownCgroups()
	if err != nil {
		return offCgroups("cannot read /proc/self/cgroup: " + err.Error())
	}
	mounts := parseMountinfo(mi)
	v1paths, v2path, hasV2 := parseProcCgroup(pc)
	for _, m := range mounts {
		if m.fstype != "cgroup2" || !hasV2 {
			continue
		}
		ctrls, _ := os.ReadFile(filepath.Join(m.point, "cgroup.controllers"))
		f := strings.Fields(string(ctrls))
		if slices.Contains(f, "memory") || slices.Contains(f, "cpu") {
			return setupV2(m, v2path, name)
		}
	}
	return setupV1(mounts, v1paths, name)
}

// ownCgroups reads this thread's cgroups. On v1 a thread passes through a
// container's cgroups while it starts a process (see start), so neither the
// main thread's view (/proc/self) nor a thread this goroutine might leave
// between open and read will do: the goroutine keeps its thread, which no
// start can be using meanwhile.
func ownCgroups() ([]byte, error) {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil { // before Linux 3.17
		b, err = os.ReadFile(fmt.Sprintf("/proc/self/task/%d/cgroup", unix.Gettid()))
	}
	return b, err
}

func setupV1(mounts []mountInfo, paths map[string]string, name string) *cgroups {
	g := &cgroups{mode: cgroupV1}
	setup := func(ctrl, probe string) (base, own string, c runtime.Capability) {
		var m *mountInfo
		for i := range mounts {
			if mounts[i].fstype == "cgroup" && slices.Contains(mounts[i].superOpts, ctrl) {
				m = &mounts[i]
				break
			}
		}
		if m == nil {
			return "", "", runtime.Capability{Reason: fmt.Sprintf("no cgroup v2 hierarchy with the %s controller and no cgroup v1 %s hierarchy is mounted", ctrl, ctrl)}
		}
		own, err := pathIn(*m, paths[ctrl])
		if err != nil {
			return "", "", runtime.Capability{Reason: "cgroup " + ctrl + " controller not usable: " + err.Error()}
		}
		base = filepath.Join(own, name)
		if err := os.Mkdir(base, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return "", "", runtime.Capability{Reason: "cgroup " + ctrl + " controller not writable: " + err.Error()}
		}
		if _, err := os.Stat(filepath.Join(base, probe)); err != nil {
			return "", "", runtime.Capability{Reason: fmt.Sprintf("cgroup v1 %s controller at %s has no %s", ctrl, base, probe)}
		}
		return base, own, runtime.Capability{Supported: true, Reason: fmt.Sprintf("cgroup v1 %s controller at %s", ctrl, base)}
	}
	g.memBase, g.memOwn, g.memCap = setup("memory", "memory.limit_in_bytes")
	g.cpuBase, g.cpuOwn, g.cpuCap = setup("cpu", "cpu.cfs_quota_us")
	if g.memBase == "" && g.cpuBase == "" {
		g.mode = cgroupOff
	}
	return g
}

func setupV2(m mountInfo, path, name string) *cgroups {
	own, err := pathIn(m, path)
	if err != nil {
		return offCgroups("cgroup v2 not usable: " + err.Error())
	}
	// Our own cgroup first (a delegated subtree, as under systemd with
	// Delegate=yes); then the hierarchy's root, as Docker's cgroupfs driver
	// does, for when our cgroup holds processes and so may not enable
	// controllers for children (cgroup v2's no-internal-process rule).
	var whyNot []string
	for _, dir := range slices.Compact([]string{own, m.point}) {
		avail, _ := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
		var want []string
		for _, c := range []string{"memory", "cpu"} {
			if slices.Contains(strings.Fields(string(avail)), c) {
				want = append(want, c)
			}
		}
		if len(want) == 0 {
			whyNot = append(whyNot, dir+" has neither the memory nor the cpu controller")
			continue
		}
		base := filepath.Join(dir, name)
		err := enableControllers(dir, want)
		if err == nil {
			if err = os.Mkdir(base, 0o755); errors.Is(err, os.ErrExist) {
				err = nil
			}
		}
		if err == nil {
			err = enableControllers(base, want)
		}
		if err != nil {
			whyNot = append(whyNot, err.Error())
			continue
		}
		g := &cgroups{mode: cgroupV2, base: base, v2Mem: slices.Contains(want, "memory"), v2CPU: slices.Contains(want, "cpu")}
		g.memCap = v2Cap(g.v2Mem, "memory", base)
		g.cpuCap = v2Cap(g.v2CPU, "cpu", base)
		return g
	}
	return offCgroups("cgroup v2 not usable: " + strings.Join(whyNot, "; "))
}

func v2Cap(ok bool, ctrl, base string) runtime.Capability {
	if ok {
		return runtime.Capability{Supported: true, Reason: "cgroup v2 at " + base}
	}
	return runtime.Capability{Reason: "cgroup v2 " + ctrl + " controller not available at " + filepath.Dir(base)}
}

func enableControllers(dir string, ctrls []string) error {
	cur, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	for _, c := range ctrls {
		if slices.Contains(strings.Fields(string(cur)), c) {
			continue
		}
		if err := writeCgroup(filepath.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
			return fmt.Errorf("enabling the %s controller for the children of %s: %w", c, dir, err)
		}
	}
	return nil
}

func writeCgroup(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, path, err)
	}
	return nil
}

// dirs returns the container's cgroup directories (one per v1 controller in
// use, or the one v2 directory), and for v1 where Slipway's threads live.
func (g *cgroups) dirs(uid, name string) (dirs, owns []string) {
	rel := filepath.Join("pod-"+uid, "ctr-"+name)
	switch g.mode {
	case cgroupV1:
		if g.memBase != "" {
			dirs, owns = append(dirs, filepath.Join(g.memBase, rel)), append(owns, g.memOwn)
		}
		if g.cpuBase != "" {
			dirs, owns = append(dirs, filepath.Join(g.cpuBase, rel)), append(owns, g.cpuOwn)
		}
	case cgroupV2:
		dirs = []string{filepath.Join(g.base, rel)}
	}
	return dirs, owns
}

func (g *cgroups) podDirs(uid string) []string {
	var out []string
	for _, b := range []string{g.memBase, g.cpuBase, g.base} {
		if b != "" {
			out = append(out, filepath.Join(b, "pod-"+uid))
		}
	}
	return out
}

// prepare creates the container's cgroup (kept across its restarts), sets
// its limits (clearing old ones) and returns the OOM-kill count so far.
func (g *cgroups) prepare(uid, name string, lim runtime.Limits) (uint64, error) {
	switch g.mode {
	case cgroupV1:
		if g.memBase != "" {
			d := filepath.Join(g.memBase, "pod-"+uid, "ctr-"+name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return 0, err
			}
			if err := setMemoryV1(d, lim.MemoryBytes); err != nil {
				return 0, err
			}
		}
		if g.cpuBase != "" {
			d := filepath.Join(g.cpuBase, "pod-"+uid, "ctr-"+name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				return 0, err
			}
			quota := "-1"
			if lim.CPUMillis > 0 {
				quota = strconv.FormatInt(cpuQuota(lim.CPUMillis), 10)
			}
			if err := errors.Join(writeCgroup(filepath.Join(d, "cpu.cfs_period_us"), "100000"),
				writeCgroup(filepath.Join(d, "cpu.cfs_quota_us"), quota)); err != nil {
				return 0, err
			}
		}
	case cgroupV2:
		pod := filepath.Join(g.base, "pod-"+uid)
		if err := os.MkdirAll(pod, 0o755); err != nil {
			return 0, err
		}
		var want []string
		if g.v2Mem {
			want = append(want, "memory")
		}
		if g.v2CPU {
			want = append(want, "cpu")
		}
		if err := enableControllers(pod, want); err != nil {
			return 0, err
		}
		d := filepath.Join(pod, "ctr-"+name)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return 0, err
		}
		if g.v2Mem {
			mem, swap := "max", "max"
			if lim.MemoryBytes > 0 {
				mem, swap = strconv.FormatInt(lim.MemoryBytes, 10), "0"
			}
			if err := writeCgroup(filepath.Join(d, "memory.max"), mem); err != nil {
				return 0, err
			}
			if _, err := os.Stat(filepath.Join(d, "memory.swap.max")); err == nil {
				if err := writeCgroup(filepath.Join(d, "memory.swap.max"), swap); err != nil {
					return 0, err
				}
			}
			// An OOM kill takes the whole container, not one of its
			// processes, as Kubernetes does: a half-killed app is worse.
			if _, err := os.Stat(filepath.Join(d, "memory.oom.group")); err == nil {
				if err := writeCgroup(filepath.Join(d, "memory.oom.group"), "1"); err != nil {
					return 0, err
				}
			}
		}
		if g.v2CPU {
			quota := "max"
			if lim.CPUMillis > 0 {
				quota = strconv.FormatInt(cpuQuota(lim.CPUMillis), 10)
			}
			if err := writeCgroup(filepath.Join(d, "cpu.max"), quota+" 100000"); err != nil {
				return 0, err
			}
		}
	}
	n, _ := g.oomKills(uid, name)
	return n, nil
}

// cpuQuota is the CFS quota per 100 ms period; the kernel's minimum is 1 ms,
// so limits under 10m are raised to 10m.
func cpuQuota(millis int64) int64 { return max(millis*100, 1000) }

// setMemoryV1 sets memory and memory+swap to the same value (so the kernel
// OOM-kills rather than swaps), clearing both first because memsw must never
// be below memory.
func setMemoryV1(d string, bytes int64) error {
	memsw := filepath.Join(d, "memory.memsw.limit_in_bytes")
	_, err := os.Stat(memsw)
	hasSwap := err == nil
	if hasSwap {
		if err := writeCgroup(memsw, "-1"); err != nil {
			return err
		}
	}
	v := "-1"
	if bytes > 0 {
		v = strconv.FormatInt(bytes, 10)
	}
	if err := writeCgroup(filepath.Join(d, "memory.limit_in_bytes"), v); err != nil {
		return err
	}
	if hasSwap && bytes > 0 {
		return writeCgroup(memsw, v)
	}
	return nil
}

// oomKills reads how many processes of the container the OOM killer killed.
func (g *cgroups) oomKills(uid, name string) (uint64, bool) {
	var file string
	switch {
	case g.mode == cgroupV1 && g.memBase != "":
		file = filepath.Join(g.memBase, "pod-"+uid, "ctr-"+name, "memory.oom_control")
	case g.mode == cgroupV2 && g.v2Mem:
		file = filepath.Join(g.base, "pod-"+uid, "ctr-"+name, "memory.events")
	default:
		return 0, false
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// start starts the command newCmd builds inside the container's cgroup, so
// that no instruction of it runs outside its limits:
//   - v2: clone3 with CLONE_INTO_CGROUP (SysProcAttr.UseCgroupFD).
//   - v1: cgroup membership is per thread there, and a child inherits its
//     forking thread's cgroups; so the forking OS thread is moved into the
//     container's cgroups for the fork and back after. Go never clones new
//     runtime threads from a locked thread, so nothing else lands there.
//
// If that is refused, the process is started and then moved, which leaves a
// window of a few hundred microseconds outside the limits.
func (g *cgroups) start(uid, name string, newCmd func() *exec.Cmd) (*exec.Cmd, error) {
	dirs, owns := g.dirs(uid, name)
	switch {
	case len(dirs) == 0:
		cmd := newCmd()
		return cmd, cmd.Start()
	case g.mode == cgroupV2 && !g.noCgroupFD.Load():
		fd, err := unix.Open(dirs[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("opening cgroup %s: %w", dirs[0], err)
		}
		cmd := newCmd()
		cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, fd
		err = cmd.Start()
		_ = unix.Close(fd)
		if err == nil || !(errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.E2BIG)) {
			return cmd, err
		}
		g.noCgroupFD.Store(true)
	case g.mode == cgroupV1:
		if cmd, placed, err := startOnMovedThread(dirs, owns, newCmd); placed {
			return cmd, err
		}
	}
	cmd := newCmd()
	if err := cmd.Start(); err != nil {
		return cmd, err
	}
	for _, d := range dirs {
		if err := writeCgroup(filepath.Join(d, "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
			_ = unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
			_ = cmd.Wait()
			return cmd, fmt.Errorf("placing process in its cgroup: %w", err)
		}
	}
	return cmd, nil
}

func startOnMovedThread(dirs, owns []string, newCmd func() *exec.Cmd) (cmd *exec.Cmd, placed bool, err error) {
	work := func() {
		goruntime.LockOSThread()
		tid := strconv.Itoa(unix.Gettid())
		moved := 0
		for _, d := range dirs {
			if writeCgroup(filepath.Join(d, "tasks"), tid) != nil {
				break
			}
			moved++
		}
		if placed = moved == len(dirs); placed {
			cmd = newCmd()
			err = cmd.Start()
		}
		restored := true
		for i := range moved {
			if writeCgroup(filepath.Join(owns[i], "tasks"), tid) != nil {
				restored = false
			}
		}
		if restored {
			goruntime.UnlockOSThread()
		} // else this goroutine ends locked and Go discards the thread
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		if unix.Gettid() != unix.Getpid() {
			work()
			return
		}
		// Never the main thread: /proc/<pid>/cgroup shows its cgroups, and
		// v1 charges the process's memory to its memory cgroup (the mm
		// owner), which would make Slipway an OOM victim of the container.
		// Holding it here, the nested goroutine gets another thread.
		inner := make(chan struct{})
		go func() {
			defer close(inner)
			work()
		}()
		<-inner
	}()
	<-done
	return cmd, placed, err
}

func readProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for f := range strings.FieldsSeq(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// procs lists the processes in the container's cgroup, Slipway excepted.
func (g *cgroups) procs(uid, name string) []int {
	dirs, _ := g.dirs(uid, name)
	if len(dirs) == 0 {
		return nil
	}
	return readProcs(dirs[0])
}

// killAll kills every process in the container's cgroup, including those
// that left its process group, and waits (bounded) until it is empty.
// Slipway's own pid is never signalled, since on v1 one of its threads may
// be passing through the cgroup to start a process.
func (g *cgroups) killAll(uid, name string, within time.Duration) bool {
	dirs, _ := g.dirs(uid, name)
	if len(dirs) == 0 {
		return true
	}
	deadline := time.Now().Add(within)
	useKillFile := g.mode == cgroupV2
	for {
		pids := readProcs(dirs[0])
		if len(pids) == 0 {
			return true
		}
		// cgroup.kill (Linux 5.14) also catches processes forked while we
		// read the list.
		if useKillFile && writeCgroup(filepath.Join(dirs[0], "cgroup.kill"), "1") != nil {
			useKillFile = false
		}
		if !useKillFile {
			for _, pid := range pids {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond) // back-off between reads, not synchronisation
	}
}

// removePod kills what is left in the pod's cgroups and removes them.
func (g *cgroups) removePod(uid string) error {
	var errs []error
	for _, pod := range g.podDirs(uid) {
		ents, err := os.ReadDir(pod)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		for _, e := range ents {
			if name, ok := strings.CutPrefix(e.Name(), "ctr-"); ok && e.IsDir() {
				g.killAll(uid, name, 2*time.Second)
				errs = append(errs, rmdirRetry(filepath.Join(pod, e.Name())))
			}
		}
		errs = append(errs, rmdirRetry(pod))
	}
	return errors.Join(errs...)
}

// rmdirRetry removes a cgroup, waiting (bounded) for killed processes to
// leave it.
func rmdirRetry(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond) // back-off, not synchronisation
	}
}

package process

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A container that mounts volumes starts through a re-exec of Slipway's
// own binary as mountHelperArg0 in a new mount namespace (the
// fork made it with CLONE_NEWNS and marked every mount private, so
// nothing done here reaches the machine's namespace). The helper binds
// each volume at its mountPath, hides the driver's directories and the
// claims under an empty read-only tmpfs, then execs the container's
// program: the pid, the start time and the process group stay those of
// the container, so adoption after a restart is unchanged. Failures are
// written to fd 3, which the exec closes on success, so the driver learns
// of them before StartContainer returns.
const mountHelperArg0 = "slipway-mount-helper"

func init() {
	if len(os.Args) == 2 && os.Args[0] == mountHelperArg0 {
		os.Exit(mountHelperMain(os.Args[1]))
	}
}

// mountSpec is what the helper does, passed as JSON in its argv: paths
// only, never contents.
type mountSpec struct {
	Binds []bindMount `json:"binds"`
	// Hide are directories covered with an empty read-only tmpfs after
	// the binds (the driver's state and every claim).
	Hide []string `json:"hide,omitempty"`
	Dir  string   `json:"dir"`
	Path string   `json:"path"`
	Argv []string `json:"argv"`
}

type bindMount struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

func mountHelperMain(arg string) int {
	report := os.NewFile(3, "report")
	fail := func(err error) int {
		if report != nil {
			fmt.Fprintf(report, "%v", err)
		}
		return 127
	}
	unix.CloseOnExec(3)
	var spec mountSpec
	if err := json.Unmarshal([]byte(arg), &spec); err != nil {
		return fail(fmt.Errorf("mount helper: %w", err))
	}
	for _, b := range spec.Binds {
		if err := bind(b); err != nil {
			return fail(err)
		}
	}
	for _, dir := range spec.Hide {
		if _, err := os.Stat(dir); err != nil {
			continue
		}
		if err := unix.Mount("slipway-hidden", dir, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=4k,mode=0555"); err != nil {
			return fail(fmt.Errorf("hiding %s from the container: %w", dir, err))
		}
	}
	if err := os.Chdir(spec.Dir); err != nil {
		return fail(fmt.Errorf("workingDir %s: %w", spec.Dir, err))
	}
	err := unix.Exec(spec.Path, spec.Argv, os.Environ())
	return fail(fmt.Errorf("exec %s: %w", spec.Path, err))
}

// bind mounts Source at Target, making the mount point (an empty
// directory, or an empty file for a file) when it does not exist.
func bind(b bindMount) error {
	fi, err := os.Stat(b.Source)
	if err != nil {
		return fmt.Errorf("volume source for %s: %w", b.Target, err)
	}
	if _, err := os.Lstat(b.Target); os.IsNotExist(err) {
		if fi.IsDir() {
			err = os.MkdirAll(b.Target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(b.Target), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(b.Target, os.O_CREATE|os.O_WRONLY, 0o400); err == nil {
				err = f.Close()
			}
		}
		if err != nil {
			return fmt.Errorf("making the mount point %s: %w", b.Target, err)
		}
	}
	if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("mounting at %s: %w", b.Target, err)
	}
	if b.ReadOnly {
		if err := unix.Mount("", b.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", b.Target, err)
		}
	}
	return nil
}

// readReport reads what the helper wrote before its exec (nothing when
// the exec succeeded: the close-on-exec descriptor just closes).
func readReport(r io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(r, 4096))
	return strings.TrimSpace(string(b))
}

// mountCapability says whether this process can give containers a private
// mount namespace: it needs CAP_SYS_ADMIN, in practice root.
func mountCapability() (ok bool, reason string) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, "cannot read /proc/self/status: " + err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, found := strings.CutPrefix(sc.Text(), "CapEff:"); found {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return false, "cannot parse CapEff: " + err.Error()
			}
			if caps&(1<<unix.CAP_SYS_ADMIN) == 0 {
				return false, fmt.Sprintf("volume mounts need a private mount namespace per container, which needs root (CAP_SYS_ADMIN); Slipway runs as uid %d without it", os.Geteuid())
			}
			return true, "bind mounts in a private mount namespace per container"
		}
	}
	return false, "no CapEff in /proc/self/status"
}

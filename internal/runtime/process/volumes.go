package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"slipway.dev/slipway/internal/runtime"
)

// Volumes on the process runtime:
//
//	<ClaimsDir>/<project>/<claim>/          a claim's data, kept until RemoveClaim
//	<Dir>/pods/<uid>/volumes/<name>/        an emptyDir (a tmpfs for medium Memory) or
//	                                        a secret's or configMap's files; gone with the pod
//
// Containers see them only at their mountPath, through bind mounts in a
// mount namespace of their own (mountns.go); both directories above are
// hidden from them.

var _ runtime.VolumeDriver = (*Driver)(nil)

func (d *Driver) claimDir(project, claim string) string {
	return filepath.Join(d.opts.ClaimsDir, project, claim)
}

func volumeDir(p *pod, name string) string { return filepath.Join(p.dir, "volumes", name) }

// setupVolumes makes the pod's volumes at sandbox creation.
func (d *Driver) setupVolumes(p *pod) error {
	for _, v := range p.cfg.Volumes {
		switch {
		case v.Claim != nil:
			if err := os.MkdirAll(d.claimDir(v.Claim.Project, v.Claim.Name), 0o755); err != nil {
				return fmt.Errorf("volume %q: claim %s: %w", v.Name, v.Claim.Name, err)
			}
		case v.EmptyDir != nil:
			dir := volumeDir(p, v.Name)
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
			if err := os.Chmod(dir, 0o777); err != nil { // as Kubernetes makes an emptyDir
				return err
			}
			if v.EmptyDir.Memory {
				if ok, why := mountCapability(); !ok {
					return fmt.Errorf("%w: volume %q: medium Memory needs a tmpfs: %s", runtime.ErrInvalid, v.Name, why)
				}
				opts := "mode=0777"
				if v.EmptyDir.SizeBytes > 0 {
					opts += ",size=" + strconv.FormatInt(v.EmptyDir.SizeBytes, 10)
				}
				if err := unix.Mount("slipway-emptydir", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
					return fmt.Errorf("volume %q: mounting its tmpfs: %w", v.Name, err)
				}
			}
		case v.Files != nil:
			if err := runtime.ReplaceFiles(volumeDir(p, v.Name), v.Files.Files); err != nil {
				return fmt.Errorf("volume %q: %w", v.Name, err)
			}
		}
	}
	return nil
}

// unmountVolumes takes down the tmpfs of a pod's memory-backed emptyDirs,
// so that removing the pod's directory removes nothing but its own files.
// It needs no record of the volumes: an interrupted removal calls it too.
func unmountVolumes(podDir string) error {
	ents, _ := os.ReadDir(filepath.Join(podDir, "volumes"))
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(podDir, "volumes", e.Name())
		if isMountPoint(dir) {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				errs = append(errs, fmt.Errorf("unmounting %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}

func isMountPoint(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Dev != parent.Dev
}

// WriteFiles implements runtime.VolumeDriver.
func (d *Driver) WriteFiles(ctx context.Context, uid, volume string, files []runtime.File) error {
	d.mu.Lock()
	p := d.pods[uid]
	d.mu.Unlock()
	if p == nil {
		return fmt.Errorf("pod %q: %w", uid, runtime.ErrNotFound)
	}
	<-p.ready
	i := slices.IndexFunc(p.cfg.Volumes, func(v runtime.Volume) bool { return v.Name == volume })
	if i < 0 || !(p.cfg.Volumes[i].Files != nil || p.cfg.Volumes[i].IsFiles) {
		return fmt.Errorf("files volume %q of pod %q: %w", volume, uid, runtime.ErrNotFound)
	}
	return runtime.ReplaceFiles(volumeDir(p, volume), files)
}

// EnsureClaim implements runtime.VolumeDriver: a claim is a directory.
func (d *Driver) EnsureClaim(ctx context.Context, project, claim string) error {
	if err := validateClaim(project, claim); err != nil {
		return err
	}
	return os.MkdirAll(d.claimDir(project, claim), 0o755)
}

// ClaimUsage implements runtime.VolumeDriver: the apparent size of the
// claim's files.
func (d *Driver) ClaimUsage(ctx context.Context, project, claim string) (int64, error) {
	if err := validateClaim(project, claim); err != nil {
		return 0, err
	}
	dir := d.claimDir(project, claim)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("claim %s/%s: %s: %w", project, claim, dir, runtime.ErrNotFound)
	}
	return runtime.DirUsage(dir)
}

// EmptyDirUsage implements runtime.VolumeDriver.
func (d *Driver) EmptyDirUsage(ctx context.Context, uid, volume string) (int64, error) {
	d.mu.Lock()
	p := d.pods[uid]
	d.mu.Unlock()
	if p == nil {
		return 0, fmt.Errorf("pod %q: %w", uid, runtime.ErrNotFound)
	}
	<-p.ready
	if !slices.ContainsFunc(p.cfg.Volumes, func(v runtime.Volume) bool { return v.Name == volume && v.EmptyDir != nil }) {
		return 0, fmt.Errorf("emptyDir %q of pod %q: %w", volume, uid, runtime.ErrNotFound)
	}
	return runtime.DirUsage(volumeDir(p, volume))
}

// RemoveClaim implements runtime.VolumeDriver.
func (d *Driver) RemoveClaim(ctx context.Context, project, claim string) error {
	d.mu.Lock()
	pods := make([]runtime.PodConfig, 0, len(d.pods))
	for _, p := range d.pods {
		pods = append(pods, p.cfg)
	}
	d.mu.Unlock()
	if err := runtime.ClaimFree(pods, project, claim); err != nil {
		return err
	}
	return os.RemoveAll(d.claimDir(project, claim))
}

func validateClaim(project, claim string) error {
	return runtime.ValidateVolumes([]runtime.Volume{{Name: "claim", Claim: &runtime.ClaimVolume{Project: project, Name: claim}}}, nil)
}

// mountSpecFor resolves a container's mounts into the helper's binds, or
// returns nil when it mounts nothing.
func (d *Driver) mountSpecFor(p *pod, cfg runtime.ContainerConfig) (*mountSpec, error) {
	if len(cfg.Mounts) == 0 {
		return nil, nil
	}
	if err := runtime.ValidateVolumes(p.cfg.Volumes, cfg.Mounts); err != nil {
		return nil, err
	}
	if ok, why := mountCapability(); !ok {
		return nil, fmt.Errorf("%w: container %q: mountPath %q needs a private mount namespace, which this machine cannot give: %s (run Slipway as root, or use --runtime docker)", runtime.ErrInvalid, cfg.Name, cfg.Mounts[0].MountPath, why)
	}
	hide := []string{d.opts.Dir, d.opts.ClaimsDir}
	spec := &mountSpec{Hide: hide}
	for _, m := range cfg.Mounts {
		target := filepath.Clean(m.MountPath)
		for _, h := range hide {
			if target == h || strings.HasPrefix(target, h+string(filepath.Separator)) || strings.HasPrefix(h, target+string(filepath.Separator)) {
				return nil, fmt.Errorf("%w: container %q: mountPath %q: overlaps Slipway's own directory %s, which containers never see", runtime.ErrInvalid, cfg.Name, m.MountPath, h)
			}
		}
		i := slices.IndexFunc(p.cfg.Volumes, func(v runtime.Volume) bool { return v.Name == m.Volume })
		v := p.cfg.Volumes[i]
		src, ro := volumeDir(p, v.Name), m.ReadOnly
		switch {
		case v.Claim != nil:
			src = d.claimDir(v.Claim.Project, v.Claim.Name)
		case v.Files != nil || v.IsFiles:
			ro = true // as Kubernetes mounts secret and configMap volumes
		}
		if m.SubPath != "" {
			src = filepath.Join(src, filepath.FromSlash(m.SubPath))
			if err := checkInside(src, src[:len(src)-len(filepath.FromSlash(m.SubPath))]); err != nil {
				return nil, fmt.Errorf("%w: container %q: subPath %q: %v", runtime.ErrInvalid, cfg.Name, m.SubPath, err)
			}
			if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) && !(v.Files != nil || v.IsFiles) {
				if err := os.MkdirAll(src, 0o755); err != nil { // as the kubelet makes a missing subPath
					return nil, err
				}
			}
		}
		spec.Binds = append(spec.Binds, bindMount{Source: src, Target: target, ReadOnly: ro})
	}
	return spec, nil
}

// checkInside refuses a path that symbolic links inside the volume lead
// out of it (a container may have planted them).
func checkInside(p, root string) error {
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	if real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator)) {
		return fmt.Errorf("leads out of the volume (to %s)", real)
	}
	return nil
}

// helper starts commands through the mount helper: the same pid, env
// and process group, in a mount namespace of their own. A nil helper
// (nothing to mount) starts them as they are.
type helper struct {
	spec              *mountSpec
	report, reportEnd *os.File // the pipe the helper reports failures on
	err               error
}

func newHelper(spec *mountSpec) (*helper, error) {
	if spec == nil {
		return nil, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	return &helper{spec: spec, report: r, reportEnd: w}, nil
}

// wrap makes cmd start through the helper.
func (h *helper) wrap(cmd *exec.Cmd) {
	if h == nil {
		return
	}
	h.spec.Path, h.spec.Argv, h.spec.Dir = cmd.Path, cmd.Args, cmd.Dir
	b, err := json.Marshal(h.spec)
	if err != nil {
		h.err = err
		return
	}
	cmd.Path = "/proc/self/exe"
	cmd.Args = []string{mountHelperArg0, string(b)}
	cmd.ExtraFiles = []*os.File{h.reportEnd}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Unshareflags |= unix.CLONE_NEWNS
}

// started is called with the start's error once the command started:
// only the child holds the pipe's write end from now on.
func (h *helper) started(err error) error {
	if h == nil {
		return err
	}
	h.reportEnd.Close()
	if err == nil {
		err = h.err
	}
	return err
}

// failure is what the helper reported (empty once the program runs).
func (h *helper) failure() string {
	if h == nil {
		return ""
	}
	return readReport(h.report)
}

func (h *helper) close() {
	if h != nil {
		h.report.Close()
	}
}

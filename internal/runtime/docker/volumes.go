package docker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// Volumes on Docker, all named volumes of the engine's local driver
// (nothing of the machine is bind-mounted into a container):
//
//	slipway-<project>-<claim>      a claim, labelled slipway.dev/claim=<project>/<claim>;
//	                               kept until RemoveClaim
//	slipway-pod-<uid>-<volume>     a pod's emptyDir, or its secret's or configMap's files,
//	                               which the driver writes into the volume's directory on
//	                               the machine; removed with the pod
//
// An emptyDir of medium Memory is a tmpfs of each container run: Docker
// has no tmpfs shared by containers, so it is neither shared between the
// containers of a pod nor kept across a restart (docs/storage.md).

// LabelClaim names the claim (<project>/<claim>) a volume holds.
const LabelClaim = "slipway.dev/claim"

var _ runtime.VolumeDriver = (*Driver)(nil)

func claimVolume(project, claim string) string { return "slipway-" + project + "-" + claim }

func podVolume(uid, name string) string { return "slipway-pod-" + uid + "-" + name }

// ensureVolume returns the directory of a named volume, creating it.
// A volume of the name that holds something else is an error: names of
// claims of different projects may meet ("a-b"+"c", "a"+"b-c").
func (d *Driver) ensureVolume(ctx context.Context, name string, labels map[string]string) (string, error) {
	ins, err := d.cli.VolumeInspect(ctx, name, client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		created, cerr := d.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: name, Driver: "local", Labels: labels})
		if cerr != nil {
			return "", fmt.Errorf("creating volume %s: %w", name, cerr)
		}
		return created.Volume.Mountpoint, nil
	}
	if err != nil {
		return "", fmt.Errorf("inspecting volume %s: %w", name, err)
	}
	if want, got := labels[LabelClaim], ins.Volume.Labels[LabelClaim]; want != got {
		return "", fmt.Errorf("%w: volume %s exists and holds %q, not claim %q: rename the claim", runtime.ErrConflict, name, got, want)
	}
	return ins.Volume.Mountpoint, nil
}

func (d *Driver) claimLabels(project, claim string) map[string]string {
	return map[string]string{LabelManagedBy: d.id, LabelClaim: project + "/" + claim}
}

// setupVolumes makes a pod's volumes before its infra container starts.
func (d *Driver) setupVolumes(ctx context.Context, cfg runtime.PodConfig) error {
	for _, v := range cfg.Volumes {
		var err error
		switch {
		case v.Claim != nil:
			_, err = d.ensureVolume(ctx, claimVolume(v.Claim.Project, v.Claim.Name), d.claimLabels(v.Claim.Project, v.Claim.Name))
		case v.EmptyDir != nil && !v.EmptyDir.Memory:
			_, err = d.ensureVolume(ctx, podVolume(cfg.UID, v.Name), map[string]string{LabelManagedBy: d.id, LabelPodUID: cfg.UID})
		case v.Files != nil:
			var dir string
			if dir, err = d.ensureVolume(ctx, podVolume(cfg.UID, v.Name), map[string]string{LabelManagedBy: d.id, LabelPodUID: cfg.UID}); err == nil {
				err = runtime.ReplaceFiles(dir, v.Files.Files)
			}
		}
		if err != nil {
			return fmt.Errorf("pod %q: volume %q: %w", cfg.UID, v.Name, err)
		}
	}
	return nil
}

// removePodVolumes removes the volumes of a pod (not its claims), found
// by label so that a crash half-way leaves nothing behind for long.
func (d *Driver) removePodVolumes(ctx context.Context, uid string) error {
	list, err := d.cli.VolumeList(ctx, client.VolumeListOptions{
		Filters: make(client.Filters).Add("label", LabelManagedBy+"="+d.id, LabelPodUID+"="+uid),
	})
	if err != nil {
		return fmt.Errorf("pod %q: listing its volumes: %w", uid, err)
	}
	for _, v := range list.Items {
		if _, err := d.cli.VolumeRemove(ctx, v.Name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("pod %q: removing volume %s: %w", uid, v.Name, err)
		}
	}
	return nil
}

// mounts turns a container's mounts into the engine's.
func (d *Driver) mounts(p *pod, c runtime.ContainerConfig, hc *container.HostConfig) error {
	if err := runtime.ValidateVolumes(p.cfg.Volumes, c.Mounts); err != nil {
		return err
	}
	for _, m := range c.Mounts {
		i := slices.IndexFunc(p.cfg.Volumes, func(v runtime.Volume) bool { return v.Name == m.Volume })
		v := p.cfg.Volumes[i]
		if v.EmptyDir != nil && v.EmptyDir.Memory {
			if m.SubPath != "" {
				return fmt.Errorf("%w: container %q: subPath %q: a Memory emptyDir on Docker is a tmpfs per container and has no subPath", runtime.ErrInvalid, c.Name, m.SubPath)
			}
			opts := "mode=1777"
			if v.EmptyDir.SizeBytes > 0 {
				opts += ",size=" + strconv.FormatInt(v.EmptyDir.SizeBytes, 10)
			}
			if m.ReadOnly {
				opts += ",ro"
			}
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[m.MountPath] = opts
			continue
		}
		mt := mount.Mount{Type: mount.TypeVolume, Source: podVolume(p.cfg.UID, v.Name), Target: m.MountPath, ReadOnly: m.ReadOnly,
			VolumeOptions: &mount.VolumeOptions{NoCopy: true}}
		switch {
		case v.Claim != nil:
			mt.Source = claimVolume(v.Claim.Project, v.Claim.Name)
		case v.Files != nil || v.IsFiles:
			mt.ReadOnly = true // as Kubernetes mounts secret and configMap volumes
		}
		if m.SubPath != "" {
			if !d.apiAtLeast(1, 45) {
				return fmt.Errorf("%w: container %q: subPath %q: a subPath of a volume needs Docker Engine API 1.45 (Docker 26) or newer; this engine speaks %s", runtime.ErrInvalid, c.Name, m.SubPath, d.cli.ClientVersion())
			}
			mt.VolumeOptions.Subpath = m.SubPath
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	return nil
}

// apiAtLeast compares the negotiated API version.
func (d *Driver) apiAtLeast(major, minor int) bool {
	maj, min, _ := strings.Cut(d.cli.ClientVersion(), ".")
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	return err1 == nil && err2 == nil && (a > major || a == major && b >= minor)
}

// WriteFiles implements runtime.VolumeDriver: the files are written into
// the volume's directory on this machine, which running containers see.
func (d *Driver) WriteFiles(ctx context.Context, uid, volume string, files []runtime.File) error {
	p, err := d.getPod(ctx, uid)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(p.cfg.Volumes, func(v runtime.Volume) bool { return v.Name == volume && (v.Files != nil || v.IsFiles) }) {
		return fmt.Errorf("files volume %q of pod %q: %w", volume, uid, runtime.ErrNotFound)
	}
	ins, err := d.cli.VolumeInspect(ctx, podVolume(uid, volume), client.VolumeInspectOptions{})
	if err != nil {
		return fmt.Errorf("files volume %q of pod %q: %w", volume, uid, err)
	}
	return runtime.ReplaceFiles(ins.Volume.Mountpoint, files)
}

// EnsureClaim implements runtime.VolumeDriver.
func (d *Driver) EnsureClaim(ctx context.Context, project, claim string) error {
	if err := validateClaim(project, claim); err != nil {
		return err
	}
	_, err := d.ensureVolume(ctx, claimVolume(project, claim), d.claimLabels(project, claim))
	return err
}

// ClaimUsage implements runtime.VolumeDriver: the apparent size of the
// files in the volume's directory.
func (d *Driver) ClaimUsage(ctx context.Context, project, claim string) (int64, error) {
	if err := validateClaim(project, claim); err != nil {
		return 0, err
	}
	ins, err := d.cli.VolumeInspect(ctx, claimVolume(project, claim), client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return 0, fmt.Errorf("claim %s/%s: volume %s: %w", project, claim, claimVolume(project, claim), runtime.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return runtime.DirUsage(ins.Volume.Mountpoint)
}

// EmptyDirUsage implements runtime.VolumeDriver.
func (d *Driver) EmptyDirUsage(ctx context.Context, uid, volume string) (int64, error) {
	ins, err := d.cli.VolumeInspect(ctx, podVolume(uid, volume), client.VolumeInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		return 0, fmt.Errorf("emptyDir %q of pod %q: %w", volume, uid, runtime.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return runtime.DirUsage(ins.Volume.Mountpoint)
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
	_, err := d.cli.VolumeRemove(ctx, claimVolume(project, claim), client.VolumeRemoveOptions{})
	switch {
	case err == nil, cerrdefs.IsNotFound(err):
		return nil
	case cerrdefs.IsConflict(err):
		return fmt.Errorf("claim %s/%s: %v: %w", project, claim, err, runtime.ErrConflict)
	}
	return err
}

func validateClaim(project, claim string) error {
	return runtime.ValidateVolumes([]runtime.Volume{{Name: "claim", Claim: &runtime.ClaimVolume{Project: project, Name: claim}}}, nil)
}

package runtime

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

// Volume is storage of a pod that its containers mount (Mount). Exactly
// one of Claim, EmptyDir and Files is set.
//
//   - Claim: a project's persistent volume; it outlives every pod and is
//     removed only by RemoveClaim.
//   - EmptyDir: created with the sandbox, kept across container restarts,
//     removed with the sandbox.
//   - Files: the files of a Secret or ConfigMap, written at CreateSandbox
//     and replaced in place by WriteFiles, which running containers see
//     without a restart.
type Volume struct {
	Name     string
	Claim    *ClaimVolume    `json:",omitempty"`
	EmptyDir *EmptyDirVolume `json:",omitempty"`
	// Files are never persisted by a driver beyond the files themselves:
	// they may be secrets.
	Files *FilesVolume `json:"-"`
	// IsFiles records that the volume holds Files (set by the driver on
	// what it persists).
	IsFiles bool `json:",omitempty"`
}

// ClaimVolume names a claim: its data belongs to the project, whichever
// pod mounts it.
type ClaimVolume struct {
	Project string
	Name    string
	// SizeBytes is the claim's request: enforced where the driver can,
	// else measured (ClaimUsage) and reported.
	SizeBytes int64 `json:",omitempty"`
}

// EmptyDirVolume is a pod's scratch directory.
type EmptyDirVolume struct {
	// Memory makes it a tmpfs (of SizeBytes when set).
	Memory    bool  `json:",omitempty"`
	SizeBytes int64 `json:",omitempty"`
}

// FilesVolume is a directory of small files.
type FilesVolume struct {
	Files []File
}

// File is one projected file: Path is relative to the volume.
type File struct {
	Path string
	Data []byte
	Mode fs.FileMode
}

// Mount puts a pod's volume (or SubPath inside it) at MountPath in a
// container.
type Mount struct {
	Volume    string
	MountPath string
	SubPath   string `json:",omitempty"`
	ReadOnly  bool   `json:",omitempty"`
}

// MountsClaim reports whether the pod has a volume of the claim.
func (p PodConfig) MountsClaim(project, claim string) bool {
	for _, v := range p.Volumes {
		if c := v.Claim; c != nil && c.Project == project && c.Name == claim {
			return true
		}
	}
	return false
}

// ClaimFree checks that a claim may be removed: a valid name that none of
// pods mounts (ErrConflict, naming the pod, otherwise).
func ClaimFree(pods []PodConfig, project, claim string) error {
	if err := ValidateVolumes([]Volume{{Name: "claim", Claim: &ClaimVolume{Project: project, Name: claim}}}, nil); err != nil {
		return err
	}
	for _, p := range pods {
		if p.MountsClaim(project, claim) {
			return fmt.Errorf("claim %s/%s is mounted by pod %q: %w", project, claim, p.Name, ErrConflict)
		}
	}
	return nil
}

// VolumeDriver is what a driver that supports volumes adds to Driver.
type VolumeDriver interface {
	// WriteFiles replaces the files of a Files volume of a pod, so that
	// its running containers read the new contents (each file is replaced
	// whole, never seen half-written).
	WriteFiles(ctx context.Context, podUID, volume string, files []File) error
	// EnsureClaim provisions a claim's storage (idempotent): once it
	// returns, the claim is Bound.
	EnsureClaim(ctx context.Context, project, claim string) error
	// ClaimUsage measures the bytes a claim's data takes; ErrNotFound when
	// its storage is gone (the claim is Lost).
	ClaimUsage(ctx context.Context, project, claim string) (int64, error)
	// EmptyDirUsage measures the bytes in a pod's emptyDir.
	EmptyDirUsage(ctx context.Context, podUID, volume string) (int64, error)
	// RemoveClaim deletes a claim's data; no pod may mount it any more.
	RemoveClaim(ctx context.Context, project, claim string) error
}

// ValidateVolumes checks the volumes of a pod and the mounts of a
// container against them: the rules every driver relies on (api
// validation says the same in users' words).
func ValidateVolumes(vols []Volume, mounts []Mount) error {
	names := map[string]bool{}
	for i, v := range vols {
		if err := validateID(fmt.Sprintf("volumes[%d].name", i), v.Name, 63); err != nil {
			return err
		}
		if names[v.Name] {
			return fmt.Errorf("%w: volumes[%d].name: %q: declared twice", ErrInvalid, i, v.Name)
		}
		names[v.Name] = true
		n := 0
		for _, set := range []bool{v.Claim != nil, v.EmptyDir != nil, v.Files != nil || v.IsFiles} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("%w: volume %q: exactly one of claim, emptyDir and files must be set", ErrInvalid, v.Name)
		}
		if c := v.Claim; c != nil {
			if err := validateID("claim.project", c.Project, 63); err != nil {
				return err
			}
			if err := validateID("claim.name", c.Name, 63); err != nil {
				return err
			}
		}
		if v.Files != nil {
			for _, f := range v.Files.Files {
				if err := CheckRelative("file path", f.Path); err != nil {
					return fmt.Errorf("volume %q: %w", v.Name, err)
				}
			}
		}
	}
	for i, m := range mounts {
		if !names[m.Volume] {
			return fmt.Errorf("%w: mounts[%d]: volume %q is not a volume of the pod", ErrInvalid, i, m.Volume)
		}
		if !path.IsAbs(m.MountPath) || path.Clean(m.MountPath) == "/" || strings.ContainsRune(m.MountPath, 0) || hasDotDot(m.MountPath) {
			return fmt.Errorf("%w: mounts[%d]: mountPath %q: must be an absolute path other than / without '..'", ErrInvalid, i, m.MountPath)
		}
		if m.SubPath != "" {
			if err := CheckRelative(fmt.Sprintf("mounts[%d].subPath", i), m.SubPath); err != nil {
				return err
			}
		}
	}
	return nil
}

// CheckRelative refuses a path that could leave the directory it is
// joined to: absolute, with a '..' element, or with NUL.
func CheckRelative(field, p string) error {
	if p == "" || path.IsAbs(p) || hasDotDot(p) || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%w: %s: %q: must be a relative path without '..'", ErrInvalid, field, p)
	}
	return nil
}

func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// Recorded returns the volumes as a driver may persist them: a files
// volume without its files (they may be secrets), marked IsFiles.
func Recorded(vs []Volume) []Volume {
	if len(vs) == 0 {
		return nil
	}
	out := make([]Volume, 0, len(vs))
	for _, v := range vs {
		if v.Files != nil {
			v.Files, v.IsFiles = nil, true
		}
		out = append(out, v)
	}
	return out
}

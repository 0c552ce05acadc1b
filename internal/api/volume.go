package api

import (
	"slices"
	"time"
)

// Volume is storage a pod's containers may mount: exactly one source is set.
type Volume struct {
	Name                  string                             `json:"name"`
	EmptyDir              *EmptyDirVolumeSource              `json:"emptyDir,omitempty"`
	PersistentVolumeClaim *PersistentVolumeClaimVolumeSource `json:"persistentVolumeClaim,omitempty"`
	Secret                *SecretVolumeSource                `json:"secret,omitempty"`
	ConfigMap             *ConfigMapVolumeSource             `json:"configMap,omitempty"`
}

// Source names the volume's source as its field is spelt ("emptyDir", …),
// or "" when none is set.
func (v *Volume) Source() string {
	switch {
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.PersistentVolumeClaim != nil:
		return "persistentVolumeClaim"
	case v.Secret != nil:
		return "secret"
	case v.ConfigMap != nil:
		return "configMap"
	}
	return ""
}

// Media of an emptyDir.
const (
	MediumDefault = ""
	MediumMemory  = "Memory"
)

// EmptyDirVolumeSource is a directory that lives as long as the pod: it
// survives container restarts and is removed with the pod. Medium Memory
// makes it a tmpfs.
type EmptyDirVolumeSource struct {
	Medium    string   `json:"medium,omitempty"`
	SizeLimit Quantity `json:"sizeLimit,omitempty"`
}

// PersistentVolumeClaimVolumeSource mounts a claim of the pod's project.
type PersistentVolumeClaimVolumeSource struct {
	ClaimName string `json:"claimName"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// SecretVolumeSource projects a Secret's keys as files (all keys, or the
// listed items), updated in place when the Secret changes.
type SecretVolumeSource struct {
	SecretName  string      `json:"secretName"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"` // default 0400
}

// ConfigMapVolumeSource projects a ConfigMap's keys as files, by the same
// rules as a secret volume.
type ConfigMapVolumeSource struct {
	Name        string      `json:"name"`
	Items       []KeyToPath `json:"items,omitempty"`
	DefaultMode *int32      `json:"defaultMode,omitempty"` // default 0400
}

// KeyToPath puts one key at a relative path inside the volume.
type KeyToPath struct {
	Key  string `json:"key"`
	Path string `json:"path"`
}

// DefaultVolumeMode is the mode of secret and configMap files (owner read).
const DefaultVolumeMode int32 = 0o400

// VolumeMount mounts a volume of the pod (or SubPath inside it) at
// MountPath in a container.
type VolumeMount struct {
	Name      string `json:"name"`
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
	ReadOnly  bool   `json:"readOnly,omitempty"`
}

// Access modes of a claim, with Kubernetes' names. On one machine
// ReadWriteOnce lets the pods of one App share the claim; ReadWriteOncePod
// lets one pod at a time write it.
const (
	ReadWriteOnce    = "ReadWriteOnce"
	ReadWriteOncePod = "ReadWriteOncePod"
	ReadOnlyMany     = "ReadOnlyMany"
	ReadWriteMany    = "ReadWriteMany"
)

// Claim phases.
const (
	ClaimPending = "Pending"
	ClaimBound   = "Bound"
	ClaimLost    = "Lost"
)

// ResourceStorage names a storage request.
const ResourceStorage = "storage"

// Claim and pod condition types and reasons about volumes.
const (
	// ConditionVolumeFull: a volume's measured usage is over its size
	// (a claim's request, an emptyDir's sizeLimit) where the filesystem
	// cannot enforce it.
	ConditionVolumeFull = "VolumeFull"
	// PodVolumesReady: False while a volume the pod mounts is missing
	// (reason ClaimNotFound, SecretNotFound, ConfigMapNotFound) or cannot
	// be mounted here (MountUnsupported).
	PodVolumesReady = "VolumesReady"
)

// PersistentVolumeClaim is storage of a project that outlives the pods
// that mount it. Deleting an App never deletes its claims.
type PersistentVolumeClaim struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta                  `json:"metadata"`
	Spec     PersistentVolumeClaimSpec   `json:"spec"`
	Status   PersistentVolumeClaimStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *PersistentVolumeClaim) GetMeta() *ObjectMeta { return &o.Metadata }

// PersistentVolumeClaimSpec is written by users.
type PersistentVolumeClaimSpec struct {
	AccessModes []string                   `json:"accessModes"`
	Resources   VolumeResourceRequirements `json:"resources"`
}

// VolumeResourceRequirements holds a claim's request (storage).
type VolumeResourceRequirements struct {
	Requests ResourceList `json:"requests,omitempty"`
}

// HasMode reports whether the claim lists the access mode m.
func (s *PersistentVolumeClaimSpec) HasMode(m string) bool { return slices.Contains(s.AccessModes, m) }

// PersistentVolumeClaimStatus is written by the claims controller.
type PersistentVolumeClaimStatus struct {
	Phase       string       `json:"phase,omitempty"`
	AccessModes []string     `json:"accessModes,omitempty"`
	Capacity    ResourceList `json:"capacity,omitempty"`
	// Used is the measured size of the claim's data, in bytes, at
	// MeasuredAt.
	Used       *int64    `json:"used,omitempty"`
	MeasuredAt time.Time `json:"measuredAt,omitzero"`
	// MountedBy lists the pods (of the claim's project) that mount it.
	MountedBy  []string    `json:"mountedBy,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
}

// ConfigMap holds configuration strings, mounted as files or read as
// they are. Unlike a Secret, its values are printed.
type ConfigMap struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta        `json:"metadata"`
	Data     map[string]string `json:"data,omitempty"`
}

// GetMeta implements Object.
func (o *ConfigMap) GetMeta() *ObjectMeta { return &o.Metadata }

// ClaimNames lists the claims the volumes name, in order, each once.
func ClaimNames(vols []Volume) []string {
	var names []string
	seen := map[string]bool{}
	for _, v := range vols {
		if c := v.PersistentVolumeClaim; c != nil && !seen[c.ClaimName] {
			seen[c.ClaimName] = true
			names = append(names, c.ClaimName)
		}
	}
	return names
}

// WritesClaim reports whether a pod of the template mounts the claim
// read-write (a volume not readOnly, and a container mount not readOnly).
func WritesClaim(t *PodTemplate, claim string) bool {
	for _, v := range t.Volumes {
		c := v.PersistentVolumeClaim
		if c == nil || c.ClaimName != claim || c.ReadOnly {
			continue
		}
		for _, ctr := range t.Containers {
			for _, m := range ctr.VolumeMounts {
				if m.Name == v.Name && !m.ReadOnly {
					return true
				}
			}
		}
	}
	return false
}

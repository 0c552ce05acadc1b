package api

import (
	"fmt"
	"path"
	"strings"
)

// MaxVolumes bounds the volumes of one pod.
const MaxVolumes = 64

// volumes validates a pod's volumes and returns the names declared (the
// valid ones), for the containers' volumeMounts to be checked against.
func (v *validator) volumes(p string, vols []Volume) map[string]*Volume {
	if len(vols) > MaxVolumes {
		v.add(FieldTooLong, p, nil, fmt.Sprintf("must have at most %d items", MaxVolumes))
	}
	names := map[string]*Volume{}
	for i := range vols {
		vol := &vols[i]
		vp := index(p, i)
		if v.label(child(vp, "name"), vol.Name, MaxNameLength, "") {
			if names[vol.Name] != nil {
				v.duplicate(child(vp, "name"), vol.Name)
			} else {
				names[vol.Name] = vol
			}
		}
		n := 0
		for _, set := range []bool{vol.EmptyDir != nil, vol.PersistentVolumeClaim != nil, vol.Secret != nil, vol.ConfigMap != nil} {
			if set {
				n++
			}
		}
		switch {
		case n == 0:
			v.required(vp, "must specify a volume type: exactly one of emptyDir, persistentVolumeClaim, secret or configMap")
			continue
		case n > 1:
			v.forbidden(vp, "may not specify more than 1 volume type")
			continue
		}
		if e := vol.EmptyDir; e != nil {
			ep := child(vp, "emptyDir")
			if e.Medium != MediumDefault && e.Medium != MediumMemory {
				v.unsupported(child(ep, "medium"), e.Medium, MediumDefault, MediumMemory)
			}
			if e.SizeLimit != "" {
				v.size(child(ep, "sizeLimit"), e.SizeLimit)
			}
		}
		if c := vol.PersistentVolumeClaim; c != nil {
			v.label(child(vp, "persistentVolumeClaim", "claimName"), c.ClaimName, MaxNameLength, "")
		}
		if s := vol.Secret; s != nil {
			sp := child(vp, "secret")
			v.label(child(sp, "secretName"), s.SecretName, MaxNameLength, "")
			v.keyItems(child(sp, "items"), s.Items)
			v.mode(child(sp, "defaultMode"), s.DefaultMode)
		}
		if c := vol.ConfigMap; c != nil {
			cp := child(vp, "configMap")
			v.label(child(cp, "name"), c.Name, MaxNameLength, "")
			v.keyItems(child(cp, "items"), c.Items)
			v.mode(child(cp, "defaultMode"), c.DefaultMode)
		}
	}
	return names
}

// size checks a storage quantity: a whole, positive number of bytes.
func (v *validator) size(field string, q Quantity) {
	n, err := q.Value()
	switch {
	case err != nil:
		v.invalid(field, string(q), err.Error())
	case n <= 0:
		v.invalid(field, string(q), "must be greater than zero")
	}
}

func (v *validator) mode(field string, m *int32) {
	if m != nil && (*m < 0 || *m > 0o777) {
		v.invalid(field, *m, "must be a number between 0 and 0777 (octal), both inclusive")
	}
}

func (v *validator) keyItems(p string, items []KeyToPath) {
	paths := map[string]bool{}
	for i, it := range items {
		ip := index(p, i)
		switch {
		case it.Key == "":
			v.required(child(ip, "key"), "")
		case !secretKeyRe.MatchString(it.Key) || len(it.Key) > 253:
			v.invalid(child(ip, "key"), it.Key, secretKeyMsg)
		}
		if v.relativePath(child(ip, "path"), it.Path, true) {
			if paths[path.Clean(it.Path)] {
				v.duplicate(child(ip, "path"), it.Path)
			}
			paths[path.Clean(it.Path)] = true
		}
	}
}

// relativePath checks a path that must stay inside a volume: relative,
// with no '..' element (Kubernetes' wording).
func (v *validator) relativePath(field, s string, required bool) bool {
	switch {
	case s == "":
		if required {
			v.required(field, "")
		}
		return false
	case strings.ContainsRune(s, 0) || len(s) > 4096:
		v.invalid(field, s, "must be a path of at most 4096 bytes without NUL")
	case path.IsAbs(s):
		v.invalid(field, s, "must be a relative path")
	case hasDotDot(s):
		v.invalid(field, s, "must not contain '..'")
	default:
		return true
	}
	return false
}

func hasDotDot(s string) bool {
	for _, e := range strings.Split(s, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// volumeMounts checks one container's mounts against the pod's volumes.
func (v *validator) volumeMounts(p string, mounts []VolumeMount, vols map[string]*Volume) {
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := index(p, i)
		switch {
		case m.Name == "":
			v.required(child(mp, "name"), "")
		case vols[m.Name] == nil:
			v.add(FieldNotFound, child(mp, "name"), m.Name, "no volume of the pod has this name (declare it in volumes)")
		}
		switch {
		case m.MountPath == "":
			v.required(child(mp, "mountPath"), "")
		case strings.ContainsRune(m.MountPath, 0) || len(m.MountPath) > 4096:
			v.invalid(child(mp, "mountPath"), m.MountPath, "must be a path of at most 4096 bytes without NUL")
		case !path.IsAbs(m.MountPath):
			v.invalid(child(mp, "mountPath"), m.MountPath, "must be an absolute path")
		case hasDotDot(m.MountPath):
			v.invalid(child(mp, "mountPath"), m.MountPath, "must not contain '..'")
		case path.Clean(m.MountPath) == "/":
			v.invalid(child(mp, "mountPath"), m.MountPath, "must not be the root directory")
		case paths[path.Clean(m.MountPath)]:
			v.invalid(child(mp, "mountPath"), m.MountPath, "must be unique")
		default:
			paths[path.Clean(m.MountPath)] = true
		}
		v.relativePath(child(mp, "subPath"), m.SubPath, false)
	}
}

func (v *validator) persistentVolumeClaim(c *PersistentVolumeClaim) {
	p := child("spec", "accessModes")
	if len(c.Spec.AccessModes) == 0 {
		v.required(p, "at least 1 access mode is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Spec.AccessModes {
		if !v.oneOf(index(p, i), m, ReadWriteOnce, ReadWriteOncePod, ReadOnlyMany, ReadWriteMany) {
			continue
		}
		if seen[m] {
			v.duplicate(index(p, i), m)
		}
		seen[m] = true
	}
	if seen[ReadWriteOncePod] && len(seen) > 1 {
		v.forbidden(p, "may not use ReadWriteOncePod with other access modes")
	}
	rp := child("spec", "resources", "requests")
	if q, ok := c.Spec.Resources.Requests[ResourceStorage]; !ok {
		v.required(key(rp, ResourceStorage), "")
	} else {
		v.size(key(rp, ResourceStorage), q)
	}
	for _, k := range sortedKeys(c.Spec.Resources.Requests) {
		if k != ResourceStorage {
			v.unsupported(key(rp, k), k, ResourceStorage)
		}
	}
}

func (v *validator) configMap(c *ConfigMap) {
	total := 0
	for _, k := range sortedKeys(c.Data) {
		switch {
		case len(k) > 253:
			v.tooLong(key("data", k[:32]+"..."), 253, "")
		case !secretKeyRe.MatchString(k):
			v.invalid(key("data", k), k, "key: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')")
		}
		total += len(k) + len(c.Data[k])
	}
	if total > MaxSecretBytes {
		v.add(FieldTooLong, "data", nil, fmt.Sprintf("may not be longer than %d bytes in total (keys and values)", MaxSecretBytes))
	}
}

// ValidateClaimUse checks an App against the claims its template mounts
// (claims maps a name to the claim, nil when it does not exist yet): a
// ReadWriteOncePod claim mounted read-write takes the Recreate strategy.
// Rolling, BlueGreen and Canary start the new revision's pods while the
// old ones still run; the new pod could never mount the claim the old one
// holds, and the rollout would wait for it until its deadline (Kubernetes'
// Multi-Attach deadlock).
func ValidateClaimUse(app *App, claims map[string]*PersistentVolumeClaim) FieldErrors {
	v := &validator{}
	typ := app.Spec.Strategy.Type
	if typ == "" {
		typ = StrategyRolling
	}
	if typ == StrategyRecreate {
		return nil
	}
	for _, name := range ClaimNames(app.Spec.Template.Volumes) {
		c := claims[name]
		if c == nil || !c.Spec.HasMode(ReadWriteOncePod) || !WritesClaim(&app.Spec.Template, name) {
			continue
		}
		v.invalid("spec.strategy.type", typ, fmt.Sprintf(
			"the pods mount the ReadWriteOncePod claim %q read-write, which one pod at a time may write: a %s rollout starts a new pod before the old one stops, and the new pod would wait for the claim forever; use strategy Recreate (the old pod stops, then the new one mounts the claim), or a ReadWriteMany claim", name, typ))
	}
	return v.errs
}

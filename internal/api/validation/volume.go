package validation

import (
	"fmt"
	"path"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// volumes validates a pod's volumes and returns the names declared (the
// valid ones), for the containers' volumeMounts to be checked against.
func (v *validator) volumes(p string, vols []api.Volume) map[string]*api.Volume {
	if len(vols) > api.MaxVolumes {
		v.add(api.FieldTooLong, p, nil, fmt.Sprintf("must have at most %d items", api.MaxVolumes))
	}
	names := map[string]*api.Volume{}
	for i := range vols {
		vol := &vols[i]
		vp := index(p, i)
		if v.label(child(vp, "name"), vol.Name, api.MaxNameLength, "") {
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
			if e.Medium != api.MediumDefault && e.Medium != api.MediumMemory {
				v.unsupported(child(ep, "medium"), e.Medium, api.MediumDefault, api.MediumMemory)
			}
			if e.SizeLimit != "" {
				v.size(child(ep, "sizeLimit"), e.SizeLimit)
			}
		}
		if c := vol.PersistentVolumeClaim; c != nil {
			v.label(child(vp, "persistentVolumeClaim", "claimName"), c.ClaimName, api.MaxNameLength, "")
		}
		if s := vol.Secret; s != nil {
			sp := child(vp, "secret")
			v.label(child(sp, "secretName"), s.SecretName, api.MaxNameLength, "")
			v.keyItems(child(sp, "items"), s.Items)
			v.mode(child(sp, "defaultMode"), s.DefaultMode)
		}
		if c := vol.ConfigMap; c != nil {
			cp := child(vp, "configMap")
			v.label(child(cp, "name"), c.Name, api.MaxNameLength, "")
			v.keyItems(child(cp, "items"), c.Items)
			v.mode(child(cp, "defaultMode"), c.DefaultMode)
		}
	}
	return names
}

// size checks a storage quantity: a whole, positive number of bytes.
func (v *validator) size(field string, q api.Quantity) {
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

func (v *validator) keyItems(p string, items []api.KeyToPath) {
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
func (v *validator) volumeMounts(p string, mounts []api.VolumeMount, vols map[string]*api.Volume) {
	paths := map[string]bool{}
	for i, m := range mounts {
		mp := index(p, i)
		switch {
		case m.Name == "":
			v.required(child(mp, "name"), "")
		case vols[m.Name] == nil:
			v.add(api.FieldNotFound, child(mp, "name"), m.Name, "no volume of the pod has this name (declare it in volumes)")
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

func (v *validator) persistentVolumeClaim(c *api.PersistentVolumeClaim) {
	p := child("spec", "accessModes")
	if len(c.Spec.AccessModes) == 0 {
		v.required(p, "at least 1 access mode is required")
	}
	seen := map[string]bool{}
	for i, m := range c.Spec.AccessModes {
		if !v.oneOf(index(p, i), m, api.ReadWriteOnce, api.ReadWriteOncePod, api.ReadOnlyMany, api.ReadWriteMany) {
			continue
		}
		if seen[m] {
			v.duplicate(index(p, i), m)
		}
		seen[m] = true
	}
	if seen[api.ReadWriteOncePod] && len(seen) > 1 {
		v.forbidden(p, "may not use ReadWriteOncePod with other access modes")
	}
	rp := child("spec", "resources", "requests")
	if q, ok := c.Spec.Resources.Requests[api.ResourceStorage]; !ok {
		v.required(key(rp, api.ResourceStorage), "")
	} else {
		v.size(key(rp, api.ResourceStorage), q)
	}
	for _, k := range sortedKeys(c.Spec.Resources.Requests) {
		if k != api.ResourceStorage {
			v.unsupported(key(rp, k), k, api.ResourceStorage)
		}
	}
}

package view

import (
	"cmp"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
)

// volumeColumns are the table columns of claims and config maps.
func volumeColumns(obj api.Object, wide bool, now time.Time) (header, row []string) {
	m := obj.GetMeta()
	age := formatAge(m.CreationTimestamp, now)
	switch o := obj.(type) {
	case *api.PersistentVolumeClaim:
		h := []string{"NAME", "STATUS", "CAPACITY", "USED", "ACCESS MODES", "MOUNTED BY", "AGE"}
		r := []string{m.Name, claimStatus(o), cmp.Or(string(o.Status.Capacity[api.ResourceStorage]), "-"), usedCell(o.Status.Used),
			accessModes(o.Spec.AccessModes), cmp.Or(strings.Join(o.Status.MountedBy, ","), "-"), age}
		if wide {
			h = append(h, "REQUEST")
			r = append(r, string(o.Spec.Resources.Requests[api.ResourceStorage]))
		}
		return h, r
	case *api.ConfigMap:
		return []string{"NAME", "DATA", "AGE"}, []string{m.Name, strconv.Itoa(len(o.Data)), age}
	}
	return []string{"NAME", "AGE"}, []string{m.Name, age}
}

func claimStatus(c *api.PersistentVolumeClaim) string {
	if c.Metadata.DeletionTimestamp != nil {
		return "Terminating"
	}
	return cmp.Or(c.Status.Phase, api.ClaimPending)
}

// usedCell prints bytes as Kubernetes quantities (Ki, Mi, Gi), rounded down.
func usedCell(n *int64) string {
	if n == nil {
		return "-"
	}
	return formatBytes(*n)
}

func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Ti", 1 << 40}, {"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n >= u.size {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// accessModes abbreviates as kubectl does.
func accessModes(ms []string) string {
	short := map[string]string{api.ReadWriteOnce: "RWO", api.ReadWriteOncePod: "RWOP", api.ReadOnlyMany: "ROX", api.ReadWriteMany: "RWX"}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = cmp.Or(short[m], m)
	}
	return cmp.Or(strings.Join(out, ","), "-")
}

// describeVolumeKinds is `describe` for claims and config maps.
func describeVolumeKinds(d *descWriter, o api.Object) {
	switch x := o.(type) {
	case *api.PersistentVolumeClaim:
		d.kv(0, "Status", claimStatus(x))
		if t := x.Metadata.DeletionTimestamp; t != nil {
			d.kv(0, "Terminating", fmt.Sprintf("since %s: deleted, with its data, once no pod mounts it", t.Format(time.RFC3339)))
		}
		d.kv(0, "Access Modes", strings.Join(x.Spec.AccessModes, ", "))
		d.kv(0, "Request", string(x.Spec.Resources.Requests[api.ResourceStorage]))
		d.kv(0, "Capacity", cmp.Or(string(x.Status.Capacity[api.ResourceStorage]), "-"))
		used := usedCell(x.Status.Used)
		if x.Status.Used != nil {
			used = fmt.Sprintf("%s (%d bytes, measured %s)", used, *x.Status.Used, x.Status.MeasuredAt.Format(time.RFC3339))
		}
		d.kv(0, "Used", used)
		d.kv(0, "Mounted By", cmp.Or(strings.Join(x.Status.MountedBy, ", "), "<none>"))
		for _, c := range x.Status.Conditions {
			d.kv(0, "Condition "+c.Type, strings.TrimSpace(c.Status+" "+c.Message))
		}
	case *api.ConfigMap:
		d.line(0, "Data:")
		keys := make([]string, 0, len(x.Data))
		for k := range x.Data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := x.Data[k]
			if len(v) > 200 || strings.Contains(v, "\n") {
				v = fmt.Sprintf("%d bytes", len(v))
			}
			d.kv(1, k, v)
		}
	}
}

// describeVolumes lists a pod's volumes.
func describeVolumes(d *descWriter, vols []api.Volume) {
	if len(vols) == 0 {
		return
	}
	d.line(0, "Volumes:")
	for _, v := range vols {
		var what string
		switch {
		case v.PersistentVolumeClaim != nil:
			what = "persistentvolumeclaim " + v.PersistentVolumeClaim.ClaimName
			if v.PersistentVolumeClaim.ReadOnly {
				what += " (read-only)"
			}
		case v.EmptyDir != nil:
			what = "emptyDir"
			if v.EmptyDir.Medium == api.MediumMemory {
				what += " in memory"
			}
			if v.EmptyDir.SizeLimit != "" {
				what += ", sizeLimit " + string(v.EmptyDir.SizeLimit)
			}
		case v.Secret != nil:
			what = "files of secret " + v.Secret.SecretName
		case v.ConfigMap != nil:
			what = "files of configmap " + v.ConfigMap.Name
		}
		d.kv(1, v.Name, what)
	}
}

// describeMounts lists a container's volume mounts.
func describeMounts(d *descWriter, indent int, ms []api.VolumeMount) {
	for _, m := range ms {
		v := m.Name
		if m.SubPath != "" {
			v += " (subPath " + m.SubPath + ")"
		}
		if m.ReadOnly {
			v += ", read-only"
		}
		d.kv(indent, "Mount "+m.MountPath, v)
	}
}

package node

import (
	"context"
	"fmt"
	"io/fs"
	"sort"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/runtime"
)

var (
	claimKind, _     = api.LookupKind("PersistentVolumeClaim")
	configMapKind, _ = api.LookupKind("ConfigMap")
)

// Reasons of a pod's VolumesReady condition.
const (
	ReasonClaimNotFound     = "ClaimNotFound"
	ReasonClaimTerminating  = "ClaimTerminating"
	ReasonSecretNotFound    = "SecretNotFound"
	ReasonConfigMapNotFound = "ConfigMapNotFound"
	ReasonMountUnsupported  = "MountUnsupported"
	ReasonClaimInUse        = "ClaimInUse"
)

func writes(spec *api.PodSpec, claim string) bool {
	return api.WritesClaim(&api.PodTemplate{Containers: spec.Containers, Volumes: spec.Volumes}, claim)
}

// otherWriter names a pod running here, other than w's, that writes the
// claim, when the claim has a single writer (ReadWriteOncePod). Every
// other mode may be written by several pods at once: on one machine a
// ReadWriteOnce claim is shared as Kubernetes shares it between the pods
// of one node (docs/storage.md).
func (a *Agent) otherWriter(w *podWorker, claim string, single bool) string {
	if !single {
		return ""
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for uid, o := range a.workers {
		if uid != w.uid() && o.project == w.project && writes(o.spec, claim) {
			return o.podName
		}
	}
	return ""
}

// pendingVolumes says why a pod's volumes cannot be mounted yet.
type pendingVolumes struct{ cond api.Condition }

func (p *pendingVolumes) Error() string { return p.cond.Message }

func notReady(reason, format string, args ...any) *pendingVolumes {
	return &pendingVolumes{api.Condition{Type: api.PodVolumesReady, Status: api.ConditionFalse, Reason: reason, Message: fmt.Sprintf(format, args...)}}
}

var volumesReady = &api.Condition{Type: api.PodVolumesReady, Status: api.ConditionTrue}

// resolveVolumes turns the pod's volumes into the runtime's, reading the
// claims, secrets and config maps now. A *pendingVolumes error says what
// is missing; any other error is the store's.
func (w *podWorker) resolveVolumes(ctx context.Context) ([]runtime.Volume, error) {
	spec := &w.pod.Spec
	if len(spec.Volumes) == 0 {
		return nil, nil
	}
	d := w.a.opts.Driver
	if _, ok := d.(runtime.VolumeDriver); !ok {
		return nil, notReady(ReasonMountUnsupported, "the %s runtime has no volumes", d.Name())
	}
	for _, c := range spec.Containers {
		if len(c.VolumeMounts) > 0 {
			if caps := d.Capabilities().Mounts; !caps.Supported {
				return nil, notReady(ReasonMountUnsupported, "container %s: mountPath %s refused: %s", c.Name, c.VolumeMounts[0].MountPath, caps.Reason)
			}
		}
	}
	project := w.pod.Metadata.Project
	reg := w.a.opts.Reg
	out := make([]runtime.Volume, 0, len(spec.Volumes))
	for _, v := range spec.Volumes {
		rv := runtime.Volume{Name: v.Name}
		switch {
		case v.PersistentVolumeClaim != nil:
			name := v.PersistentVolumeClaim.ClaimName
			o, err := reg.Get(ctx, claimKind, project, name)
			if api.IsNotFound(err) {
				return nil, notReady(ReasonClaimNotFound, "volume %s: persistentvolumeclaim %q not found: create it (kind PersistentVolumeClaim); the pod waits for it", v.Name, name)
			}
			if err != nil {
				return nil, err
			}
			pvc := o.(*api.PersistentVolumeClaim)
			if pvc.Metadata.DeletionTimestamp != nil {
				return nil, notReady(ReasonClaimTerminating, "volume %s: persistentvolumeclaim %q is being deleted", v.Name, name)
			}
			if writes(&w.pod.Spec, name) {
				if by := w.a.otherWriter(w, name, pvc.Spec.HasMode(api.ReadWriteOncePod)); by != "" {
					return nil, notReady(ReasonClaimInUse, "volume %s: persistentvolumeclaim %q is ReadWriteOncePod and pod %s writes it; this pod waits until that one stops", v.Name, name, by)
				}
			}
			size, _ := pvc.Spec.Resources.Requests[api.ResourceStorage].Value()
			rv.Claim = &runtime.ClaimVolume{Project: project, Name: name, SizeBytes: size}
		case v.EmptyDir != nil:
			rv.EmptyDir = &runtime.EmptyDirVolume{Memory: v.EmptyDir.Medium == api.MediumMemory}
			if v.EmptyDir.SizeLimit != "" {
				rv.EmptyDir.SizeBytes, _ = v.EmptyDir.SizeLimit.Value()
			}
		case v.Secret != nil, v.ConfigMap != nil:
			files, err := w.files(ctx, v)
			if err != nil {
				return nil, err
			}
			rv.Files = &runtime.FilesVolume{Files: files}
		}
		out = append(out, rv)
	}
	return out, nil
}

// files reads the keys a secret or configMap volume projects.
func (w *podWorker) files(ctx context.Context, v api.Volume) ([]runtime.File, error) {
	project := w.pod.Metadata.Project
	var (
		data  map[string]string
		items []api.KeyToPath
		mode  = api.DefaultVolumeMode
	)
	if s := v.Secret; s != nil {
		o, err := w.a.opts.Reg.Get(ctx, secretKind, project, s.SecretName)
		if api.IsNotFound(err) {
			return nil, notReady(ReasonSecretNotFound, "volume %s: secret %q not found", v.Name, s.SecretName)
		}
		if err != nil {
			return nil, err
		}
		data, items = o.(*api.Secret).Data, s.Items
		if s.DefaultMode != nil {
			mode = *s.DefaultMode
		}
	} else {
		c := v.ConfigMap
		o, err := w.a.opts.Reg.Get(ctx, configMapKind, project, c.Name)
		if api.IsNotFound(err) {
			return nil, notReady(ReasonConfigMapNotFound, "volume %s: configmap %q not found", v.Name, c.Name)
		}
		if err != nil {
			return nil, err
		}
		data, items = o.(*api.ConfigMap).Data, c.Items
		if c.DefaultMode != nil {
			mode = *c.DefaultMode
		}
	}
	if len(items) == 0 {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			items = append(items, api.KeyToPath{Key: k, Path: k})
		}
	}
	files := make([]runtime.File, 0, len(items))
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok {
			return nil, notReady(ReasonSecretNotFound, "volume %s: key %q not found", v.Name, it.Key)
		}
		files = append(files, runtime.File{Path: it.Path, Data: []byte(val), Mode: fs.FileMode(mode)})
	}
	return files, nil
}

// mounts turns a container's volumeMounts into the runtime's: a claim
// mounted readOnly is read-only in every container.
func (w *podWorker) mounts(c api.Container) []runtime.Mount {
	var out []runtime.Mount
	for _, m := range c.VolumeMounts {
		ro := m.ReadOnly
		for _, v := range w.pod.Spec.Volumes {
			if v.Name == m.Name && v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly {
				ro = true
			}
		}
		out = append(out, runtime.Mount{Volume: m.Name, MountPath: m.MountPath, SubPath: m.SubPath, ReadOnly: ro})
	}
	return out
}

// mountsFiles reports whether the pod projects the secret or config map
// (kind "Secret" or "ConfigMap") named name.
func mountsFiles(spec *api.PodSpec, kind, name string) bool {
	for _, v := range spec.Volumes {
		if kind == "Secret" && v.Secret != nil && v.Secret.SecretName == name ||
			kind == "ConfigMap" && v.ConfigMap != nil && v.ConfigMap.Name == name {
			return true
		}
	}
	return false
}

// refreshFiles rewrites the pod's secret and configMap volumes from their
// objects now: the running containers see the new files without a
// restart. A missing object or key keeps the files as they were.
func (w *podWorker) refreshFiles(ctx context.Context) {
	vd, ok := w.a.opts.Driver.(runtime.VolumeDriver)
	if !ok || !w.lc.ip.IsValid() {
		return
	}
	for _, v := range w.pod.Spec.Volumes {
		if v.Secret == nil && v.ConfigMap == nil {
			continue
		}
		files, err := w.files(ctx, v)
		if err == nil {
			err = vd.WriteFiles(ctx, w.uid(), v.Name, files)
		}
		if err != nil {
			w.a.log.Warn("updating the files of a volume failed; the old files stay", "pod", w.podName, "volume", v.Name, "err", err)
			w.a.opts.Events.Record(ctx, w.pod, api.EventWarning, "FailedMount", fmt.Sprintf("volume %s not updated: %v", v.Name, err))
		}
	}
}

// watchFiles tells the workers whose pods project a Secret or ConfigMap
// that it changed.
func (a *Agent) watchFiles(ctx context.Context, kind api.KindInfo) {
	controller.WatchKind(ctx, a.opts.Reg, kind, a.log, func(ev registry.WatchEvent) {
		m := ev.Object.GetMeta()
		a.mu.Lock()
		var ws []*podWorker
		for _, w := range a.workers {
			if w.project == m.Project && mountsFiles(w.spec, kind.Kind, m.Name) {
				ws = append(ws, w)
			}
		}
		a.mu.Unlock()
		for _, w := range ws {
			w.send(workerEvent{files: true}) // also ends the wait of a pod for its volumes
		}
	})
}

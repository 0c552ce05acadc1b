package registry

import (
	"context"
	"errors"
	"slices"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/store"
)

var (
	claimKind = mustKind("PersistentVolumeClaim")
	podKind   = mustKind("Pod")
	appKind   = mustKind("App")
)

// admit checks what a write of obj needs from other objects: an App's
// strategy against the access modes of the claims it mounts
// (validation.ValidateClaimUse). batch holds claims written by the same apply,
// which count as existing.
func (r *Registry) admit(ctx context.Context, obj api.Object, batch map[string]*api.PersistentVolumeClaim) error {
	app, ok := obj.(*api.App)
	if !ok {
		return nil
	}
	names := api.ClaimNames(app.Spec.Template.Volumes)
	if len(names) == 0 {
		return nil
	}
	claims := map[string]*api.PersistentVolumeClaim{}
	for _, n := range names {
		if c := batch[app.Metadata.Project+"/"+n]; c != nil {
			claims[n] = c
			continue
		}
		o, err := r.Get(ctx, claimKind, app.Metadata.Project, n)
		if api.IsNotFound(err) {
			continue // its pods wait for it, Pending, and say so
		}
		if err != nil {
			return err
		}
		claims[n] = o.(*api.PersistentVolumeClaim)
	}
	return validation.ValidateClaimUse(app, claims).ToError("App", app.Metadata.Name)
}

// podsMounting lists the pods of the project whose volumes name the claim.
func (r *Registry) podsMounting(ctx context.Context, project, claim string) ([]string, error) {
	objs, _, err := r.List(ctx, podKind, project, ListOptions{})
	if err != nil {
		return nil, err
	}
	var names []string
	for _, o := range objs {
		p := o.(*api.Pod)
		if slices.Contains(api.ClaimNames(p.Spec.Volumes), claim) {
			names = append(names, p.Metadata.Name)
		}
	}
	return names, nil
}

// deleteClaim is Delete for a claim, with the protection of Kubernetes'
// kubernetes.io/pvc-protection finaliser: a claim that a pod mounts is
// only marked (metadata.deletionTimestamp, status.mountedBy naming the
// pods) and returned; the node deletes it, and its data, once no pod
// mounts it any more. A claim no pod mounts goes at once.
func (r *Registry) deleteClaim(ctx context.Context, project, name string, opts DeleteOptions) (api.Object, error) {
	k, err := key(claimKind, project, name)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		kv, err := r.st.Get(ctx, k)
		if err != nil {
			return nil, mapErr(err, claimKind, project, name)
		}
		if opts.ResourceVersion != 0 && kv.ModRevision != opts.ResourceVersion {
			return nil, conflict(claimKind, name)
		}
		users, err := r.podsMounting(ctx, project, name)
		if err != nil {
			return nil, err
		}
		if len(users) == 0 {
			rev, last, err := r.st.Delete(ctx, k, kv.ModRevision)
			if errors.Is(err, store.ErrConflict) && attempt < maxApplyAttempts {
				continue
			}
			if err != nil {
				return nil, mapErr(err, claimKind, project, name)
			}
			return decode(claimKind, last, rev)
		}
		obj, err := decode(claimKind, kv, kv.ModRevision)
		if err != nil {
			return nil, err
		}
		c := obj.(*api.PersistentVolumeClaim)
		if c.Metadata.DeletionTimestamp != nil && slices.Equal(c.Status.MountedBy, users) {
			return c, nil
		}
		if c.Metadata.DeletionTimestamp == nil {
			now := r.now().UTC()
			c.Metadata.DeletionTimestamp = &now
		}
		c.Status.MountedBy = users
		out, err := r.write(ctx, claimKind, k, c, kv.ModRevision)
		if api.IsConflict(err) && attempt < maxApplyAttempts {
			continue
		}
		if err == nil {
			r.log.Info("claim in use: marked for deletion", "project", project, "name", name, "pods", users)
		}
		return out, err
	}
}

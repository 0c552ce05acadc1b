package registry

import (
	"bytes"
	"context"
	"errors"
	"maps"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/store"
)

// Project phases the registry itself sets, as the Kubernetes API server does
// for namespaces.
const (
	ProjectActive      = "Active"
	ProjectTerminating = "Terminating"
)

// maxApplyAttempts bounds the read-compare-write loop of Apply under
// concurrent writers.
const maxApplyAttempts = 16

// ListOptions narrows a List.
type ListOptions struct {
	// LabelSelector such as "app=hello,tier!=db" (see ParseSelector).
	LabelSelector string
}

// DeleteOptions guards a Delete.
type DeleteOptions struct {
	// ResourceVersion, when not 0, must be the object's current one.
	ResourceVersion int64
}

// createOpts are the variations of one create.
type createOpts struct {
	keepStatus bool // controllers create Pods, Revisions and Events with a status
	dryRun     bool
	// claims are those of the same apply, by project/name (admit).
	claims map[string]*api.PersistentVolumeClaim
	// projectChecked: the caller has checked that the project exists, or
	// creates it earlier in the same apply.
	projectChecked bool
}

// EnsureDefaultProject creates the default project if it does not exist.
func (r *Registry) EnsureDefaultProject(ctx context.Context) error {
	p := &api.Project{Metadata: api.ObjectMeta{Name: api.DefaultProject}}
	_, err := r.Create(ctx, p)
	if err != nil && !api.IsAlreadyExists(err) {
		return err
	}
	return nil
}

// Create writes a new object with defaults filled in, a new uid,
// generation 1 and an empty status. It returns the stored object.
func (r *Registry) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, c, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	return r.createPrepared(ctx, kind, c, createOpts{})
}

// CreateWithStatus is Create keeping obj's status: for controllers that
// create Pods, Revisions and Events whose status they already know.
func (r *Registry) CreateWithStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, c, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	return r.createPrepared(ctx, kind, c, createOpts{keepStatus: true})
}

func (r *Registry) createPrepared(ctx context.Context, kind api.KindInfo, c api.Object, o createOpts) (api.Object, error) {
	m := c.GetMeta()
	k, err := key(kind, m.Project, m.Name)
	if err != nil {
		return nil, err
	}
	if kind.Projects && !o.projectChecked {
		if err := r.checkProjectWritable(ctx, m.Project); err != nil {
			return nil, err
		}
	}
	if !o.keepStatus {
		clearStatus(c)
	}
	if err := r.admit(ctx, c, o.claims); err != nil {
		return nil, err
	}
	if p, ok := c.(*api.Project); ok && p.Status.Phase == "" {
		p.Status.Phase = ProjectActive
	}
	m.UID = r.newUID()
	m.CreationTimestamp = r.now().UTC()
	m.Generation = 1
	m.ResourceVersion = 0
	if o.dryRun {
		if _, err := r.st.Get(ctx, k); err == nil {
			return nil, mapErr(store.ErrExists, kind, m.Project, m.Name)
		} else if !errors.Is(err, store.ErrNotFound) {
			return nil, mapErr(err, kind, m.Project, m.Name)
		}
		return c, nil
	}
	b, err := encode(c)
	if err != nil {
		return nil, err
	}
	rev, err := r.st.Create(ctx, k, b)
	if err != nil {
		return nil, mapErr(err, kind, m.Project, m.Name)
	}
	m.ResourceVersion = rev
	r.log.Debug("created", "kind", kind.Kind, "project", m.Project, "name", m.Name, "resourceVersion", rev)
	if kind.Kind == "Event" {
		r.pruneEvents(ctx, m.Project)
	}
	return c, nil
}

// checkProjectWritable returns NotFound when the project does not exist
// (creating the default project on demand) and Forbidden while it is being
// deleted.
func (r *Registry) checkProjectWritable(ctx context.Context, project string) error {
	p, err := r.Get(ctx, projectKind, "", project)
	if api.IsNotFound(err) {
		if project == api.DefaultProject {
			return r.EnsureDefaultProject(ctx)
		}
		return api.Errorf(api.ReasonNotFound, "project %q not found", project)
	}
	if err != nil {
		return err
	}
	if p.(*api.Project).Status.Phase == ProjectTerminating {
		return api.Errorf(api.ReasonForbidden, "project %q is being deleted: no new objects may be created in it", project)
	}
	return nil
}

// Get returns one object. project is ignored for Projects and defaults to
// "default" for the other kinds.
func (r *Registry) Get(ctx context.Context, kind api.KindInfo, project, name string) (api.Object, error) {
	if kind.Projects && project == "" {
		project = api.DefaultProject
	}
	k, err := key(kind, project, name)
	if err != nil {
		return nil, err
	}
	kv, err := r.st.Get(ctx, k)
	if err != nil {
		return nil, mapErr(err, kind, project, name)
	}
	return decode(kind, kv, kv.ModRevision)
}

// List returns the objects of a kind in a project ("" for every project)
// that match the selector, and the store revision they were read at: a
// Watch from it misses nothing.
func (r *Registry) List(ctx context.Context, kind api.KindInfo, project string, opts ListOptions) ([]api.Object, int64, error) {
	sel, err := ParseSelector(opts.LabelSelector)
	if err != nil {
		return nil, 0, err
	}
	p, err := prefix(kind, project)
	if err != nil {
		return nil, 0, err
	}
	res, err := r.st.List(ctx, p, store.ListOptions{})
	if err != nil {
		return nil, 0, mapErr(err, kind, project, "")
	}
	out := make([]api.Object, 0, len(res.KVs))
	for _, kv := range res.KVs {
		obj, err := decode(kind, kv, kv.ModRevision)
		if err != nil {
			// One unreadable record must not hide every other object.
			r.log.Error("skipping unreadable object", "key", kv.Key, "err", err)
			continue
		}
		if sel.Matches(obj.GetMeta().Labels) {
			out = append(out, obj)
		}
	}
	return out, res.Revision, nil
}

// requireRV refuses writes that do not say which version they change.
func requireRV(kind api.KindInfo, m *api.ObjectMeta) error {
	if m.ResourceVersion != 0 {
		return nil
	}
	fe := api.FieldErrors{{Type: api.FieldRequired, Field: "metadata.resourceVersion",
		Detail: "an update must carry the resourceVersion it read (use apply to update without one)"}}
	return fe.ToError(kind.Kind, m.Name)
}

// Update replaces an object's spec, labels and annotations if its
// resourceVersion is current (Conflict otherwise). Status and server-owned
// metadata are kept; generation grows only when the spec changes. An update
// that changes nothing writes nothing.
func (r *Registry) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, c, err := prepare(obj)
	if err != nil {
		return nil, err
	}
	m := c.GetMeta()
	k, old, err := r.current(ctx, kind, m)
	if err != nil {
		return nil, err
	}
	if m.UID != "" && m.UID != old.GetMeta().UID {
		return nil, api.Errorf(api.ReasonConflict, "Operation cannot be fulfilled on %s: the uid %s is not the stored one %s: the object was deleted and created again", describe(kind, m.Name), m.UID, old.GetMeta().UID)
	}
	merged, changed, err := mergeUser(kind, old, c)
	if err != nil || !changed {
		return old, err
	}
	if err := r.admit(ctx, merged, nil); err != nil {
		return nil, err
	}
	return r.write(ctx, kind, k, merged, old.GetMeta().ResourceVersion)
}

// current opens a compare-and-swap write: it reads the stored version of the
// object m names and returns it, with its key, if m carries its
// resourceVersion (Conflict otherwise).
func (r *Registry) current(ctx context.Context, kind api.KindInfo, m *api.ObjectMeta) (string, api.Object, error) {
	if err := requireRV(kind, m); err != nil {
		return "", nil, err
	}
	k, err := key(kind, m.Project, m.Name)
	if err != nil {
		return "", nil, err
	}
	kv, err := r.st.Get(ctx, k)
	if err != nil {
		return "", nil, mapErr(err, kind, m.Project, m.Name)
	}
	if kv.ModRevision != m.ResourceVersion {
		return "", nil, conflict(kind, m.Name)
	}
	old, err := decode(kind, kv, kv.ModRevision)
	if err != nil {
		return "", nil, err
	}
	return k, old, nil
}

// write stores obj over the version expected and returns it with its new
// resourceVersion.
func (r *Registry) write(ctx context.Context, kind api.KindInfo, k string, obj api.Object, expected int64) (api.Object, error) {
	m := obj.GetMeta()
	b, err := encode(obj)
	if err != nil {
		return nil, err
	}
	rev, err := r.st.Update(ctx, k, b, expected)
	if err != nil {
		return nil, mapErr(err, kind, m.Project, m.Name)
	}
	m.ResourceVersion = rev
	r.log.Debug("updated", "kind", kind.Kind, "project", m.Project, "name", m.Name, "resourceVersion", rev)
	return obj, nil
}

// mergeUser lays the user-owned parts of c over old: c keeps its spec,
// labels and annotations and takes old's status and server metadata. It
// reports whether anything user-owned differs.
func mergeUser(kind api.KindInfo, old, c api.Object) (api.Object, bool, error) {
	om, cm := old.GetMeta(), c.GetMeta()
	cm.UID, cm.CreationTimestamp, cm.Generation = om.UID, om.CreationTimestamp, om.Generation
	cm.ResourceVersion = om.ResourceVersion
	copyStatus(c, old)
	if errs := validation.ValidateUpdate(old, c); len(errs) > 0 {
		return nil, false, errs.ToError(kind.Kind, cm.Name)
	}
	oldSpec, err := userContent(old)
	if err != nil {
		return nil, false, err
	}
	newSpec, err := userContent(c)
	if err != nil {
		return nil, false, err
	}
	specChanged := !bytes.Equal(oldSpec, newSpec)
	if specChanged {
		cm.Generation++
	}
	metaChanged := !maps.Equal(om.Labels, cm.Labels) || !maps.Equal(om.Annotations, cm.Annotations)
	return c, specChanged || metaChanged, nil
}

// UpdateStatus replaces an object's status if its resourceVersion is
// current, keeping the stored spec and metadata.
func (r *Registry) UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, err := KindOf(obj)
	if err != nil {
		return nil, err
	}
	if !kind.Status {
		return nil, api.Errorf(api.ReasonBadRequest, "%s have no status", kind.Plural)
	}
	c, err := clone(kind, obj)
	if err != nil {
		return nil, err
	}
	m := c.GetMeta()
	if kind.Projects && m.Project == "" {
		m.Project = api.DefaultProject
	}
	k, old, err := r.current(ctx, kind, m)
	if err != nil {
		return nil, err
	}
	before, err := statusContent(old)
	if err != nil {
		return nil, err
	}
	after, err := statusContent(c)
	if err != nil {
		return nil, err
	}
	if bytes.Equal(before, after) {
		return old, nil
	}
	// Status is not validated (validation.Validate leaves it to its writers, the
	// controllers); spec and metadata are the stored ones, valid already.
	copyStatus(old, c)
	return r.write(ctx, kind, k, old, old.GetMeta().ResourceVersion)
}

// Delete removes an object and returns it as it was, with the deleting
// revision as resourceVersion. Deleting a Project deletes everything in it.
func (r *Registry) Delete(ctx context.Context, kind api.KindInfo, project, name string, opts DeleteOptions) (api.Object, error) {
	if !kind.Projects {
		return r.deleteProject(ctx, name, opts)
	}
	if project == "" {
		project = api.DefaultProject
	}
	if kind.Kind == claimKind.Kind {
		return r.deleteClaim(ctx, project, name, opts)
	}
	k, err := key(kind, project, name)
	if err != nil {
		return nil, err
	}
	rev, kv, err := r.st.Delete(ctx, k, opts.ResourceVersion)
	if err != nil {
		return nil, mapErr(err, kind, project, name)
	}
	r.log.Debug("deleted", "kind", kind.Kind, "project", project, "name", name, "resourceVersion", rev)
	return decode(kind, kv, rev)
}

// deleteProject marks the project Terminating (no new objects), deletes
// every object in it, then the project. A delete interrupted half way is
// finished by the next one.
func (r *Registry) deleteProject(ctx context.Context, name string, opts DeleteOptions) (api.Object, error) {
	if name == api.DefaultProject {
		return nil, api.Errorf(api.ReasonForbidden, "project %q may not be deleted", name)
	}
	k, err := key(projectKind, "", name)
	if err != nil {
		return nil, err
	}
	kv, err := r.st.Get(ctx, k)
	if err != nil {
		return nil, mapErr(err, projectKind, "", name)
	}
	if opts.ResourceVersion != 0 && kv.ModRevision != opts.ResourceVersion {
		return nil, conflict(projectKind, name)
	}
	obj, err := decode(projectKind, kv, kv.ModRevision)
	if err != nil {
		return nil, err
	}
	if p := obj.(*api.Project); p.Status.Phase != ProjectTerminating {
		p.Status.Phase = ProjectTerminating
		if _, err := r.write(ctx, projectKind, k, p, kv.ModRevision); err != nil {
			return nil, err
		}
	}
	// Reverse apply order: what depends on others goes first.
	for i := len(api.Kinds) - 1; i >= 0; i-- {
		kind := api.Kinds[i]
		if !kind.Projects {
			continue
		}
		p, _ := prefix(kind, name)
		res, err := r.st.List(ctx, p, store.ListOptions{})
		if err != nil {
			return nil, mapErr(err, kind, name, "")
		}
		for _, child := range res.KVs {
			if _, _, err := r.st.Delete(ctx, child.Key, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, mapErr(err, kind, name, child.Key)
			}
		}
	}
	rev, last, err := r.st.Delete(ctx, k, 0)
	if err != nil {
		return nil, mapErr(err, projectKind, "", name)
	}
	r.eventsMu.Lock()
	delete(r.eventCount, name)
	r.eventsMu.Unlock()
	r.log.Info("deleted project", "project", name, "resourceVersion", rev)
	return decode(projectKind, last, rev)
}

// pruneEvents keeps at most maxEvents Events in the project, deleting the
// oldest (by creation revision). Failing to prune is logged, not returned:
// the Event itself was written.
func (r *Registry) pruneEvents(ctx context.Context, project string) {
	r.eventsMu.Lock()
	defer r.eventsMu.Unlock()
	n, known := r.eventCount[project]
	if known && n+1 <= r.maxEvents {
		r.eventCount[project] = n + 1
		return
	}
	kind := mustKind("Event")
	p, _ := prefix(kind, project)
	res, err := r.st.List(ctx, p, store.ListOptions{})
	if err != nil {
		r.log.Warn("cannot count events", "project", project, "err", err)
		delete(r.eventCount, project)
		return
	}
	kvs := res.KVs
	excess := len(kvs) - r.maxEvents
	if excess > 0 {
		// Oldest first: creation revisions are unique and increasing.
		sortByCreate(kvs)
		for _, kv := range kvs[:excess] {
			if _, _, err := r.st.Delete(ctx, kv.Key, kv.ModRevision); err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrConflict) {
				r.log.Warn("cannot prune event", "key", kv.Key, "err", err)
			}
		}
		r.eventCount[project] = r.maxEvents
		return
	}
	r.eventCount[project] = len(kvs)
}

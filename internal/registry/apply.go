package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sync/errgroup"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/store"
)

// applyParallelism bounds the objects of one kind ApplyList writes at once.
const applyParallelism = 32

// Apply results, as kubectl prints them.
const (
	Created    = "created"
	Configured = "configured"
	Unchanged  = "unchanged"
)

// Apply creates obj if it does not exist; otherwise it replaces the
// user-owned parts (spec or data, labels, annotations), keeping status and
// server metadata. It reports "unchanged", writing nothing, when no
// user-owned part differs. obj's resourceVersion is ignored: concurrent
// writers are handled by retrying the compare-and-swap.
func (r *Registry) Apply(ctx context.Context, obj api.Object) (string, api.Object, error) {
	kind, c, err := prepare(obj)
	if err != nil {
		return "", nil, err
	}
	return r.applyPrepared(ctx, kind, c, createOpts{})
}

func (r *Registry) applyPrepared(ctx context.Context, kind api.KindInfo, c api.Object, o createOpts) (string, api.Object, error) {
	m := c.GetMeta()
	k, err := key(kind, m.Project, m.Name)
	if err != nil {
		return "", nil, err
	}
	for attempt := 1; ; attempt++ {
		kv, err := r.st.Get(ctx, k)
		if errors.Is(err, store.ErrNotFound) {
			obj, err := r.createPrepared(ctx, kind, c, o)
			if api.IsAlreadyExists(err) && !o.dryRun && attempt < maxApplyAttempts {
				continue
			}
			if err != nil {
				return "", nil, err
			}
			return Created, obj, nil
		}
		if err != nil {
			return "", nil, mapErr(err, kind, m.Project, m.Name)
		}
		old, err := decode(kind, kv, kv.ModRevision)
		if err != nil {
			return "", nil, err
		}
		merged, changed, err := mergeUser(kind, old, c)
		if err != nil {
			return "", nil, err
		}
		if !changed {
			return Unchanged, old, nil
		}
		if err := r.admit(ctx, merged, o.claims); err != nil {
			return "", nil, err
		}
		if o.dryRun {
			return Configured, merged, nil
		}
		obj, err := r.write(ctx, kind, k, merged, kv.ModRevision)
		if (api.IsConflict(err) || api.IsNotFound(err)) && attempt < maxApplyAttempts {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		return Configured, obj, nil
	}
}

// ApplyResult is the outcome of applying one object.
type ApplyResult struct {
	Kind    string
	Project string
	Name    string
	Result  string // Created, Configured or Unchanged
	Object  api.Object
}

// ApplyOptions varies ApplyList.
type ApplyOptions struct {
	// DryRun reports what would happen and writes nothing.
	DryRun bool
}

// ApplyList applies several objects as one manifest. It defaults and
// validates every object first and writes none if any is invalid (one
// Invalid error whose causes are prefixed with items[i].), then applies them
// in api.Kinds order so that a Project precedes what it holds (objects of
// the same kind concurrently). Results are in the order of objs. If a write
// fails half way, the error names the item and the results of the items
// already applied are returned with it.
func (r *Registry) ApplyList(ctx context.Context, objs []api.Object, opts ApplyOptions) ([]ApplyResult, error) {
	kinds := make([]api.KindInfo, len(objs))
	prepared := make([]api.Object, len(objs))
	var causes []api.Cause
	var msgs []string
	invalid := func(i int, err error) {
		var ae *api.Error
		if errors.As(err, &ae) && len(ae.Causes) > 0 {
			for _, c := range ae.Causes {
				causes = append(causes, api.Cause{Field: itemField(i, c.Field), Message: c.Message})
			}
		} else {
			causes = append(causes, api.Cause{Field: fmt.Sprintf("items[%d]", i), Message: err.Error()})
		}
		msgs = append(msgs, fmt.Sprintf("items[%d]: %s", i, err.Error()))
	}
	batchProjects := map[string]bool{}
	seen := map[string]int{}
	for i, o := range objs {
		kind, c, err := prepare(o)
		if err != nil {
			invalid(i, err)
			continue
		}
		kinds[i], prepared[i] = kind, c
		m := c.GetMeta()
		id := kind.Kind + "/" + m.Project + "/" + m.Name
		if j, dup := seen[id]; dup {
			invalid(i, api.FieldErrors{{Type: api.FieldDuplicate, Field: "metadata.name", BadValue: m.Name,
				Detail: fmt.Sprintf("items[%d] is the same %s", j, kind.Kind)}}.ToError(kind.Kind, m.Name))
			continue
		}
		seen[id] = i
		if !kind.Projects {
			batchProjects[m.Name] = true
		}
	}
	// A missing project would fail half way through the writes; find it now.
	projectOK := map[string]error{}
	for i, c := range prepared {
		if c == nil || !kinds[i].Projects {
			continue
		}
		p := c.GetMeta().Project
		err, done := projectOK[p]
		if !done {
			err = r.checkProjectWritable(ctx, p)
			if batchProjects[p] && api.IsNotFound(err) {
				err = nil // created by this apply, before the objects it holds
			}
			projectOK[p] = err
		}
		if err != nil {
			if !api.IsNotFound(err) && api.ReasonOf(err) != api.ReasonForbidden {
				return nil, err
			}
			detail := err.Error()
			if api.IsNotFound(err) {
				detail += " (and this apply does not create it)"
			}
			invalid(i, api.FieldErrors{{Type: api.FieldInvalid, Field: "metadata.project", BadValue: p,
				Detail: detail}}.ToError(kinds[i].Kind, c.GetMeta().Name))
		}
	}
	// Admission, against the claims of this apply and the stored ones.
	batchClaims := map[string]*api.PersistentVolumeClaim{}
	for _, c := range prepared {
		if pvc, ok := c.(*api.PersistentVolumeClaim); ok {
			batchClaims[pvc.Metadata.Project+"/"+pvc.Metadata.Name] = pvc
		}
	}
	for i, c := range prepared {
		if c == nil {
			continue
		}
		if err := r.admit(ctx, c, batchClaims); err != nil {
			if !api.IsInvalid(err) {
				return nil, err
			}
			invalid(i, err)
		}
	}
	if len(causes) > 0 {
		e := api.Errorf(api.ReasonInvalid, "%d of %d objects are invalid, none was applied: %s", len(msgs), len(objs), strings.Join(msgs, "; "))
		e.Causes = causes
		return nil, e
	}

	// Kinds are written in api.Kinds order; the objects of one kind
	// concurrently, so that the store can commit them in shared batches.
	groups := map[int][]int{}
	var ranks []int
	for i := range objs {
		rank := kindRank(kinds[i])
		if _, ok := groups[rank]; !ok {
			ranks = append(ranks, rank)
		}
		groups[rank] = append(groups[rank], i)
	}
	slices.Sort(ranks)
	results := make([]ApplyResult, len(objs))
	errs := make([]error, len(objs))
	for _, rank := range ranks {
		var g errgroup.Group
		g.SetLimit(applyParallelism)
		for _, i := range groups[rank] {
			g.Go(func() error {
				kind, c := kinds[i], prepared[i]
				m := c.GetMeta()
				o := createOpts{dryRun: opts.DryRun, projectChecked: true, claims: batchClaims}
				res, obj, err := r.applyPrepared(ctx, kind, c, o)
				if err != nil {
					errs[i] = err
					return nil
				}
				results[i] = ApplyResult{Kind: kind.Kind, Project: m.Project, Name: m.Name, Result: res, Object: obj}
				return nil
			})
		}
		_ = g.Wait()
		if first := slices.IndexFunc(errs, func(err error) bool { return err != nil }); first >= 0 {
			var done []ApplyResult
			for _, res := range results {
				if res.Result != "" {
					done = append(done, res)
				}
			}
			return done, itemError(first, kinds[first], prepared[first].GetMeta(), len(done), errs[first])
		}
	}
	return results, nil
}

func kindRank(k api.KindInfo) int {
	for i, x := range api.Kinds {
		if x.Kind == k.Kind {
			return i
		}
	}
	return len(api.Kinds)
}

func itemField(i int, field string) string {
	if field == "" {
		return fmt.Sprintf("items[%d]", i)
	}
	return fmt.Sprintf("items[%d].%s", i, field)
}

// itemError names the item a half-done apply failed on, keeping the reason.
func itemError(i int, kind api.KindInfo, m *api.ObjectMeta, applied int, err error) error {
	var ae *api.Error
	if !errors.As(err, &ae) {
		return fmt.Errorf("items[%d] (%s %q): %w (%d other objects were applied)", i, kind.Kind, m.Name, err, applied)
	}
	e := *ae
	e.Message = fmt.Sprintf("items[%d] (%s %q): %s (%d other objects were applied)", i, kind.Kind, m.Name, ae.Message, applied)
	e.Causes = nil
	for _, c := range ae.Causes {
		e.Causes = append(e.Causes, api.Cause{Field: itemField(i, c.Field), Message: c.Message})
	}
	return &e
}

func sortByCreate(kvs []store.KeyValue) {
	slices.SortFunc(kvs, func(a, b store.KeyValue) int { return cmp.Compare(a.CreateRevision, b.CreateRevision) })
}

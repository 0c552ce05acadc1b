// Package registry is the one typed path to the store. The API server and
// the in-process controllers both write through it, so every writer gets the
// same defaulting, validation, spec/status separation and error kinds.
//
// Keys are /slipway/<plural>/<project>/<name> (projects:
// /slipway/projects/<name>). Values are the JSON of the object without
// metadata.resourceVersion: on every read resourceVersion is the key's
// ModRevision, as kine and Kubernetes do, so it can never disagree with the
// revision the store compares against.
package registry

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/store"
)

// keyRoot prefixes every key the registry writes.
const keyRoot = "/slipway/"

// DefaultMaxEventsPerProject bounds the Events kept in one project.
const DefaultMaxEventsPerProject = 1000

// Options configures a Registry. Zero values take the defaults.
type Options struct {
	Logger *slog.Logger
	// Now stamps creationTimestamp; time.Now when nil.
	Now func() time.Time
	// NewUID makes metadata.uid; a random UUIDv4 when nil.
	NewUID func() string
	// MaxEventsPerProject bounds Events per project; the oldest are pruned
	// (DefaultMaxEventsPerProject when 0).
	MaxEventsPerProject int
}

// Registry reads and writes typed objects in a store.Store.
type Registry struct {
	st        store.Store
	log       *slog.Logger
	now       func() time.Time
	newUID    func() string
	maxEvents int

	// eventsMu serialises pruning; eventCount is an upper bound of the
	// Events per project, so that a create lists the project's Events only
	// when the bound may be exceeded.
	eventsMu   sync.Mutex
	eventCount map[string]int
}

// New returns a Registry over st.
func New(st store.Store, opts Options) *Registry {
	r := &Registry{
		st:         st,
		log:        opts.Logger,
		now:        opts.Now,
		newUID:     opts.NewUID,
		maxEvents:  opts.MaxEventsPerProject,
		eventCount: map[string]int{},
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	if r.newUID == nil {
		r.newUID = newUUID
	}
	if r.maxEvents <= 0 {
		r.maxEvents = DefaultMaxEventsPerProject
	}
	return r
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// projectKind is the KindInfo of Project.
var projectKind = mustKind("Project")

func mustKind(name string) api.KindInfo {
	for _, k := range api.Kinds {
		if k.Kind == name {
			return k
		}
	}
	panic("registry: no kind " + name)
}

// KindOf returns the KindInfo of obj, from its Go type; a TypeMeta naming
// another kind is an error.
func KindOf(obj api.Object) (api.KindInfo, error) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return api.KindInfo{}, api.Errorf(api.ReasonBadRequest, "no object")
	}
	t := reflect.TypeOf(obj)
	for _, k := range api.Kinds {
		if reflect.TypeOf(k.New()) == t {
			tm := obj.GetTypeMeta()
			if tm.Kind != "" && tm.Kind != k.Kind {
				return api.KindInfo{}, api.Errorf(api.ReasonBadRequest, "kind %q does not match the object's type %s", tm.Kind, k.Kind)
			}
			if tm.APIVersion != "" && tm.APIVersion != api.Version {
				return api.KindInfo{}, api.Errorf(api.ReasonBadRequest, "apiVersion %q is not supported: use %s", tm.APIVersion, api.Version)
			}
			return k, nil
		}
	}
	return api.KindInfo{}, api.Errorf(api.ReasonBadRequest, "%T is not a Slipway kind", obj)
}

// checkSegment refuses names that cannot be a key segment.
func checkSegment(what, s string) error {
	if s == "" {
		return api.Errorf(api.ReasonBadRequest, "%s is required", what)
	}
	if len(s) > 253 || strings.Contains(s, "/") || s == "." || s == ".." {
		return api.Errorf(api.ReasonBadRequest, "invalid %s %q: must be a DNS label", what, s)
	}
	return nil
}

// key returns the key of one object.
func key(kind api.KindInfo, project, name string) (string, error) {
	if err := checkSegment("name", name); err != nil {
		return "", err
	}
	if !kind.Projects {
		return keyRoot + kind.Plural + "/" + name, nil
	}
	if err := checkSegment("project", project); err != nil {
		return "", err
	}
	return keyRoot + kind.Plural + "/" + project + "/" + name, nil
}

// prefix returns the key prefix of a kind in a project ("" for all).
func prefix(kind api.KindInfo, project string) (string, error) {
	if project == "" || !kind.Projects {
		return keyRoot + kind.Plural + "/", nil
	}
	if err := checkSegment("project", project); err != nil {
		return "", err
	}
	return keyRoot + kind.Plural + "/" + project + "/", nil
}

// describe names an object in messages: `apps "hello"`.
func describe(kind api.KindInfo, name string) string {
	return fmt.Sprintf("%s %q", kind.Plural, name)
}

// mapErr turns a store error about one object into an *api.Error.
func mapErr(err error, kind api.KindInfo, project, name string) error {
	var ae *api.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ae):
		return err
	case errors.Is(err, store.ErrNotFound):
		if kind.Projects && project != "" {
			return api.Errorf(api.ReasonNotFound, "%s not found in project %q", describe(kind, name), project)
		}
		return api.Errorf(api.ReasonNotFound, "%s not found", describe(kind, name))
	case errors.Is(err, store.ErrExists):
		if kind.Projects && project != "" {
			return api.Errorf(api.ReasonAlreadyExists, "%s already exists in project %q", describe(kind, name), project)
		}
		return api.Errorf(api.ReasonAlreadyExists, "%s already exists", describe(kind, name))
	case errors.Is(err, store.ErrConflict):
		return conflict(kind, name)
	case errors.Is(err, store.ErrCompacted):
		return api.Errorf(api.ReasonGone, "the requested resourceVersion has been compacted: list again and watch from the list's resourceVersion")
	case errors.Is(err, store.ErrClosed):
		return api.Errorf(api.ReasonUnavailable, "the store is closed")
	case errors.Is(err, store.ErrNoSpace):
		full := "is full"
		if errors.Is(err, syscall.EDQUOT) {
			full = "has no quota left (disk quota exceeded)"
		}
		return api.Errorf(api.ReasonInsufficientStorage, "%s was not written: no space left on device: the disk holding Slipway's store %s; free space on it and retry", describe(kind, name), full)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%s: %w", describe(kind, name), err)
}

func conflict(kind api.KindInfo, name string) error {
	return api.Errorf(api.ReasonConflict, "Operation cannot be fulfilled on %s: the object has been modified; please apply your changes to the latest version and try again", describe(kind, name))
}

// encode returns the stored form of obj: its JSON without resourceVersion.
func encode(obj api.Object) ([]byte, error) {
	m := obj.GetMeta()
	rv := m.ResourceVersion
	m.ResourceVersion = 0
	b, err := json.Marshal(obj)
	m.ResourceVersion = rv
	return b, err
}

// decode reads a stored value; resourceVersion comes from the key's revision.
func decode(kind api.KindInfo, kv store.KeyValue, rv int64) (api.Object, error) {
	obj := kind.NewObject()
	if err := json.Unmarshal(kv.Value, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	*obj.GetTypeMeta() = api.TypeMeta{APIVersion: api.Version, Kind: kind.Kind}
	obj.GetMeta().ResourceVersion = rv
	return obj, nil
}

// clone deep-copies obj so that the caller's value is never changed.
func clone(kind api.KindInfo, obj api.Object) (api.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, api.Errorf(api.ReasonBadRequest, "cannot encode %s: %v", kind.Kind, err)
	}
	c := kind.NewObject()
	if err := json.Unmarshal(b, c); err != nil {
		return nil, api.Errorf(api.ReasonBadRequest, "cannot decode %s: %v", kind.Kind, err)
	}
	*c.GetTypeMeta() = api.TypeMeta{APIVersion: api.Version, Kind: kind.Kind}
	return c, nil
}

// statusOf returns the Status field of obj, if its kind has one.
func statusOf(obj api.Object) (reflect.Value, bool) {
	v := reflect.ValueOf(obj).Elem().FieldByName("Status")
	return v, v.IsValid()
}

// copyStatus sets dst's status to src's.
func copyStatus(dst, src api.Object) {
	if d, ok := statusOf(dst); ok {
		s, _ := statusOf(src)
		d.Set(s)
	}
}

// clearStatus empties obj's status.
func clearStatus(obj api.Object) {
	if s, ok := statusOf(obj); ok {
		s.SetZero()
	}
}

// userContent returns the JSON of everything users own outside metadata:
// spec for most kinds, data for Secrets, the fields of an Event. A change to
// it bumps generation.
func userContent(obj api.Object) ([]byte, error) {
	v := reflect.ValueOf(obj).Elem()
	c := reflect.New(v.Type()).Elem()
	c.Set(v)
	for _, f := range []string{"TypeMeta", "Metadata", "Status"} {
		if fv := c.FieldByName(f); fv.IsValid() {
			fv.SetZero()
		}
	}
	return json.Marshal(c.Addr().Interface())
}

// statusContent returns the JSON of obj's status.
func statusContent(obj api.Object) ([]byte, error) {
	s, ok := statusOf(obj)
	if !ok {
		return nil, nil
	}
	return json.Marshal(s.Interface())
}

// prepare copies obj, fills defaults and validates it.
func prepare(obj api.Object) (api.KindInfo, api.Object, error) {
	kind, err := KindOf(obj)
	if err != nil {
		return kind, nil, err
	}
	c, err := clone(kind, obj)
	if err != nil {
		return kind, nil, err
	}
	m := c.GetMeta()
	if kind.Projects && m.Project == "" {
		m.Project = api.DefaultProject
	}
	api.SetDefaults(c)
	if errs := validation.Validate(c); len(errs) > 0 {
		return kind, nil, errs.ToError(kind.Kind, m.Name)
	}
	return kind, c, nil
}

// Ping checks that the store answers.
func (r *Registry) Ping(ctx context.Context) error {
	_, err := r.st.Revision(ctx)
	return err
}

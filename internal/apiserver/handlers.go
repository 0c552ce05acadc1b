package apiserver

import (
	"net/http"
	"strconv"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

var projectKind, _ = api.LookupKind("Project")

// List is the body of a list response.
type List struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"` // AppList
	Metadata   ListMeta     `json:"metadata"`
	Items      []api.Object `json:"items"`
}

// ListMeta carries the revision a list was read at: watch from it.
type ListMeta struct {
	ResourceVersion int64 `json:"resourceVersion"`
}

// allProjects serves /api/v1/{plural}: a kind across every project, and
// the projects themselves.
func (s *server) allProjects(w http.ResponseWriter, r *http.Request) error {
	kind, err := kindByPlural(r.PathValue("plural"))
	if err != nil {
		return err
	}
	switch {
	case r.Method == http.MethodGet:
		return s.list(w, r, kind, "")
	case r.Method == http.MethodPost && !kind.Projects:
		return s.create(w, r, kind, "")
	case !kind.Projects:
		return methodNotAllowed(w, r, http.MethodGet, http.MethodPost)
	}
	return methodNotAllowed(w, r, http.MethodGet)
}

// projectItem serves /api/v1/projects/{project}.
func (s *server) projectItem(w http.ResponseWriter, r *http.Request) error {
	return s.object(w, r, projectKind, "", r.PathValue("project"))
}

// collection serves /api/v1/projects/{project}/{plural}, and a project's
// status at /api/v1/projects/{project}/status.
func (s *server) collection(w http.ResponseWriter, r *http.Request) error {
	project, plural := r.PathValue("project"), r.PathValue("plural")
	if plural == "status" {
		return s.objectStatus(w, r, projectKind, "", project)
	}
	kind, err := inProject(plural)
	if err != nil {
		return err
	}
	switch r.Method {
	case http.MethodGet:
		return s.list(w, r, kind, project)
	case http.MethodPost:
		return s.create(w, r, kind, project)
	}
	return methodNotAllowed(w, r, http.MethodGet, http.MethodPost)
}

// item serves /api/v1/projects/{project}/{plural}/{name}.
func (s *server) item(w http.ResponseWriter, r *http.Request) error {
	kind, err := inProject(r.PathValue("plural"))
	if err != nil {
		return err
	}
	return s.object(w, r, kind, r.PathValue("project"), r.PathValue("name"))
}

// status serves /api/v1/projects/{project}/{plural}/{name}/status.
func (s *server) status(w http.ResponseWriter, r *http.Request) error {
	kind, err := inProject(r.PathValue("plural"))
	if err != nil {
		return err
	}
	return s.objectStatus(w, r, kind, r.PathValue("project"), r.PathValue("name"))
}

func inProject(plural string) (api.KindInfo, error) {
	kind, err := kindByPlural(plural)
	if err != nil {
		return kind, err
	}
	if !kind.Projects {
		return kind, api.Errorf(api.ReasonNotFound, "%s do not live in a project: use /api/v1/%s", kind.Plural, kind.Plural)
	}
	return kind, nil
}

func (s *server) list(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project string) error {
	q := r.URL.Query()
	sel := q.Get("labelSelector")
	if watch, err := queryBool(q.Get("watch"), "watch"); err != nil {
		return err
	} else if watch {
		return s.watch(w, r, kind, project, sel)
	}
	objs, rev, err := s.reg.List(r.Context(), kind, project, registry.ListOptions{LabelSelector: sel})
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, List{APIVersion: api.Version, Kind: kind.Kind + "List",
		Metadata: ListMeta{ResourceVersion: rev}, Items: objs})
	return nil
}

func queryBool(v, name string) (bool, error) {
	switch v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	}
	return false, api.Errorf(api.ReasonBadRequest, "invalid %s=%q: must be true or false", name, v)
}

func queryInt(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, api.Errorf(api.ReasonBadRequest, "invalid %s=%q: must be a non-negative integer", name, v)
	}
	return n, nil
}

func (s *server) create(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project string) error {
	obj, err := s.decodeObject(w, r, kind, project, "")
	if err != nil {
		return err
	}
	created, err := s.reg.Create(r.Context(), obj)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusCreated, created)
	return nil
}

// object serves one object: GET, PUT (update with compare-and-swap on
// resourceVersion), DELETE (?resourceVersion= guards it).
func (s *server) object(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project, name string) error {
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet:
		obj, err := s.reg.Get(ctx, kind, project, name)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, obj)
		return nil
	case http.MethodPut:
		obj, err := s.decodeObject(w, r, kind, project, name)
		if err != nil {
			return err
		}
		updated, err := s.reg.Update(ctx, obj)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, updated)
		return nil
	case http.MethodDelete:
		rv, err := queryInt(r.URL.Query().Get("resourceVersion"), "resourceVersion")
		if err != nil {
			return err
		}
		deleted, err := s.reg.Delete(ctx, kind, project, name, registry.DeleteOptions{ResourceVersion: rv})
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, deleted)
		return nil
	}
	return methodNotAllowed(w, r, http.MethodGet, http.MethodPut, http.MethodDelete)
}

func (s *server) objectStatus(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project, name string) error {
	switch r.Method {
	case http.MethodGet:
		obj, err := s.reg.Get(r.Context(), kind, project, name)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, obj)
		return nil
	case http.MethodPut:
		if !kind.Status {
			return api.Errorf(api.ReasonNotFound, "%s have no status", kind.Plural)
		}
		obj, err := s.decodeObject(w, r, kind, project, name)
		if err != nil {
			return err
		}
		updated, err := s.reg.UpdateStatus(r.Context(), obj)
		if err != nil {
			return err
		}
		s.writeJSON(w, http.StatusOK, updated)
		return nil
	}
	return methodNotAllowed(w, r, http.MethodGet, http.MethodPut)
}

// decodeObject reads a body holding one object of kind and reconciles it
// with the URL: empty fields take the URL's values, different ones are an
// error.
func (s *server) decodeObject(w http.ResponseWriter, r *http.Request, kind api.KindInfo, project, name string) (api.Object, error) {
	b, err := readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		return nil, err
	}
	obj := kind.New()
	if err := decodeStrict(b, obj); err != nil {
		return nil, err
	}
	if err := checkTypeMeta(obj, kind); err != nil {
		return nil, err
	}
	m := obj.GetMeta()
	if kind.Projects {
		if m.Project == "" {
			m.Project = project
		} else if m.Project != project {
			return nil, mismatch("metadata.project", m.Project, project)
		}
	}
	if name != "" {
		if m.Name == "" {
			m.Name = name
		} else if m.Name != name {
			return nil, mismatch("metadata.name", m.Name, name)
		}
	}
	return obj, nil
}

func mismatch(field, body, url string) error {
	e := api.Errorf(api.ReasonBadRequest, "%s %q in the body does not match %q in the URL", field, body, url)
	e.Causes = []api.Cause{{Field: field, Message: "does not match the URL"}}
	return e
}

// checkTypeMeta refuses a body of another kind or apiVersion than the URL's.
func checkTypeMeta(obj api.Object, kind api.KindInfo) error {
	tm := obj.GetTypeMeta()
	if tm.Kind != "" && tm.Kind != kind.Kind {
		e := api.Errorf(api.ReasonBadRequest, "kind %q in the body does not match %s in the URL (kind %s)", tm.Kind, kind.Plural, kind.Kind)
		e.Causes = []api.Cause{{Field: "kind", Message: "does not match the URL"}}
		return e
	}
	if tm.APIVersion != "" && tm.APIVersion != api.Version {
		e := api.Errorf(api.ReasonBadRequest, "apiVersion %q is not served: use %s", tm.APIVersion, api.Version)
		e.Causes = []api.Cause{{Field: "apiVersion", Message: "unsupported version"}}
		return e
	}
	return nil
}

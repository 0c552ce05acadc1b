package apiserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// ApplyRequest is the body of POST /api/v1/apply.
type ApplyRequest struct {
	Items  []json.RawMessage `json:"items"`
	DryRun bool              `json:"dryRun,omitempty"`
}

// ApplyResponse is its answer, one result per item in the request's order.
type ApplyResponse struct {
	Results []ApplyResult `json:"results"`
}

// ApplyResult says what apply did to one object.
type ApplyResult struct {
	Kind    string     `json:"kind"`
	Project string     `json:"project,omitempty"`
	Name    string     `json:"name"`
	Result  string     `json:"result"` // created, configured, unchanged
	Object  api.Object `json:"object"`
}

// apply decodes every item, then hands them all to the registry, which
// validates all before writing any.
func (s *server) apply(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, r, http.MethodPost)
	}
	b, err := readBody(w, r, s.opts.MaxApplyBodyBytes)
	if err != nil {
		return err
	}
	var req ApplyRequest
	if err := decodeStrict(b, &req); err != nil {
		return err
	}
	if len(req.Items) == 0 {
		e := api.Errorf(api.ReasonBadRequest, "nothing to apply: items is empty")
		e.Causes = []api.Cause{{Field: "items", Message: api.FieldRequired}}
		return e
	}
	objs := make([]api.Object, len(req.Items))
	var causes []api.Cause
	var msgs []string
	for i, raw := range req.Items {
		obj, err := decodeItem(raw)
		if err != nil {
			ae := toAPIError(err)
			msgs = append(msgs, fmt.Sprintf("items[%d]: %s", i, ae.Message))
			if len(ae.Causes) == 0 {
				causes = append(causes, api.Cause{Field: fmt.Sprintf("items[%d]", i), Message: ae.Message})
			}
			for _, c := range ae.Causes {
				causes = append(causes, api.Cause{Field: fmt.Sprintf("items[%d].%s", i, c.Field), Message: c.Message})
			}
			continue
		}
		objs[i] = obj
	}
	if len(causes) > 0 {
		e := api.Errorf(api.ReasonBadRequest, "%d of %d items cannot be decoded, none was applied: %s", len(msgs), len(req.Items), strings.Join(msgs, "; "))
		e.Causes = causes
		return e
	}
	results, err := s.reg.ApplyList(r.Context(), objs, registry.ApplyOptions{DryRun: req.DryRun})
	if err != nil {
		return err
	}
	resp := ApplyResponse{Results: make([]ApplyResult, len(results))}
	for i, res := range results {
		resp.Results[i] = ApplyResult{Kind: res.Kind, Project: res.Project, Name: res.Name, Result: res.Result, Object: res.Object}
	}
	s.writeJSON(w, http.StatusOK, resp)
	return nil
}

// decodeItem decodes one item of an apply by the kind it names.
func decodeItem(raw json.RawMessage) (api.Object, error) {
	var tm api.TypeMeta
	if err := json.Unmarshal(raw, &tm); err != nil {
		// Not an object with a string kind: let the strict decoder say why.
		if err := decodeStrict(raw, &map[string]any{}); err != nil {
			return nil, err
		}
		e := api.Errorf(api.ReasonBadRequest, "kind must be a string")
		e.Causes = []api.Cause{{Field: "kind", Message: "must be a string"}}
		return nil, e
	}
	if tm.Kind == "" {
		e := api.Errorf(api.ReasonBadRequest, "kind is required")
		e.Causes = []api.Cause{{Field: "kind", Message: api.FieldRequired}}
		return nil, e
	}
	var kind api.KindInfo
	var names []string
	for _, k := range api.Kinds {
		names = append(names, k.Kind)
		if k.Kind == tm.Kind {
			kind = k
		}
	}
	if kind.Kind == "" {
		e := api.Errorf(api.ReasonBadRequest, "unknown kind %q: supported kinds are %s", tm.Kind, strings.Join(names, ", "))
		e.Causes = []api.Cause{{Field: "kind", Message: fmt.Sprintf("%s: %q: supported values: %s", api.FieldUnsupported, tm.Kind, strings.Join(names, ", "))}}
		return nil, e
	}
	obj := kind.New()
	if err := decodeStrict(raw, obj); err != nil {
		return nil, err
	}
	if err := checkTypeMeta(obj, kind); err != nil {
		return nil, err
	}
	return obj, nil
}

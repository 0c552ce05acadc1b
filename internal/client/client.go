// Package client is the typed client of Slipway's API, used by the CLI,
// the console and the end-to-end tests. Server errors come back as
// *api.Error (test them with errors.As or api.IsNotFound and friends); a
// server that cannot be reached gives an error for which IsUnreachable is
// true.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"slipway.dev/slipway/internal/api"
)

// Config says where the API is and who calls it.
type Config struct {
	// Server is the API's base URL, e.g. http://127.0.0.1:7070 (a bare
	// host:port means http).
	Server string
	// Token is the bearer token sent with every request.
	Token string
	// HTTPClient defaults to a client without a timeout (watches are long):
	// bound calls with their context.
	HTTPClient *http.Client
	// UserAgent defaults to "slipway-client".
	UserAgent string
}

// Client calls the API. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
	ua    string
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	base := strings.TrimRight(cfg.Server, "/")
	if base != "" && !strings.Contains(base, "://") {
		base = "http://" + base
	}
	c := &Client{base: base, token: cfg.Token, hc: cfg.HTTPClient, ua: cfg.UserAgent}
	if c.hc == nil {
		c.hc = &http.Client{}
	}
	if c.ua == "" {
		c.ua = "slipway-client"
	}
	return c
}

// Server returns the base URL the client calls.
func (c *Client) Server() string { return c.base }

// UnreachableError says the API could not be reached at all.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Slipway API at %s: %s (is \"slipway up\" running?)", e.Server, reason(e.Err))
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// reason shortens a dial error to what a person needs.
func reason(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to host"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "unknown host " + dns.Name
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// IsUnreachable reports whether err means the API could not be reached.
func IsUnreachable(err error) bool {
	var u *UnreachableError
	return errors.As(err, &u)
}

// unreachable recognises errors of the connection itself, as opposed to
// errors of an exchange that began.
func unreachable(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns) || errors.Is(err, syscall.ECONNREFUSED)
}

// do sends one request and decodes a 2xx answer into out (unless nil).
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	resp, err := c.send(ctx, method, path, query, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: cannot decode the response: %w", method, path, err)
	}
	return nil
}

// send sends one request and returns a 2xx response; any other status is
// turned into an *api.Error.
func (c *Client) send(ctx context.Context, method, path string, query url.Values, body any) (*http.Response, error) {
	if c.base == "" {
		return nil, errors.New("no API server configured: set --server or SLIPWAY_SERVER")
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	contentType := "application/json"
	if r, ok := body.(io.Reader); ok { // a raw body (a build's source archive)
		rd, contentType = r, "application/x-tar"
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil && unreachable(err) {
			return nil, &UnreachableError{Server: c.base, Err: err}
		}
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, decodeError(resp)
}

// decodeError reads a non-2xx answer: an *api.Error, or one made from the
// status when the body is not one (a proxy's page, say).
func decodeError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.Error
	if json.Unmarshal(b, &e) == nil && e.Reason != "" {
		if e.Code == 0 {
			e.Code = resp.StatusCode
		}
		return &e
	}
	reason := api.ReasonInternal
	for _, r := range []string{api.ReasonBadRequest, api.ReasonUnauthorized, api.ReasonForbidden, api.ReasonNotFound,
		api.ReasonConflict, api.ReasonInvalid, api.ReasonTooLarge, api.ReasonGone, api.ReasonMethodNotAllowd, api.ReasonUnavailable} {
		if api.Errorf(r, "").Code == resp.StatusCode {
			reason = r
			break
		}
	}
	snippet := strings.TrimSpace(string(b))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "..."
	}
	return &api.Error{Code: resp.StatusCode, Reason: reason,
		Message: fmt.Sprintf("the server answered %s: %s", resp.Status, snippet)}
}

// kindOf finds the KindInfo of obj by its Go type.
func kindOf(obj api.Object) (api.KindInfo, error) {
	if obj == nil || reflect.ValueOf(obj).IsNil() {
		return api.KindInfo{}, errors.New("no object")
	}
	t := reflect.TypeOf(obj)
	for _, k := range api.Kinds {
		if reflect.TypeOf(k.New()) == t {
			return k, nil
		}
	}
	return api.KindInfo{}, fmt.Errorf("%T is not a Slipway kind", obj)
}

// collectionPath is the URL path of a kind in a project ("" for all).
func collectionPath(kind api.KindInfo, project string) string {
	if !kind.Projects || project == "" {
		return "/api/v1/" + kind.Plural
	}
	return "/api/v1/projects/" + url.PathEscape(project) + "/" + kind.Plural
}

// objectPath is the URL path of one object.
func objectPath(kind api.KindInfo, project, name string) string {
	if !kind.Projects {
		return "/api/v1/projects/" + url.PathEscape(name)
	}
	if project == "" {
		project = api.DefaultProject
	}
	return "/api/v1/projects/" + url.PathEscape(project) + "/" + kind.Plural + "/" + url.PathEscape(name)
}

// Get returns one object.
func (c *Client) Get(ctx context.Context, kind api.KindInfo, project, name string) (api.Object, error) {
	obj := kind.NewObject()
	if err := c.do(ctx, http.MethodGet, objectPath(kind, project, name), nil, nil, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

// List returns the objects of a kind in a project ("" for all projects)
// matching a label selector ("" for all), and the resourceVersion to watch
// from.
func (c *Client) List(ctx context.Context, kind api.KindInfo, project, selector string) ([]api.Object, int64, error) {
	q := url.Values{}
	if selector != "" {
		q.Set("labelSelector", selector)
	}
	var raw struct {
		Metadata struct {
			ResourceVersion int64 `json:"resourceVersion"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := c.do(ctx, http.MethodGet, collectionPath(kind, project), q, nil, &raw); err != nil {
		return nil, 0, err
	}
	objs := make([]api.Object, len(raw.Items))
	for i, item := range raw.Items {
		obj := kind.NewObject()
		if err := json.Unmarshal(item, obj); err != nil {
			return nil, 0, fmt.Errorf("decode %s item %d: %w", kind.Plural, i, err)
		}
		objs[i] = obj
	}
	return objs, raw.Metadata.ResourceVersion, nil
}

// Create creates obj in its project (default when empty).
func (c *Client) Create(ctx context.Context, obj api.Object) (api.Object, error) {
	kind, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	project := obj.GetMeta().Project
	if kind.Projects && project == "" {
		project = api.DefaultProject
	}
	out := kind.NewObject()
	if err := c.do(ctx, http.MethodPost, collectionPath(kind, project), nil, obj, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Update replaces obj's spec, labels and annotations if its resourceVersion
// is current (a Conflict error otherwise).
func (c *Client) Update(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.put(ctx, obj, "")
}

// UpdateStatus replaces obj's status if its resourceVersion is current.
func (c *Client) UpdateStatus(ctx context.Context, obj api.Object) (api.Object, error) {
	return c.put(ctx, obj, "/status")
}

func (c *Client) put(ctx context.Context, obj api.Object, suffix string) (api.Object, error) {
	kind, err := kindOf(obj)
	if err != nil {
		return nil, err
	}
	m := obj.GetMeta()
	out := kind.NewObject()
	if err := c.do(ctx, http.MethodPut, objectPath(kind, m.Project, m.Name)+suffix, nil, obj, out); err != nil {
		return nil, err
	}
	return out, nil
}

// Delete deletes one object; deleting a Project deletes everything in it.
func (c *Client) Delete(ctx context.Context, kind api.KindInfo, project, name string) error {
	return c.do(ctx, http.MethodDelete, objectPath(kind, project, name), nil, nil, nil)
}

// ApplyResult says what apply did to one object.
type ApplyResult struct {
	Kind    string
	Project string
	Name    string
	Result  string // created, configured, unchanged
	Object  api.Object
}

// Apply creates or updates objs in one call. The server validates all
// before writing any; results are in the order of objs.
func (c *Client) Apply(ctx context.Context, objs []api.Object, dryRun bool) ([]ApplyResult, error) {
	items := make([]json.RawMessage, len(objs))
	for i, o := range objs {
		b, err := applyItem(o)
		if err != nil {
			return nil, fmt.Errorf("items[%d]: %w", i, err)
		}
		items[i] = b
	}
	req := struct {
		Items  []json.RawMessage `json:"items"`
		DryRun bool              `json:"dryRun,omitempty"`
	}{items, dryRun}
	var resp struct {
		Results []struct {
			Kind    string          `json:"kind"`
			Project string          `json:"project"`
			Name    string          `json:"name"`
			Result  string          `json:"result"`
			Object  json.RawMessage `json:"object"`
		} `json:"results"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/apply", nil, req, &resp); err != nil {
		return nil, err
	}
	out := make([]ApplyResult, len(resp.Results))
	for i, r := range resp.Results {
		out[i] = ApplyResult{Kind: r.Kind, Project: r.Project, Name: r.Name, Result: r.Result}
		if k, ok := api.LookupKind(r.Kind); ok && len(r.Object) > 0 {
			obj := k.NewObject()
			if err := json.Unmarshal(r.Object, obj); err != nil {
				return nil, fmt.Errorf("decode apply result %d: %w", i, err)
			}
			out[i].Object = obj
		}
	}
	return out, nil
}

// applyItem encodes one object for apply. The server picks the type by
// kind, which a hand-built object may lack: it is added to the encoding,
// never to the caller's object.
func applyItem(o api.Object) (json.RawMessage, error) {
	k, err := kindOf(o)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	if tm := o.GetTypeMeta(); tm.Kind != "" && tm.APIVersion != "" {
		return b, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	if _, ok := m["kind"]; !ok {
		m["kind"], _ = json.Marshal(k.Kind)
	}
	if _, ok := m["apiVersion"]; !ok {
		m["apiVersion"], _ = json.Marshal(api.Version)
	}
	return json.Marshal(m)
}

// VersionInfo is what GET /version answers.
type VersionInfo struct {
	Version    string `json:"version"`
	Commit     string `json:"commit,omitempty"`
	APIVersion string `json:"apiVersion"`
	GoVersion  string `json:"goVersion"`
	// Generations are the `slipway up` processes serving the data dir:
	// during a hand-over, the new one and the one draining.
	Generations []Generation `json:"generations,omitempty"`
}

// Generation is one `slipway up` process: its number on the data dir,
// version, pid and state ("serving" or "draining").
type Generation struct {
	Number  int    `json:"number"`
	Version string `json:"version"`
	PID     int    `json:"pid"`
	State   string `json:"state"`
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	var v VersionInfo
	err := c.do(ctx, http.MethodGet, "/version", nil, nil, &v)
	return v, err
}

// Healthz returns nil when the server answers its liveness check.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil)
}

// Readyz returns nil when the server is ready to serve.
func (c *Client) Readyz(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

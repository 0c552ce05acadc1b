package apiserver

import (
	"net/http"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// ConsolePrefix is where the web console is served, on the API's address.
const ConsolePrefix = "/console/"

// Authorize is the one answer to "may this caller do this": every request
// to the API asks it, and so does the console (through GET
// /api/v1/whoami) to decide which buttons to offer. Today a role either
// reads or writes everything; the teams issue will add users, projects
// and verbs here, and nowhere else.
func Authorize(p registry.Principal, method, path string) error {
	if method == http.MethodGet || method == http.MethodHead || p.CanWrite() {
		return nil
	}
	return api.Errorf(api.ReasonForbidden, "token %q has role %q, which may only read: %s %s is not allowed", p.Name, p.Role, method, path)
}

// WhoAmI is the body of GET /api/v1/whoami: the caller and what it may do.
type WhoAmI struct {
	Name string `json:"name"`
	Role string `json:"role"`
	// Write: the caller may change objects (create, update, delete, and
	// the rollout verbs, which are updates).
	Write bool `json:"write"`
}

func (s *server) whoami(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r, http.MethodGet)
	}
	p := principalOf(r.Context())
	s.writeJSON(w, http.StatusOK, WhoAmI{Name: p.Name, Role: p.Role,
		Write: Authorize(p, http.MethodPut, "/api/v1") == nil})
	return nil
}

// isConsole reports whether a path belongs to the console, which
// authenticates its own way (a session cookie) and calls the API with the
// session's token, so the API's checks apply to everything it does.
func (s *server) isConsole(path string) bool {
	return s.opts.Console != nil && (path == strings.TrimSuffix(ConsolePrefix, "/") || strings.HasPrefix(path, ConsolePrefix))
}

// Package archtest holds the import rules of ARCHITECTURE.md: data flows one
// way and every import arrow points toward api.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

const mod = "slipway.dev/slipway/"

// forbidden lists, per package prefix, the project packages it must not
// depend on, directly or not.
var forbidden = map[string][]string{
	"internal/api":           {"internal/"}, // stdlib only (checked below with an exception for itself)
	"internal/store":         {"internal/registry", "internal/apiserver", "internal/controller", "internal/server", "internal/cli", "internal/client"},
	"internal/registry":      {"internal/apiserver", "internal/controller", "internal/server", "internal/cli", "internal/client", "internal/runtime", "internal/router"},
	"internal/apiserver":     {"internal/controller", "internal/server", "internal/cli", "internal/client", "internal/runtime", "internal/router", "internal/node"},
	"internal/client":        {"internal/registry", "internal/store", "internal/apiserver", "internal/controller", "internal/server", "internal/cli"},
	"internal/controller":    {"internal/apiserver", "internal/runtime", "internal/router", "internal/server", "internal/cli", "internal/client"},
	"internal/deploy":        {"internal/apiserver", "internal/runtime", "internal/router", "internal/proxy", "internal/server", "internal/cli", "internal/client", "internal/node"},
	"internal/build":         {"internal/apiserver", "internal/runtime", "internal/router", "internal/proxy", "internal/server", "internal/cli", "internal/client", "internal/node"},
	"internal/build/archive": {"internal/"}, // stdlib only: it checks untrusted uploads
	"internal/hooks":         {"internal/apiserver", "internal/runtime", "internal/router", "internal/proxy", "internal/server", "internal/cli", "internal/client", "internal/node"},
	"internal/replication":   {"internal/apiserver", "internal/runtime", "internal/router", "internal/proxy", "internal/server", "internal/cli", "internal/client", "internal/node"},
	"internal/services":      {"internal/apiserver", "internal/runtime", "internal/router", "internal/proxy", "internal/server", "internal/cli", "internal/client", "internal/node"},
	"internal/runtime":       {"internal/controller", "internal/registry", "internal/apiserver", "internal/router", "internal/server", "internal/cli"},
	"internal/router":        {"internal/"}, // stdlib only: the hot path knows nothing of the store
	"internal/proxy":         {"internal/"}, // stdlib only, like the router
	"internal/drain":         {"internal/"}, // stdlib only: a leaf both data paths embed
	"internal/cli":           {"internal/registry", "internal/store", "internal/apiserver", "internal/controller"},
	"internal/manifest":      {"internal/registry", "internal/store", "internal/apiserver", "internal/controller", "internal/server", "internal/cli", "internal/client"},
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}} |{{range .Imports}} {{.}}{{end}}`, "slipway.dev/slipway/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		all, direct, _ := strings.Cut(line, " |")
		fields := strings.Fields(all)
		pkg := strings.TrimPrefix(fields[0], mod)
		deps := fields[1:]
		// The CLI runs the platform (`up`) through server, which imports
		// everything; what the CLI itself may import is checked directly.
		if pkg == "internal/cli" {
			deps = strings.Fields(direct)
		}
		for prefix, bad := range forbidden {
			if pkg != prefix && !strings.HasPrefix(pkg, prefix+"/") {
				continue
			}
			checked++
			for _, dep := range deps {
				if !strings.HasPrefix(dep, mod) {
					continue
				}
				d := strings.TrimPrefix(dep, mod)
				if (prefix == "internal/api" && d == "internal/api") || (prefix == "internal/proxy" && d == "internal/proxy") || (prefix == "internal/drain" && d == "internal/drain") {
					continue
				}
				// The router's engines (internal/router/std, .../fast) take
				// its core and each other, nothing else of the project.
				if prefix == "internal/router" && (d == "internal/router" || strings.HasPrefix(d, "internal/router/")) {
					continue
				}
				// The clock and the histogram are leaves (standard library
				// only) that every package may take; so is the drain
				// primitive, for the router and the proxy.
				if d == "internal/clock" || d == "internal/histogram" {
					continue
				}
				if d == "internal/drain" && (prefix == "internal/router" || prefix == "internal/proxy") {
					continue
				}
				for _, b := range bad {
					if d == b || strings.HasPrefix(d, b+"/") || (strings.HasSuffix(b, "/") && strings.HasPrefix(d, b)) {
						if prefix == "internal/store" && strings.HasPrefix(d, "internal/store") {
							continue
						}
						t.Errorf("%s depends on %s: ARCHITECTURE.md forbids it", pkg, d)
					}
				}
			}
		}
	}
	if checked < 5 {
		t.Fatalf("only %d packages matched the rules; the module layout changed and this test no longer holds anything", checked)
	}
}

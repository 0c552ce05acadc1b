// Package archtest holds the import rules of ARCHITECTURE.md: data flows one
// way and every import arrow points toward api. It reads what the non-test
// files of each package of the module import (`go list`).
package archtest

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "slipway.dev/slipway/"

// rule is what one package may import: ARCHITECTURE.md's "may import"
// column for it.
type rule struct {
	// imports are the project packages it may import directly.
	imports []string
	// modules are the third-party modules it may import (none when empty).
	modules []string
	// leaf: it claims the standard library only (but for imports, which are
	// leaves themselves), so everything it depends on is held too, not
	// only its own imports.
	leaf bool
	// everything: the composition root, which imports the whole platform.
	everything bool
}

// Third-party modules, as the table names them.
const (
	bbolt      = "go.etcd.io/bbolt"
	etcdAPI    = "go.etcd.io/etcd/api/v3"
	etcdClient = "go.etcd.io/etcd/client/v3"
	zap        = "go.uber.org/zap"
	grpc       = "google.golang.org/grpc"
	cobra      = "github.com/spf13/cobra"
	errdefs    = "github.com/containerd/errdefs"
	goCmp      = "github.com/google/go-cmp"
	mobyAPI    = "github.com/moby/moby/api"
	mobyClient = "github.com/moby/moby/client"
	prometheus = "github.com/prometheus/client_golang"
	pty        = "github.com/creack/pty"
	xSync      = "golang.org/x/sync"
	xTerm      = "golang.org/x/term"
	xSys       = "golang.org/x/sys"
	yaml       = "go.yaml.in/yaml/v3"
)

// rules holds one entry per package of the module, in the order of
// ARCHITECTURE.md's table. A package without an entry fails the test: a new
// package gets a row in the table and a rule here.
var rules = map[string]rule{
	"cmd/slipway":                         {imports: []string{"internal/cli"}},
	"internal/api":                        {leaf: true},
	"internal/api/validation":             {imports: []string{"internal/api"}, leaf: true},
	"internal/api/apitest":                {imports: []string{"internal/api"}, leaf: true},
	"internal/manifest":                   {imports: []string{"internal/api", "internal/api/validation"}, modules: []string{yaml}},
	"internal/store":                      {leaf: true},
	"internal/store/bolt":                 {imports: []string{"internal/store"}, modules: []string{bbolt}},
	"internal/store/etcd":                 {imports: []string{"internal/store"}, modules: []string{etcdAPI, etcdClient, grpc, zap}},
	"internal/store/etcd/etcdtest":        {leaf: true},
	"internal/store/storetest":            {imports: []string{"internal/store"}, modules: []string{goCmp}},
	"internal/registry":                   {imports: []string{"internal/api", "internal/api/validation", "internal/store"}, modules: []string{xSync}},
	"internal/apiserver":                  {imports: []string{"internal/api", "internal/api/validation", "internal/registry", "internal/stream"}},
	"internal/stream":                     {leaf: true},
	"internal/client":                     {imports: []string{"internal/api", "internal/stream"}},
	"internal/controller":                 {imports: []string{"internal/api", "internal/clock", "internal/registry"}},
	"internal/events":                     {imports: []string{"internal/api", "internal/clock", "internal/registry"}},
	"internal/clock":                      {leaf: true},
	"internal/histogram":                  {leaf: true},
	"internal/deploy":                     {imports: []string{"internal/api", "internal/controller", "internal/events", "internal/histogram", "internal/registry"}},
	"internal/autoscale":                  {imports: []string{"internal/api", "internal/clock", "internal/controller", "internal/events", "internal/registry"}},
	"internal/template":                   {imports: []string{"internal/api"}},
	"internal/hooks":                      {imports: []string{"internal/api", "internal/clock", "internal/events", "internal/registry"}},
	"internal/replication":                {imports: []string{"internal/api", "internal/controller", "internal/events", "internal/registry"}},
	"internal/services":                   {imports: []string{"internal/api", "internal/clock", "internal/controller", "internal/registry"}},
	"internal/build":                      {imports: []string{"internal/api", "internal/clock", "internal/controller", "internal/events", "internal/registry", "internal/build/archive"}, modules: []string{mobyAPI, mobyClient}},
	"internal/build/archive":              {leaf: true},
	"internal/node":                       {imports: []string{"internal/api", "internal/clock", "internal/controller", "internal/events", "internal/registry", "internal/runtime"}},
	"internal/drain":                      {leaf: true},
	"internal/handover":                   {modules: []string{xSys}},
	"internal/proxy":                      {imports: []string{"internal/drain"}, leaf: true},
	"internal/router":                     {imports: []string{"internal/drain", "internal/histogram"}, leaf: true},
	"internal/router/std":                 {imports: []string{"internal/router"}, leaf: true},
	"internal/router/fast":                {imports: []string{"internal/router", "internal/router/std"}, leaf: true},
	"internal/dataplane":                  {imports: []string{"internal/api", "internal/proxy", "internal/router", "internal/registry"}},
	"internal/telemetry":                  {imports: []string{"internal/router"}, modules: []string{prometheus}},
	"internal/console":                    {imports: []string{"internal/api", "internal/cli/view", "internal/client", "internal/telemetry"}},
	"internal/runtime":                    {leaf: true},
	"internal/runtime/process":            {imports: []string{"internal/clock", "internal/runtime"}, modules: []string{pty, xSys}},
	"internal/runtime/docker":             {imports: []string{"internal/runtime"}, modules: []string{mobyAPI, mobyClient, errdefs, xSys}},
	"internal/runtime/drivertest":         {imports: []string{"internal/runtime"}, modules: []string{goCmp}},
	"internal/runtime/drivertest/testapp": {leaf: true},
	"internal/cli":                        {imports: []string{"internal/api", "internal/cli/apply", "internal/cli/build", "internal/cli/cmdutil", "internal/cli/get", "internal/cli/logs", "internal/cli/rollout", "internal/cli/set", "internal/cli/up", "internal/client"}, modules: []string{cobra, yaml}},
	"internal/cli/cmdutil":                {imports: []string{"internal/api", "internal/cli/view", "internal/client", "internal/manifest"}, modules: []string{cobra, yaml}},
	"internal/cli/apply":                  {imports: []string{"internal/api", "internal/cli/cmdutil", "internal/client", "internal/manifest"}, modules: []string{cobra, yaml}},
	"internal/cli/build":                  {imports: []string{"internal/api", "internal/build/archive", "internal/cli/cmdutil"}, modules: []string{cobra}},
	"internal/cli/get":                    {imports: []string{"internal/api", "internal/cli/cmdutil", "internal/cli/jsonpath", "internal/cli/view"}, modules: []string{cobra}},
	"internal/cli/logs":                   {imports: []string{"internal/api", "internal/cli/cmdutil", "internal/cli/view", "internal/client"}, modules: []string{cobra}},
	"internal/cli/rollout":                {imports: []string{"internal/api", "internal/cli/cmdutil", "internal/cli/view"}, modules: []string{cobra}},
	"internal/cli/set":                    {imports: []string{"internal/api", "internal/api/validation", "internal/cli/cmdutil", "internal/clock"}, modules: []string{cobra}},
	"internal/cli/up":                     {imports: []string{"internal/cli/cmdutil", "internal/server"}, modules: []string{cobra, yaml}},
	"internal/cli/clitest":                {imports: []string{"internal/api", "internal/apiserver", "internal/cli/cmdutil", "internal/registry", "internal/store/bolt"}, modules: []string{cobra}},
	"internal/cli/view":                   {imports: []string{"internal/api", "internal/cli/jsonpath", "internal/manifest"}},
	"internal/cli/jsonpath":               {leaf: true},
	"internal/server":                     {everything: true},
	// Outside the table (see its Import rules).
	"internal/archtest":     {},
	"test/e2e":              {},
	"examples/hello":        {leaf: true},
	"bench/router/benchsrv": {imports: []string{"internal/router", "internal/router/fast", "internal/router/std"}},
}

// pkg is one package as go list reports it.
type pkg struct {
	path, module  string
	standard      bool
	imports, deps []string
}

// listPackages returns the module's packages and everything they depend
// on, by import path.
func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f",
		`{{.ImportPath}}|{{.Standard}}|{{with .Module}}{{.Path}}{{end}}|{{join .Imports " "}}|{{join .Deps " "}}`,
		mod+"...").Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list: %v\n%s", err, msg)
	}
	pkgs := map[string]pkg{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 5 {
			t.Fatalf("go list: unexpected line %q", line)
		}
		pkgs[f[0]] = pkg{path: f[0], standard: f[1] == "true", module: f[2], imports: strings.Fields(f[3]), deps: strings.Fields(f[4])}
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	var problems []string
	seen := map[string]bool{}
	for path, p := range pkgs {
		name, ours := strings.CutPrefix(path, mod)
		if !ours {
			continue
		}
		seen[name] = true
		r, ok := rules[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s has no rule: give it a row in ARCHITECTURE.md's table and an entry in archtest's rules", name))
			continue
		}
		if r.everything {
			continue
		}
		problems = append(problems, r.check(name, "imports", p.imports, pkgs)...)
		if r.leaf {
			// What it reaches through a project package it may import is
			// that package's rule to hold (a leaf's imports are leaves).
			through := map[string]bool{}
			for _, imp := range p.imports {
				if strings.HasPrefix(imp, mod) && slices.Contains(r.imports, strings.TrimPrefix(imp, mod)) {
					for _, d := range pkgs[imp].deps {
						through[d] = true
					}
				}
			}
			indirect := slices.DeleteFunc(slices.Clone(p.deps), func(d string) bool { return slices.Contains(p.imports, d) || through[d] })
			problems = append(problems, r.check(name, "depends on", indirect, pkgs)...)
		}
	}
	for name := range rules {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("archtest has a rule for %s, which is no package of the module: remove it (and its row in ARCHITECTURE.md)", name))
		}
	}
	if len(seen) < 20 {
		t.Fatalf("go list found only %d packages of %s: the module layout changed and this test no longer holds anything", len(seen), mod)
	}
	slices.Sort(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// check returns a problem for each of paths (what name imports, or depends
// on) that r does not allow.
func (r rule) check(name, verb string, paths []string, pkgs map[string]pkg) []string {
	var problems []string
	for _, path := range paths {
		p, ok := pkgs[path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s %s %s, which go list did not report", name, verb, path))
		case p.standard:
		case strings.HasPrefix(path, mod):
			if d := strings.TrimPrefix(path, mod); !slices.Contains(r.imports, d) {
				problems = append(problems, fmt.Sprintf("%s %s %s: ARCHITECTURE.md allows it %s", name, verb, d, r.allowed()))
			}
		case !slices.Contains(r.modules, p.module):
			problems = append(problems, fmt.Sprintf("%s %s %s (module %s): ARCHITECTURE.md allows it %s", name, verb, path, p.module, r.allowed()))
		}
	}
	return problems
}

// allowed says what r allows, for a failure message.
func (r rule) allowed() string {
	all := append(slices.Clone(r.imports), r.modules...)
	if len(all) == 0 {
		return "the standard library only"
	}
	return "the standard library and " + strings.Join(all, ", ") + " only"
}

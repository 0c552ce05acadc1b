// Package get holds the verbs that read and watch objects: get, describe,
// events and wait.
package get

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
)

// getTarget is one kind get lists, with the names asked for.
type getTarget struct {
	info  api.KindInfo
	names []string
}

// parseGetTargets reads get's arguments: KIND [NAME...], KIND/NAME...,
// KIND,KIND [NAME...] and all.
func parseGetTargets(args []string) ([]getTarget, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("must name a kind: one of %s, or all", view.KindList())
	}
	if strings.Contains(args[0], "/") {
		var out []getTarget
		for _, a := range args {
			info, names, err := cmdutil.ParseTarget([]string{a})
			if err != nil {
				return nil, err
			}
			if !strings.Contains(a, "/") {
				return nil, fmt.Errorf("%q: after KIND/NAME, name every object as KIND/NAME", a)
			}
			out = append(out, getTarget{info, names})
		}
		return out, nil
	}
	kinds, err := view.ParseKinds(args[0])
	if err != nil {
		return nil, err
	}
	out := make([]getTarget, len(kinds))
	for i, k := range kinds {
		out[i] = getTarget{k, args[1:]}
	}
	return out, nil
}

// NewGetCmd is `get`.
func NewGetCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var output, selector, sortKey string
	var watch, allProjects, noHeaders, showLabels bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...] | KIND/NAME... | KIND,KIND... | all",
		Short: "List objects or show one",
		Long: `Get lists the objects of a kind in the project, or the named ones. Several
kinds separated by commas (svc,routes) are listed one table each; "all"
lists apps, revisions, pods, services and routes.

Kinds, each with the other names it goes by:
` + view.KindHelp() + `
Output (-o): table, wide, json and yaml (one object as itself, several as
a List, so "get KIND NAME -o yaml > x.yaml" can be edited and applied
again), name (KIND/NAME), jsonpath=TEMPLATE (kubectl's JSONPath: fields,
[n], [*], [a:b], [?(@.f=="v")] filters, {range}...{end}, quoted literals;
not .. or unions) and custom-columns=HEADER:PATH,.... --sort-by takes a
path of the same kind (.metadata.creationTimestamp).
Secret values are never printed: -o yaml and -o json show their sizes only.`,
		Example: `  slipway get apps
  slipway get app/hello -o yaml
  slipway get pods -l app=hello -w
  slipway get svc,routes
  slipway get all --show-labels
  slipway get pods --sort-by=.metadata.creationTimestamp
  slipway get apps -o jsonpath='{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}'
  slipway get pods -o custom-columns=NAME:.metadata.name,IP:.status.podIP
  slipway get routes -A`,
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, true),
		RunE: func(cmd *cobra.Command, args []string) (err error) {
			defer func() {
				if watch && errors.Is(err, context.Canceled) && cmd.Context().Err() != nil {
					err = nil // Ctrl-C, the usual end of a watch, exits 0
				}
			}()
			targets, err := parseGetTargets(args)
			if err != nil {
				return err
			}
			format, tmpl, cols, err := view.ParseOutput(output)
			if err != nil {
				return err
			}
			if watch && len(targets) > 1 {
				return errors.New("-w watches one kind at a time")
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p := &view.Printer{W: e.Stdout, Format: format, Tmpl: tmpl, Cols: cols, WithProject: allProjects,
				NoHeader: noHeaders, ShowLabels: showLabels, KindPrefix: len(targets) > 1 || args[0] == "all"}
			var lists [][]api.Object
			var total int
			var rv int64
			for _, t := range targets {
				project := cn.Project
				if allProjects || !t.info.Projects {
					project = ""
				}
				var objs []api.Object
				if len(t.names) > 0 {
					for _, n := range t.names {
						o, err := cn.Client.Get(ctx, t.info, project, n)
						if api.IsNotFound(err) && project != "" {
							if perr := projectExists(ctx, cn, project); perr != nil {
								return perr
							}
						}
						if err != nil {
							return err
						}
						objs = append(objs, o)
					}
				} else {
					objs, rv, err = cn.Client.List(ctx, t.info, project, selector)
					if err != nil {
						return err
					}
					if len(objs) == 0 && project != "" {
						if err := projectExists(ctx, cn, project); err != nil {
							return err
						}
					}
				}
				view.SortObjects(objs)
				if sortKey != "" {
					if err := view.SortBy(objs, sortKey); err != nil {
						return err
					}
				}
				lists = append(lists, objs)
				total += len(objs)
			}
			single := len(targets) == 1 && len(targets[0].names) == 1 && !watch
			table := format == "" || format == "table" || format == "wide"
			if total == 0 && !watch && (table || format == "custom-columns") {
				where := fmt.Sprintf(" in project %q", cn.Project)
				if allProjects || !targets[0].info.Projects {
					where = ""
				}
				what := targets[0].info.Plural
				if len(targets) > 1 {
					what = "resources"
				}
				fmt.Fprintf(e.Stderr, "No %s found%s.\n", what, where)
				return nil
			}
			if table && len(targets) > 1 {
				first := true
				for _, objs := range lists {
					if len(objs) == 0 {
						continue
					}
					if !first {
						fmt.Fprintln(e.Stdout)
					}
					first = false
					p.NewColumns() // each kind its own columns
					if err := p.Print(objs, false); err != nil {
						return err
					}
				}
				return nil
			}
			if err := p.Print(slices.Concat(lists...), single); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			info, names := targets[0].info, targets[0].names
			project := cn.Project
			if allProjects || !info.Projects {
				project = ""
			}
			if len(names) > 0 {
				_, rv, err = cn.Client.List(ctx, info, project, selector)
				if err != nil {
					return err
				}
			}
			events, err := cn.Client.Watch(ctx, info, project, rv, selector)
			if err != nil {
				return err
			}
			p.NoHeader = p.NoHeader || total > 0
			for ev := range events {
				if ev.Err != nil {
					return ev.Err
				}
				if len(names) > 0 && !slices.Contains(names, ev.Object.GetMeta().Name) {
					continue
				}
				if err := p.Print([]api.Object{ev.Object}, true); err != nil {
					return err
				}
				p.NoHeader = true
			}
			return nil // Ctrl-C, the usual end of a watch, exits 0
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "output format: "+view.OutputHelp)
	f.StringVarP(&selector, "selector", "l", "", "label selector, e.g. app=hello,tier!=db, env in (prod,staging), !canary")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, watch for changes and print them")
	f.BoolVarP(&allProjects, "all-projects", "A", false, "list objects of every project")
	f.BoolVar(&noHeaders, "no-headers", false, "omit the table header")
	f.BoolVar(&showLabels, "show-labels", false, "add a LABELS column to the table")
	f.StringVar(&sortKey, "sort-by", "", "sort by the value of a JSONPath, e.g. .metadata.creationTimestamp or {.spec.replicas}")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{"table", "wide", "json", "yaml", "name", "jsonpath=", "custom-columns="}, cobra.ShellCompDirectiveNoSpace))
	return cmd
}

// projectExists says a project that is not there does not exist, rather
// than letting a listing of it read as empty. A token that may not read
// projects learns nothing new: the answer is left to the listing.
func projectExists(ctx context.Context, cn *cmdutil.Conn, project string) error {
	_, err := cn.Client.Get(ctx, cmdutil.ProjectKind, "", project)
	if api.IsNotFound(err) {
		return fmt.Errorf("project %q does not exist (slipway get projects lists them)", project)
	}
	return nil
}

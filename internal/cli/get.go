package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/jsonpath"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/manifest"
)

// parseTarget reads the kubectl forms `KIND`, `KIND NAME...` and `KIND/NAME`.
func parseTarget(args []string) (api.KindInfo, []string, error) {
	if len(args) == 0 {
		return api.KindInfo{}, nil, fmt.Errorf("must name a kind: one of %s", kindList())
	}
	kindArg, names := args[0], args[1:]
	if k, n, ok := strings.Cut(kindArg, "/"); ok {
		if len(names) > 0 {
			return api.KindInfo{}, nil, fmt.Errorf("there is no need to name a kind again after %q: use KIND/NAME or KIND NAME", kindArg)
		}
		if n == "" {
			return api.KindInfo{}, nil, fmt.Errorf("%q: missing name after the slash", kindArg)
		}
		kindArg, names = k, []string{n}
	}
	info, err := lookupKind(kindArg)
	if err != nil {
		return api.KindInfo{}, nil, err
	}
	return info, names, nil
}

func kindList() string {
	var names []string
	for _, k := range api.Kinds {
		names = append(names, k.Plural)
	}
	return strings.Join(names, ", ")
}

// kindHelp lists every kind with every spelling the commands take.
func kindHelp() string {
	var b strings.Builder
	for _, k := range api.Kinds {
		var other []string
		if s := strings.ToLower(k.Kind); s != k.Plural {
			other = append(other, s)
		}
		fmt.Fprintf(&b, "  %-13s %s\n", k.Plural, strings.Join(append(other, k.Short...), ", "))
	}
	return b.String()
}

// getTarget is one kind get lists, with the names asked for.
type getTarget struct {
	info  api.KindInfo
	names []string
}

// parseGetTargets reads get's arguments: KIND [NAME...], KIND/NAME...,
// KIND,KIND [NAME...] and all.
func parseGetTargets(args []string) ([]getTarget, error) {
	if len(args) == 0 {
		return nil, fmt.Errorf("must name a kind: one of %s, or all", kindList())
	}
	if strings.Contains(args[0], "/") {
		var out []getTarget
		for _, a := range args {
			info, names, err := parseTarget([]string{a})
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
	kinds, err := parseKinds(args[0])
	if err != nil {
		return nil, err
	}
	out := make([]getTarget, len(kinds))
	for i, k := range kinds {
		out[i] = getTarget{k, args[1:]}
	}
	return out, nil
}

func newGetCmd(e *env, g *globals) *cobra.Command {
	var output, selector, sortKey string
	var watch, allProjects, noHeaders, showLabels bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...] | KIND/NAME... | KIND,KIND... | all",
		Short: "List objects or show one",
		Long: `Get lists the objects of a kind in the project, or the named ones. Several
kinds separated by commas (svc,routes) are listed one table each; "all"
lists apps, revisions, pods, services and routes.

Kinds, each with the other names it goes by:
` + kindHelp() + `
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
		ValidArgsFunction: completeGet(e, g),
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
			format, tmpl, cols, err := parseOutput(output)
			if err != nil {
				return err
			}
			if watch && len(targets) > 1 {
				return errors.New("-w watches one kind at a time")
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p := &printer{w: e.stdout, format: format, tmpl: tmpl, cols: cols, withProject: allProjects,
				noHeader: noHeaders, showLabels: showLabels, kindPrefix: len(targets) > 1 || args[0] == "all"}
			var lists [][]api.Object
			var total int
			var rv int64
			for _, t := range targets {
				project := cn.project
				if allProjects || !t.info.Projects {
					project = ""
				}
				var objs []api.Object
				if len(t.names) > 0 {
					for _, n := range t.names {
						o, err := cn.c.Get(ctx, t.info, project, n)
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
					objs, rv, err = cn.c.List(ctx, t.info, project, selector)
					if err != nil {
						return err
					}
					if len(objs) == 0 && project != "" {
						if err := projectExists(ctx, cn, project); err != nil {
							return err
						}
					}
				}
				sortObjects(objs)
				if sortKey != "" {
					if err := sortBy(objs, sortKey); err != nil {
						return err
					}
				}
				lists = append(lists, objs)
				total += len(objs)
			}
			single := len(targets) == 1 && len(targets[0].names) == 1 && !watch
			table := format == "" || format == "table" || format == "wide"
			if total == 0 && !watch && (table || format == "custom-columns") {
				where := fmt.Sprintf(" in project %q", cn.project)
				if allProjects || !targets[0].info.Projects {
					where = ""
				}
				what := targets[0].info.Plural
				if len(targets) > 1 {
					what = "resources"
				}
				fmt.Fprintf(e.stderr, "No %s found%s.\n", what, where)
				return nil
			}
			if table && len(targets) > 1 {
				first := true
				for _, objs := range lists {
					if len(objs) == 0 {
						continue
					}
					if !first {
						fmt.Fprintln(e.stdout)
					}
					first = false
					p.al = view.Aligner{} // each kind its own columns
					if err := p.print(objs, false); err != nil {
						return err
					}
				}
				return nil
			}
			if err := p.print(slices.Concat(lists...), single); err != nil {
				return err
			}
			if !watch {
				return nil
			}
			info, names := targets[0].info, targets[0].names
			project := cn.project
			if allProjects || !info.Projects {
				project = ""
			}
			if len(names) > 0 {
				_, rv, err = cn.c.List(ctx, info, project, selector)
				if err != nil {
					return err
				}
			}
			events, err := cn.c.Watch(ctx, info, project, rv, selector)
			if err != nil {
				return err
			}
			p.noHeader = p.noHeader || total > 0
			for ev := range events {
				if ev.Err != nil {
					return ev.Err
				}
				if len(names) > 0 && !slices.Contains(names, ev.Object.GetMeta().Name) {
					continue
				}
				if err := p.print([]api.Object{ev.Object}, true); err != nil {
					return err
				}
				p.noHeader = true
			}
			return nil // Ctrl-C, the usual end of a watch, exits 0
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "output format: "+outputHelp)
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
func projectExists(ctx context.Context, cn *conn, project string) error {
	_, err := cn.c.Get(ctx, projectKind, "", project)
	if api.IsNotFound(err) {
		return fmt.Errorf("project %q does not exist (slipway get projects lists them)", project)
	}
	return nil
}

func sortObjects(objs []api.Object) {
	sort.SliceStable(objs, func(i, j int) bool {
		a, b := objs[i].GetMeta(), objs[j].GetMeta()
		if ea, ok := objs[i].(*api.Event); ok {
			if eb, ok := objs[j].(*api.Event); ok && !ea.LastTimestamp.Equal(eb.LastTimestamp) {
				return ea.LastTimestamp.Before(eb.LastTimestamp)
			}
		}
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		return a.Name < b.Name
	})
}

// printer renders objects in one of get's output formats. Secrets are
// always redacted.
type printer struct {
	w           io.Writer
	format      string
	tmpl        *jsonpath.Template // -o jsonpath=
	cols        []column           // -o custom-columns=
	withProject bool
	noHeader    bool
	showLabels  bool
	kindPrefix  bool
	al          view.Aligner // a watch's rows stay under the header's columns
	printed     int          // documents written, for a watch's --- separators
	now         time.Time    // AGE is counted to it; the zero time is the clock's now
}

func (p *printer) print(objs []api.Object, single bool) error {
	red := make([]api.Object, len(objs))
	for i, o := range objs {
		red[i] = manifest.RedactSecrets(o)
	}
	switch p.format {
	case "", "table", "wide":
		return p.al.Print(p.w, red, view.TableOptions{Wide: p.format == "wide", WithProject: p.withProject, NoHeader: p.noHeader,
			ShowLabels: p.showLabels, KindPrefix: p.kindPrefix}, cmp.Or(p.now, time.Now()))
	case "custom-columns":
		h, rows, err := customRows(red, p.cols)
		if err != nil {
			return err
		}
		if p.noHeader {
			h = nil
		}
		return p.al.Rows(p.w, h, rows)
	case "name":
		for _, o := range red {
			fmt.Fprintf(p.w, "%s/%s\n", strings.ToLower(o.GetTypeMeta().Kind), o.GetMeta().Name)
		}
		return nil
	case "jsonpath":
		g, err := generic(listOrObject(red, single))
		if err != nil {
			return err
		}
		return p.tmpl.Execute(p.w, g)
	case "json":
		enc := json.NewEncoder(p.w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		return enc.Encode(listOrObject(red, single))
	case "yaml":
		var b []byte
		var err error
		if single {
			b, err = manifest.EncodeYAML(red[0]) // the object as itself: apply -f takes it back
		} else {
			b, err = manifest.EncodeYAMLList(red)
		}
		if err != nil {
			return err
		}
		if p.printed > 0 {
			io.WriteString(p.w, "---\n") // a watch's next document
		}
		p.printed++
		_, err = p.w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", p.format)
}

// listOrObject is what json and jsonpath see: the object itself when one
// was asked for, else a List of them.
func listOrObject(objs []api.Object, single bool) any {
	if single && len(objs) == 1 {
		return objs[0]
	}
	return map[string]any{"apiVersion": api.Version, "kind": "List", "items": objs}
}

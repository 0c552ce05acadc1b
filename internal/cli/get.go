package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
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
	info, ok := api.LookupKind(kindArg)
	if !ok {
		return api.KindInfo{}, nil, fmt.Errorf("unknown kind %q: use one of %s", kindArg, kindList())
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

func newGetCmd(e *env, g *globals) *cobra.Command {
	var output, selector string
	var watch, allProjects, noHeaders bool
	cmd := &cobra.Command{
		Use:   "get KIND [NAME...] | KIND/NAME",
		Short: "List objects or show one",
		Long: `Get lists the objects of a kind in the project, or the named ones.

Kinds: ` + kindList() + ` (singular and short forms work too: app, svc, rt, po, rev, ev).
Secret values are never printed: -o yaml and -o json show their sizes only.`,
		Example: `  slipway get apps
  slipway get app/hello -o yaml
  slipway get pods -l app=hello -w
  slipway get routes -A`,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, names, err := parseTarget(args)
			if err != nil {
				return err
			}
			switch output {
			case "", "table", "wide", "json", "yaml", "name":
			default:
				return fmt.Errorf("unsupported output format %q: use table, wide, json, yaml or name", output)
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			project := cn.project
			if allProjects || !info.Projects {
				project = ""
			}
			ctx := cmd.Context()
			var objs []api.Object
			var rv int64
			if len(names) > 0 {
				for _, n := range names {
					o, err := cn.c.Get(ctx, info, project, n)
					if err != nil {
						return err
					}
					objs = append(objs, o)
				}
			} else {
				objs, rv, err = cn.c.List(ctx, info, project, selector)
				if err != nil {
					return err
				}
			}
			sortObjects(objs)
			p := printer{w: e.stdout, format: output, withProject: allProjects && info.Projects, noHeader: noHeaders}
			single := len(names) == 1 && !watch
			if len(objs) == 0 && !watch && (output == "" || output == "table" || output == "wide") {
				where := fmt.Sprintf(" in project %q", cn.project)
				if project == "" {
					where = ""
				}
				fmt.Fprintf(e.stderr, "No %s found%s.\n", info.Plural, where)
				return nil
			}
			if err := p.print(objs, single); err != nil {
				return err
			}
			if !watch {
				return nil
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
			p.noHeader = p.noHeader || len(objs) > 0
			for ev := range events {
				if ev.Err != nil {
					return ev.Err
				}
				if len(names) > 0 && !slices.Contains(names, ev.Object.GetMeta().Name) {
					continue
				}
				if err := p.print([]api.Object{ev.Object}, false); err != nil {
					return err
				}
				p.noHeader = true
			}
			return nil // Ctrl-C, the usual end of a watch, exits 0
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "", "output format: table (default), wide, json, yaml or name")
	f.StringVarP(&selector, "selector", "l", "", "label selector, e.g. app=hello,tier!=db")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, watch for changes and print them")
	f.BoolVarP(&allProjects, "all-projects", "A", false, "list objects of every project")
	f.BoolVar(&noHeaders, "no-headers", false, "omit the table header")
	return cmd
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
	withProject bool
	noHeader    bool
	al          view.Aligner // a watch's rows stay under the header's columns
}

func (p *printer) print(objs []api.Object, single bool) error {
	red := make([]api.Object, len(objs))
	for i, o := range objs {
		red[i] = manifest.RedactSecrets(o)
	}
	switch p.format {
	case "", "table", "wide":
		return p.al.Print(p.w, red, view.TableOptions{Wide: p.format == "wide", WithProject: p.withProject, NoHeader: p.noHeader}, time.Now())
	case "name":
		for _, o := range red {
			fmt.Fprintf(p.w, "%s/%s\n", strings.ToLower(o.GetTypeMeta().Kind), o.GetMeta().Name)
		}
		return nil
	case "json":
		var v any = red
		if single {
			v = red[0]
		} else {
			v = map[string]any{"apiVersion": api.Version, "kind": "List", "items": red}
		}
		enc := json.NewEncoder(p.w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		return enc.Encode(v)
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
		_, err = p.w.Write(b)
		return err
	}
	return fmt.Errorf("unsupported output format %q", p.format)
}

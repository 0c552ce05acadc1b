package apply

import (
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// NewLabelCmd is label (annotations false) or annotate (true): kubectl's
// KEY=VALUE to set and KEY- to remove, on one object or on those a
// selector matches.
func NewLabelCmd(e *cmdutil.Env, g *cmdutil.Globals, annotations bool) *cobra.Command {
	verb, done, what := "label", "labeled", "labels"
	if annotations {
		verb, done, what = "annotate", "annotated", "annotations"
	}
	var overwrite bool
	var selector string
	cmd := &cobra.Command{
		Use:   verb + " KIND NAME|KIND/NAME|KIND -l SELECTOR KEY=VALUE... KEY-...",
		Short: "Set or remove the " + what + " of objects",
		Long: fmt.Sprintf(`%s sets KEY=VALUE and removes KEY- in the %s of an object (or of the
objects of a kind that -l matches), as kubectl %s does. Changing the value
of a key that is already set needs --overwrite. The write is
compare-and-swap: a concurrent change is re-read, never lost.`, strings.ToUpper(verb[:1])+verb[1:], what, verb),
		Example: fmt.Sprintf(`  slipway %[1]s app hello team=web
  slipway %[1]s app/hello team=payments --overwrite
  slipway %[1]s pods -l app=hello team-`, verb),
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			var target, changes []string
			for _, a := range args {
				if strings.Contains(a, "=") || strings.HasSuffix(a, "-") {
					changes = append(changes, a)
				} else if len(changes) > 0 {
					return fmt.Errorf("%q: name the objects before the %s to change", a, what)
				} else {
					target = append(target, a)
				}
			}
			if len(changes) == 0 {
				return fmt.Errorf("give at least one KEY=VALUE or KEY-: slipway %s KIND NAME KEY=VALUE", verb)
			}
			set, remove, err := parseKeyChanges(changes)
			if err != nil {
				return err
			}
			info, names, err := cmdutil.ParseTarget(target)
			if err != nil {
				return err
			}
			if (len(names) > 0) == (selector != "") {
				return fmt.Errorf("name the %s to %s, or give -l, not both", info.Plural, verb)
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			project := cn.ProjectOf(info)
			if selector != "" {
				if names, err = cmdutil.SelectedNames(ctx, cn, info, project, selector); err != nil {
					return err
				}
			}
			for _, n := range names {
				obj, err := cn.Client.Get(ctx, info, project, n)
				if err != nil {
					return err
				}
				changed := false
				_, err = cmdutil.UpdateObject(ctx, cn, info, obj, cmdutil.UpdateAttempts, func(o api.Object) (bool, error) {
					m := o.GetMeta()
					target := &m.Labels
					if annotations {
						target = &m.Annotations
					}
					before := maps.Clone(*target)
					for k, v := range set {
						if old, ok := (*target)[k]; ok && old != v && !overwrite {
							return false, fmt.Errorf("%s/%s already has %s %s=%s: give --overwrite to change it", strings.ToLower(info.Kind), n, what[:len(what)-1], k, old)
						}
						if *target == nil {
							*target = map[string]string{}
						}
						(*target)[k] = v
					}
					for _, k := range remove {
						delete(*target, k)
					}
					changed = !maps.Equal(before, *target)
					return changed, nil
				})
				if errors.Is(err, cmdutil.ErrKeptChanging) {
					return fmt.Errorf("%s/%s changed %d times while it was being %s: try again", strings.ToLower(info.Kind), n, cmdutil.UpdateAttempts, done)
				}
				if err != nil {
					return err
				}
				if changed {
					fmt.Fprintf(e.Stdout, "%s/%s %s\n", strings.ToLower(info.Kind), n, done)
				} else {
					fmt.Fprintf(e.Stdout, "%s/%s not %s (no change)\n", strings.ToLower(info.Kind), n, done)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "allow changing the value of a key that is already set")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "change the objects of the kind whose labels match, e.g. app=hello")
	return cmd
}

// parseKeyChanges reads KEY=VALUE (set) and KEY- (remove). Label keys and
// values follow Kubernetes' rules, which the server checks on the write;
// here only the shape is read.
func parseKeyChanges(changes []string) (map[string]string, []string, error) {
	set := map[string]string{}
	var remove []string
	for _, c := range changes {
		if k, v, ok := strings.Cut(c, "="); ok {
			if k == "" {
				return nil, nil, fmt.Errorf("%q: the key is empty", c)
			}
			if _, dup := set[k]; dup {
				return nil, nil, fmt.Errorf("%q: key %s given twice", c, k)
			}
			set[k] = v
			continue
		}
		k := strings.TrimSuffix(c, "-")
		if k == "" {
			return nil, nil, fmt.Errorf("%q: the key is empty", c)
		}
		if _, dup := set[k]; dup {
			return nil, nil, fmt.Errorf("%q: key %s is both set and removed", c, k)
		}
		remove = append(remove, k)
	}
	return set, remove, nil
}

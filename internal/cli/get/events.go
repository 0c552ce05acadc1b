package get

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
)

// NewEventsCmd is `events`.
func NewEventsCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var forArg, output string
	var watch, allProjects, noHeaders bool
	cmd := &cobra.Command{
		Use:   "events [--for KIND/NAME] [-w]",
		Short: "List the events of the project, oldest first, and follow them",
		Long: `Events lists what the controllers and the node recorded: the project's
events, oldest first (as kubectl events does), or those about one object
with --for. With -w it then prints each new or repeated event as it comes;
Ctrl-C ends it (exit 0).`,
		Example: `  slipway events
  slipway events --for app/hello -w
  slipway events -A -o wide`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			ctx := cmd.Context()
			defer func() {
				if watch && errors.Is(err, context.Canceled) && ctx.Err() != nil {
					err = nil // Ctrl-C, the usual end of a watch
				}
			}()
			var forKind, forName string
			if forArg != "" {
				info, names, err := cmdutil.ParseTarget([]string{forArg})
				if err != nil {
					return fmt.Errorf("--for: %w", err)
				}
				if !strings.Contains(forArg, "/") || len(names) != 1 {
					return fmt.Errorf("--for %q: must be KIND/NAME, e.g. app/hello", forArg)
				}
				forKind, forName = info.Kind, names[0]
			}
			format, tmpl, cols, err := view.ParseOutput(output)
			if err != nil {
				return err
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			project := cn.Project
			if allProjects {
				project = ""
			}
			about := func(o api.Object) bool {
				ev := o.(*api.Event)
				return forKind == "" || ev.InvolvedObject.Kind == forKind && ev.InvolvedObject.Name == forName
			}
			objs, rv, err := cn.Client.List(ctx, cmdutil.EventKind, project, "")
			if err != nil {
				return err
			}
			if len(objs) == 0 && project != "" {
				if err := projectExists(ctx, cn, project); err != nil {
					return err
				}
			}
			var shown []api.Object
			for _, o := range objs {
				if about(o) {
					shown = append(shown, o)
				}
			}
			view.SortObjects(shown)
			p := &view.Printer{W: e.Stdout, Format: format, Tmpl: tmpl, Cols: cols, WithProject: allProjects, NoHeader: noHeaders}
			if len(shown) == 0 && !watch {
				where := ""
				if project != "" {
					where = fmt.Sprintf(" in project %q", project)
				}
				if forKind != "" {
					where = " about " + forArg + where
				}
				fmt.Fprintf(e.Stderr, "No events found%s.\n", where)
				return nil
			}
			if len(shown) > 0 {
				if err := p.Print(shown, false); err != nil {
					return err
				}
				p.NoHeader = true
			}
			if !watch {
				return nil
			}
			events, err := cn.Client.Watch(ctx, cmdutil.EventKind, project, rv, "")
			if err != nil {
				return err
			}
			for ev := range events {
				if ev.Err != nil {
					return ev.Err
				}
				if ev.Type == "DELETED" || !about(ev.Object) {
					continue
				}
				if err := p.Print([]api.Object{ev.Object}, true); err != nil {
					return err
				}
				p.NoHeader = true
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&forArg, "for", "", "only the events about this object, KIND/NAME (app/hello)")
	f.BoolVarP(&watch, "watch", "w", false, "after listing, print events as they come")
	f.BoolVarP(&allProjects, "all-projects", "A", false, "the events of every project")
	f.BoolVar(&noHeaders, "no-headers", false, "omit the table header")
	f.StringVarP(&output, "output", "o", "", "output format: "+view.OutputHelp)
	_ = cmd.RegisterFlagCompletionFunc("for", func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		return cmdutil.CompleteTarget(e, g, false)(cmd, nil, toComplete)
	})
	return cmd
}

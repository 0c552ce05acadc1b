package get

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/view"
)

// NewDescribeCmd is `describe`.
func NewDescribeCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var selector string
	cmd := &cobra.Command{
		Use:   "describe KIND NAME | KIND/NAME | KIND -l SELECTOR",
		Short: "Show an object in detail, with its recent events",
		Long: `Describe shows an object in detail, with the events recorded about it.

For a route it also shows the split the router measured (from the API's
/metrics): the requests each backend service and each of its revisions
answered since the router started, next to the configured weights.`,
		Example: `  slipway describe app hello
  slipway describe pod/hello-1-x7k2p
  slipway describe pods -l app=hello`,
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, names, err := cmdutil.ParseTarget(args)
			if err != nil {
				return err
			}
			if len(names) == 0 && selector == "" {
				return fmt.Errorf("must name the %s to describe: slipway describe %s NAME (or -l SELECTOR)", strings.ToLower(info.Kind), strings.ToLower(info.Kind))
			}
			if len(names) > 0 && selector != "" {
				return errors.New("give either names or -l, not both")
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			project := cn.Project
			if !info.Projects {
				project = ""
			}
			ctx := cmd.Context()
			if selector != "" {
				if names, err = cmdutil.SelectedNames(ctx, cn, info, project, selector); err != nil {
					return err
				}
			}
			for i, n := range names {
				o, err := cn.Client.Get(ctx, info, project, n)
				if err != nil {
					return err
				}
				var events []*api.Event
				if info.Kind != "Event" {
					evProject := o.GetMeta().Project
					if !info.Projects {
						evProject = o.GetMeta().Name
					}
					all, _, err := cn.Client.List(ctx, cmdutil.EventKind, evProject, "")
					if err != nil {
						return err
					}
					for _, x := range all {
						ev := x.(*api.Event)
						if ev.InvolvedObject.Kind == info.Kind && ev.InvolvedObject.Name == n {
							events = append(events, ev)
						}
					}
				}
				if i > 0 {
					fmt.Fprintln(e.Stdout)
				}
				var m view.Metrics
				if info.Kind == "Route" {
					// The split the router measured, next to the weights.
					text, err := cn.Client.Metrics(ctx)
					m = view.Metrics{Text: text, OK: err == nil}
				}
				view.Describe(e.Stdout, o, events, m, time.Now())
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "describe the objects whose labels match, e.g. app=hello")
	return cmd
}

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
)

func newDescribeCmd(e *env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "describe KIND NAME | KIND/NAME",
		Short: "Show an object in detail, with its recent events",
		Long: `Describe shows an object in detail, with the events recorded about it.

For a route it also shows the split the router measured (from the API's
/metrics): the requests each backend service and each of its revisions
answered since the router started, next to the configured weights.`,
		Example: `  slipway describe app hello
  slipway describe pod/hello-1-x7k2p`,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, names, err := parseTarget(args)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				return fmt.Errorf("must name the %s to describe: slipway describe %s NAME", strings.ToLower(info.Kind), strings.ToLower(info.Kind))
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			project := cn.project
			if !info.Projects {
				project = ""
			}
			ctx := cmd.Context()
			for i, n := range names {
				o, err := cn.c.Get(ctx, info, project, n)
				if err != nil {
					return err
				}
				var events []*api.Event
				if info.Kind != "Event" {
					evProject := o.GetMeta().Project
					if !info.Projects {
						evProject = o.GetMeta().Name
					}
					all, _, err := cn.c.List(ctx, eventKind, evProject, "")
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
					fmt.Fprintln(e.stdout)
				}
				var m view.Metrics
				if info.Kind == "Route" {
					// The split the router measured, next to the weights.
					text, err := cn.c.Metrics(ctx)
					m = view.Metrics{Text: text, OK: err == nil}
				}
				view.Describe(e.stdout, o, events, m, time.Now())
			}
			return nil
		},
	}
}

package set

import (
	"context"
	"fmt"
	"strings"

	"slipway.dev/slipway/internal/cli/cmdutil"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
)

// NewScaleCmd is `scale`.
func NewScaleCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var replicas int
	cmd := &cobra.Command{
		Use:   "scale app/NAME --replicas N | scale app NAME... --replicas N",
		Short: "Set the number of pods of an app",
		Long: `Scale sets spec.replicas of apps: the platform then starts or stops pods
until that many run. Stopping pods is graceful: they leave the services
first and finish the requests they have.

Only apps can be scaled.`,
		Example: `  slipway scale app/hello --replicas 3
  slipway scale app hello worker --replicas 0`,
		ValidArgsFunction: cmdutil.CompleteApps(e, g),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, names, err := cmdutil.ParseTarget(args)
			if err != nil {
				return err
			}
			if info.Kind != "App" {
				return fmt.Errorf("%s cannot be scaled: only apps can (slipway scale app/NAME --replicas N)", info.Plural)
			}
			if len(names) == 0 {
				return fmt.Errorf("must name the app to scale: slipway scale app/NAME --replicas N")
			}
			if replicas < 0 || replicas > api.MaxReplicas {
				return fmt.Errorf("invalid --replicas %d: must be from 0 to %d", replicas, api.MaxReplicas)
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			for _, n := range names {
				if err := scaleApp(cmd.Context(), cn, n, int32(replicas)); err != nil {
					return err
				}
				fmt.Fprintf(e.Stdout, "%s/%s scaled\n", strings.ToLower(info.Kind), n)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&replicas, "replicas", 0, "the number of pods wanted (required)")
	_ = cmd.MarkFlagRequired("replicas")
	return cmd
}

// scaleApp sets spec.replicas with compare-and-swap on the resourceVersion
// read, re-reading on a conflict so that no concurrent change is lost.
func scaleApp(ctx context.Context, cn *cmdutil.Conn, name string, replicas int32) error {
	app, err := cmdutil.GetApp(ctx, cn, name)
	if err != nil {
		return err
	}
	_, err = cmdutil.UpdateApp(ctx, cn, app, "scaled", func(app *api.App) (bool, error) {
		if app.Spec.Replicas != nil && *app.Spec.Replicas == replicas {
			return false, nil
		}
		app.Spec.Replicas = &replicas
		return true, nil
	})
	return err
}

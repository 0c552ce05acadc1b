package set

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

func newSetEnvCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var container string
	cmd := &cobra.Command{
		Use:   "env app/NAME KEY=VALUE... [KEY-...]",
		Short: "Set or remove environment variables of an app (a new revision)",
		Long: `Env sets variables (KEY=VALUE) or removes them (KEY-) in the app's
containers, or only in -c CONTAINER. The template changes, so the app's
strategy rolls out a new revision; nothing is written if nothing changes.`,
		Example: `  slipway set env app/hello VERSION=v2
  slipway set env app/hello -c web DEBUG=1 OLD_FLAG-`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := cmdutil.AppTarget(args[:1], "set env")
			if err != nil {
				return err
			}
			type change struct {
				key, value string
				remove     bool
			}
			var changes []change
			for _, a := range args[1:] {
				if k, ok := strings.CutSuffix(a, "-"); ok && !strings.Contains(a, "=") {
					changes = append(changes, change{key: k, remove: true})
					continue
				}
				k, v, ok := strings.Cut(a, "=")
				if !ok || k == "" {
					return fmt.Errorf("%q: must be KEY=VALUE to set a variable or KEY- to remove one", a)
				}
				changes = append(changes, change{key: k, value: v})
			}
			cn, app, err := cmdutil.ConnectApp(cmd.Context(), e, g, name)
			if err != nil {
				return err
			}
			app, err = cmdutil.UpdateApp(cmd.Context(), cn, app, "changed", func(a *api.App) (bool, error) {
				touched, changed := false, false
				for i := range a.Spec.Template.Containers {
					c := &a.Spec.Template.Containers[i]
					if container != "" && c.Name != container {
						continue
					}
					touched = true
					for _, ch := range changes {
						idx := -1
						for j, ev := range c.Env {
							if ev.Name == ch.key {
								idx = j
							}
						}
						switch {
						case ch.remove && idx >= 0:
							c.Env = append(c.Env[:idx], c.Env[idx+1:]...)
							changed = true
						case ch.remove:
						case idx >= 0 && (c.Env[idx].Value != ch.value || c.Env[idx].ValueFrom != nil):
							c.Env[idx] = api.EnvVar{Name: ch.key, Value: ch.value}
							changed = true
						case idx < 0:
							c.Env = append(c.Env, api.EnvVar{Name: ch.key, Value: ch.value})
							changed = true
						}
					}
				}
				if !touched {
					return false, fmt.Errorf("app %s has no container %q", name, container)
				}
				return changed, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "app/%s env updated (generation %d)\n", name, app.Metadata.Generation)
			return nil
		},
	}
	cmd.Flags().StringVarP(&container, "container", "c", "", "only this container (default: all)")
	return cmd
}

func newSetImageCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "image app/NAME CONTAINER=IMAGE...",
		Short: "Set the image of an app's containers (a new revision)",
		Long: `Image sets the image of the named containers, which the Docker runtime
runs. The template changes, so the app's strategy rolls out a new revision.`,
		Example: `  slipway set image app/hello web=hello:v2`,
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := cmdutil.AppTarget(args[:1], "set image")
			if err != nil {
				return err
			}
			images := map[string]string{}
			for _, a := range args[1:] {
				c, img, ok := strings.Cut(a, "=")
				if !ok || c == "" || img == "" {
					return fmt.Errorf("%q: must be CONTAINER=IMAGE", a)
				}
				images[c] = img
			}
			cn, app, err := cmdutil.ConnectApp(cmd.Context(), e, g, name)
			if err != nil {
				return err
			}
			app, err = cmdutil.UpdateApp(cmd.Context(), cn, app, "changed", func(a *api.App) (bool, error) {
				changed := false
				seen := map[string]bool{}
				for i := range a.Spec.Template.Containers {
					c := &a.Spec.Template.Containers[i]
					if img, ok := images[c.Name]; ok {
						seen[c.Name] = true
						if c.Image != img {
							c.Image, changed = img, true
						}
					}
				}
				for c := range images {
					if !seen[c] {
						return false, fmt.Errorf("app %s has no container %q", name, c)
					}
				}
				return changed, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "app/%s image updated (generation %d)\n", name, app.Metadata.Generation)
			return nil
		},
	}
}

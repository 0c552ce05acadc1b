package apply

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// NewDeleteCmd is `delete`.
func NewDeleteCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var files []string
	var selector string
	var recursive, ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete KIND NAME... | KIND/NAME | KIND -l SELECTOR | -f FILE|DIR|-",
		Short: "Delete objects by name or by the manifests that made them",
		Long:  `Delete removes objects. Deleting a project removes everything in it.`,
		Example: `  slipway delete app hello
  slipway delete svc/hello
  slipway delete -f examples/hello/
  slipway delete pods -l app=hello`,
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			type target struct {
				info    api.KindInfo
				project string
				name    string
			}
			var targets []target
			switch {
			case len(files) > 0 && len(args) > 0:
				return errors.New("give either -f or KIND NAME, not both")
			case len(files) > 0:
				objs, err := readManifests(e, files, recursive, cn.Project, g.ProjectSet(e))
				if err != nil {
					return err
				}
				// Delete in the reverse of apply's order so that a project goes last.
				for i := len(objs) - 1; i >= 0; i-- {
					o := objs[i]
					info, _ := api.LookupKind(o.GetTypeMeta().Kind)
					targets = append(targets, target{info, o.GetMeta().Project, o.GetMeta().Name})
				}
			default:
				info, names, err := cmdutil.ParseTarget(args)
				if err != nil {
					return err
				}
				if len(names) > 0 && selector != "" {
					return errors.New("give either names or -l, not both")
				}
				if selector != "" {
					if names, err = cmdutil.SelectedNames(cmd.Context(), cn, info, cn.ProjectOf(info), selector); err != nil {
						return err
					}
				}
				if len(names) == 0 {
					return fmt.Errorf("must name the %s to delete: slipway delete %s NAME (or -l SELECTOR)", info.Plural, strings.ToLower(info.Kind))
				}
				for _, n := range names {
					targets = append(targets, target{info, cn.Project, n})
				}
			}
			var failed []string
			for _, t := range targets {
				project := t.project
				if !t.info.Projects {
					project = ""
				}
				err := cn.Client.Delete(cmd.Context(), t.info, project, t.name)
				switch {
				case err == nil:
					fmt.Fprintln(e.Stdout, deletedMessage(cmd.Context(), cn.Client, t.info, project, t.name)) // volumes.go
				case api.IsNotFound(err) && ignoreNotFound:
				default:
					failed = append(failed, cmdutil.FormatError(err))
				}
			}
			if len(failed) > 0 {
				return errors.New(strings.TrimPrefix(strings.Join(failed, "\n"), "error: "))
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the objects named in this manifest file, directory or - (repeatable)")
	cmd.Flags().BoolVarP(&recursive, "recursive", "R", false, "read directories given with -f recursively")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "delete the objects of the kind whose labels match, e.g. app=hello")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "treat an object that does not exist as deleted")
	return cmd
}

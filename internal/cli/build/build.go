// Package build holds `build`: it packs an app's source, uploads it as a
// Build, and follows, prints or cancels builds.
package build

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build/archive"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// maxUploadBytes bounds what the CLI packs before sending: the server's
// own limit (64 MiB by default) answers 413 beyond it.
const maxUploadBytes = 256 << 20

// NewCmd is `build` with its subcommands `logs` and `cancel`.
func NewCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var dir, strategy string
	var follow bool
	cmd := &cobra.Command{
		Use:   "build app/NAME --from-dir DIR [--follow]",
		Short: "Build an app's image from a local directory",
		Long: `Build packs DIR as a tar archive (honouring DIR/.dockerignore; symbolic
links are kept as links, and one pointing outside DIR is an error) and
uploads it as a new Build of the app, numbered after its previous builds.
The platform then builds it:

  - with a Dockerfile in DIR: a Docker build (needs slipway up --runtime docker);
  - with go.mod or .go files: the Go module compiled with CGO_ENABLED=0;
  - otherwise DIR as is: it must hold the executable the app's command names.

On Docker the result is the image <project>/<app>:<n>; on the process
runtime the directory <data-dir>/artifacts/<project>/<app>/<n>, from which
a container with that image runs its command. The image is recorded in the
app's image stream (slipway get images), and if the app has an ImageChange
trigger it is set on the trigger's containers: the app's strategy rolls it
out. A failing build changes nothing that runs.

With --follow the build's log is printed until it ends, and the exit status
says whether it succeeded. "slipway build logs NAME" prints a build's log.`,
		Example: `  # Build and watch the build
  slipway build app/hello --from-dir examples/hello --follow

  # Then watch the rollout it triggers
  slipway rollout status app/hello`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return errors.New("must name the app to build: slipway build app/NAME --from-dir DIR")
			}
			name, err := cmdutil.AppTarget(args, "build")
			if err != nil {
				return err
			}
			if dir == "" {
				return errors.New("--from-dir is required: the directory to build (slipway build app/NAME --from-dir DIR)")
			}
			fi, err := os.Stat(dir)
			switch {
			case errors.Is(err, os.ErrNotExist):
				return fmt.Errorf("--from-dir %s: no such directory", dir)
			case err != nil:
				return fmt.Errorf("--from-dir %s: %w", dir, err)
			case !fi.IsDir():
				return fmt.Errorf("--from-dir %s: not a directory", dir)
			}
			var buf bytes.Buffer
			st, err := archive.Pack(&buf, dir, archive.PackOptions{MaxBytes: maxUploadBytes})
			if err != nil {
				return err
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := cn.Client.StartBuild(ctx, cn.Project, name, bytes.NewReader(buf.Bytes()), strategy)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "build/%s created (%d files, %d bytes uploaded, %s)\n", b.Metadata.Name, st.Entries, buf.Len(), b.Spec.Source.ArchiveDigest)
			if !follow {
				fmt.Fprintf(e.Stdout, "Follow it with: slipway build logs %s -f\n", b.Metadata.Name)
				return nil
			}
			return followBuild(ctx, e, cn, b.Metadata.Name)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "from-dir", "", "directory to build")
	f.BoolVarP(&follow, "follow", "F", false, "print the build's log until it ends; exit non-zero if it fails")
	f.StringVar(&strategy, "strategy", "", "Docker, Go or Directory (default: detected from the source)")
	cmd.AddCommand(newBuildLogsCmd(e, g), newBuildCancelCmd(e, g))
	return cmd
}

// followBuild prints the build's log to its end, then its outcome; a build
// that did not complete is an error (exit status 1).
func followBuild(ctx context.Context, e *cmdutil.Env, cn *cmdutil.Conn, name string) error {
	rc, err := cn.Client.BuildLog(ctx, cn.Project, name, true)
	if err != nil {
		return err
	}
	_, err = io.Copy(e.Stdout, rc)
	rc.Close()
	if err != nil {
		return fmt.Errorf("reading the log of build %s: %w", name, err)
	}
	obj, err := cn.Client.Get(ctx, cmdutil.BuildKind, cn.Project, name)
	if err != nil {
		return err
	}
	b := obj.(*api.Build)
	switch {
	case b.Status.Phase == api.BuildComplete:
		fmt.Fprintf(e.Stdout, "build %s complete in %s: %s (%s)\n", name, b.Status.Duration, b.Status.Image, b.Status.ImageDigest)
		return nil
	case !b.Status.Finished():
		return fmt.Errorf("build %s is still %s (the log stream ended early): slipway build logs %s -f", name, cmp.Or(b.Status.Phase, api.BuildNew), name)
	}
	return fmt.Errorf("build %s %s after %s: %s", name, b.Status.Phase, cmp.Or(b.Status.Duration, "-"), b.Status.Message)
}

func newBuildLogsCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a build's log",
		Long: `Logs prints the log of a build (NAME or build/NAME, e.g. hello-3): what the
compiler or the Docker engine wrote, and the outcome. With -f it follows the
log until the build ends.`,
		Example: `  slipway build logs hello-3 -f`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := buildName(args[0])
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			return cmdutil.BuildLog(cmd.Context(), cn, name, follow, e.Stdout)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the build ends")
	return cmd
}

// buildName reads NAME, build/NAME or builds/NAME.
func buildName(s string) string {
	for _, p := range []string{"build/", "builds/"} {
		if len(s) > len(p) && s[:len(p)] == p {
			return s[len(p):]
		}
	}
	return s
}

func newBuildCancelCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "cancel NAME",
		Short: "Cancel a build that has not finished",
		Long: `Cancel stops a build (NAME or build/NAME): one waiting to start never
starts; a running one has its tools (the compiler, the Docker build)
stopped. It ends Cancelled, and nothing that runs changes.`,
		Example: `  slipway build cancel hello-4`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := buildName(args[0])
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := cmdutil.GetObject[*api.Build](ctx, cn, cmdutil.BuildKind, name)
			if err != nil {
				return err
			}
			_, err = cmdutil.UpdateObject(ctx, cn, cmdutil.BuildKind, b, 10, func(b *api.Build) (bool, error) {
				if b.Status.Finished() {
					return false, fmt.Errorf("build %s is already %s", name, b.Status.Phase)
				}
				if b.Metadata.Annotations == nil {
					b.Metadata.Annotations = map[string]string{}
				}
				b.Metadata.Annotations[api.AnnotationCancelBuild] = "true"
				return true, nil
			})
			switch {
			case errors.Is(err, cmdutil.ErrKeptChanging):
				return fmt.Errorf("build %s kept changing: try again", name)
			case err != nil:
				return err
			}
			fmt.Fprintf(e.Stdout, "build/%s cancel requested\n", name)
			return nil
		},
	}
}

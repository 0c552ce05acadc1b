// Package cli is the slipway command line: the root command, which wires
// the command groups (internal/cli/<group>, each its verbs) under the
// connection flags, and `version`. The commands talk to the platform only
// through the typed client (and `up`, which runs it); what they share is
// in cli/cmdutil.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/cli/apply"
	"slipway.dev/slipway/internal/cli/build"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/get"
	"slipway.dev/slipway/internal/cli/logs"
	"slipway.dev/slipway/internal/cli/rollout"
	"slipway.dev/slipway/internal/cli/set"
	"slipway.dev/slipway/internal/cli/up"
)

// Version returns the binary's version (see cmdutil.Version).
func Version() string { return cmdutil.Version() }

// Main runs the CLI and returns the process exit status (see
// cmdutil.ExitFailed and the others).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &cmdutil.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return cmdutil.ExitStatus(ctx, root.ExecuteContext(ctx), stderr)
}

func newRoot(e *cmdutil.Env) *cobra.Command {
	g := &cmdutil.Globals{}
	root := &cobra.Command{
		Use:   "slipway",
		Short: "Slipway ships web apps with zero downtime",
		Long: `Slipway is a platform-as-a-service in one binary: pods kept at N copies,
services that balance them, routes that bring public traffic in, and
deployments that move traffic between revisions without a failed request.

Start the platform with "slipway up", then drive it with the other verbs.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
	}
	root.SetVersionTemplate("slipway {{.Version}}\n")
	g.AddFlags(root)
	root.AddCommand(
		up.NewUpCmd(e),
		apply.NewApplyCmd(e, g),
		get.NewGetCmd(e, g),
		get.NewDescribeCmd(e, g),
		apply.NewDeleteCmd(e, g),
		logs.NewCmd(e, g),
		set.NewScaleCmd(e, g),
		rollout.NewCmd(e, g),
		set.NewExposeCmd(e, g),
		set.NewSetCmd(e, g),
		build.NewCmd(e, g),
		newVersionCmd(e, g),
		get.NewWaitCmd(e, g),
		apply.NewLabelCmd(e, g, false),
		apply.NewLabelCmd(e, g, true),
		apply.NewPatchCmd(e, g),
		get.NewEventsCmd(e, g),
		up.NewAdminCmd(e),
	)
	return root
}

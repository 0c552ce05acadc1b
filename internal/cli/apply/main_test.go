package apply

import (
	"net/http"
	"testing"

	"github.com/spf13/cobra"
	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/cli/clitest"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// startTestAPI serves the real API (see clitest.Start) to this group's
// commands.
func startTestAPI(t *testing.T, src apiserver.LogSource, wrap func(http.Handler) http.Handler) *clitest.API {
	t.Helper()
	return clitest.Start(t, src, wrap, clitest.Root(NewApplyCmd, NewDeleteCmd, NewPatchCmd, label(false), label(true)))
}

// label is NewLabelCmd for label (false) or annotate (true).
func label(annotations bool) func(*cmdutil.Env, *cmdutil.Globals) *cobra.Command {
	return func(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command { return NewLabelCmd(e, g, annotations) }
}

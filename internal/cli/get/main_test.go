package get

import (
	"net/http"
	"testing"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/cli/clitest"
)

// startTestAPI serves the real API (see clitest.Start) to this group's
// commands.
func startTestAPI(t *testing.T, src apiserver.LogSource, wrap func(http.Handler) http.Handler) *clitest.API {
	t.Helper()
	return clitest.Start(t, src, wrap, clitest.Root(NewGetCmd, NewDescribeCmd, NewEventsCmd, NewWaitCmd))
}

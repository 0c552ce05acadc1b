package cli

import (
	"testing"

	"github.com/spf13/cobra"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// TestEveryCommandHasAnExample: slipway help shows an example of every
// verb (cobra's own help and completion aside).
func TestEveryCommandHasAnExample(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Runnable() && c.Example == "" && c.HasParent() && c.Name() != "help" && c.Parent().Name() != "completion" {
			t.Errorf("%s has no example", c.CommandPath())
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(newRoot(&cmdutil.Env{Getenv: func(string) string { return "" }}))
}

// Command slipway is the whole platform: `slipway up` runs it, the other
// verbs talk to it.
package main

import (
	"context"
	"os"

	"slipway.dev/slipway/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

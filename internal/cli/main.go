// Package cli is the slipway command line: cobra commands that talk to the
// platform only through the typed client (and `up`, which runs it).
package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/manifest"
)

// version is set at build time with -ldflags "-X slipway.dev/slipway/internal/cli.version=v1.2.3".
var version = ""

// Version returns the binary's version: the ldflags value, else the module
// version or VCS revision recorded by the Go toolchain.
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// env is the process environment, indirect so tests can pass their own.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// globals are the connection flags every client verb shares.
type globals struct {
	server  string
	token   string
	project string
	config  string
}

// Exit statuses. Every command exits 0 on success and 1 with a reason on
// stderr on failure; rollout status and wait say more (see their help), and
// a command interrupted by Ctrl-C (or SIGTERM) exits 130 without a word,
// as a shell reports a process killed by SIGINT. A watch (get -w, logs -f,
// events -w) has no other way to end, so an interrupted watch exits 0.
const (
	exitFailed      = 1
	exitPaused      = 2 // rollout status: the rollout waits for a person
	exitTimedOut    = 3 // rollout status and wait: --timeout passed
	exitInterrupted = 130
)

// exitError ends a command with a status other than 1. Its message, if
// any, is printed like any error's, or as it is when note is set (a
// verdict, not a failure).
type exitError struct {
	code int
	err  error
	note bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// exitStatus prints err for a person and returns the process status.
func exitStatus(ctx context.Context, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	var x *exitError
	if errors.As(err, &x) {
		switch {
		case x.err != nil && x.note:
			fmt.Fprintln(stderr, x.err)
		case x.err != nil:
			fmt.Fprintln(stderr, formatError(x.err))
		}
		return x.code
	}
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return exitInterrupted // the user stopped it: nothing to explain
	}
	fmt.Fprintln(stderr, formatError(err))
	return exitFailed
}

// Main runs the CLI and returns the process exit status (see exitFailed
// and the others).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	root := newRoot(e)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return exitStatus(ctx, root.ExecuteContext(ctx), stderr)
}

// formatError renders an error for a person: manifest problems one per
// line, API errors with their field causes.
func formatError(err error) string {
	var me *manifest.Error
	if errors.As(err, &me) {
		return "error: " + strings.ReplaceAll(me.Error(), "\n", "\nerror: ")
	}
	var ae *api.Error
	if errors.As(err, &ae) {
		msg := "error: " + ae.Message
		if len(ae.Causes) > 0 && !strings.Contains(ae.Message, ae.Causes[0].Message) {
			for _, c := range ae.Causes {
				msg += "\n  " + c.Field + ": " + c.Message
			}
		}
		return msg
	}
	return "error: " + err.Error()
}

func newRoot(e *env) *cobra.Command {
	g := &globals{}
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
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "Slipway API URL (env SLIPWAY_SERVER; default from the config file)")
	pf.StringVar(&g.token, "token", "", "API bearer token (env SLIPWAY_TOKEN; default from the config file)")
	pf.StringVarP(&g.project, "project", "p", "", "project to work in (env SLIPWAY_PROJECT; default \"default\")")
	pf.StringVar(&g.config, "config", "", "config file (env SLIPWAY_CONFIG; default $XDG_CONFIG_HOME/slipway/config.yaml)")
	root.AddCommand(
		newUpCmd(e),
		newApplyCmd(e, g),
		newGetCmd(e, g),
		newDescribeCmd(e, g),
		newDeleteCmd(e, g),
		newLogsCmd(e, g),
		newScaleCmd(e, g),
		newRolloutCmd(e, g),
		newExposeCmd(e, g),
		newSetCmd(e, g),
		newBuildCmd(e, g),
		newVersionCmd(e, g),
		newWaitCmd(e, g),
		newLabelCmd(e, g, false),
		newLabelCmd(e, g, true),
		newPatchCmd(e, g),
		newEventsCmd(e, g),
		newAdminCmd(e),
	)
	return root
}

// conn is a resolved connection: a client and the project to work in.
type conn struct {
	c       *client.Client
	project string
	server  string
}

// connect resolves server, token and project: flag, then environment, then
// the config file, then the defaults.
func (g *globals) connect(e *env) (*conn, error) {
	cfgPath := cmp.Or(g.config, e.getenv("SLIPWAY_CONFIG"))
	if cfgPath == "" {
		p, err := configPath(e.getenv)
		if err != nil {
			return nil, err
		}
		cfgPath = p
	}
	fc, err := readConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	server := cmp.Or(g.server, e.getenv("SLIPWAY_SERVER"), fc.Server, "http://127.0.0.1:7070")
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	token := cmp.Or(g.token, e.getenv("SLIPWAY_TOKEN"), fc.Token)
	project := cmp.Or(g.project, e.getenv("SLIPWAY_PROJECT"), fc.Project, api.DefaultProject)
	return &conn{
		c:       client.New(client.Config{Server: server, Token: token, UserAgent: "slipway-cli/" + Version()}),
		project: project,
		server:  server,
	}, nil
}

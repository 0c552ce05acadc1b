// Package cmdutil is the plumbing every slipway command shares (as
// kubectl's pkg/cmd/util): the process environment, the connection flags
// and the connection they resolve to, exit statuses and error messages,
// the config file, the binary's version, and the helpers several command
// groups use (reading targets, read-modify-write of objects, completion).
// It imports no command group; the groups (internal/cli/<group>) import it.
package cmdutil

import (
	"cmp"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
)

// Env is the process environment, indirect so tests can pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
}

// Globals are the connection flags every client verb shares.
type Globals struct {
	Server  string
	Token   string
	Project string
	Config  string
}

// AddFlags adds the connection flags to cmd as persistent flags: the
// root's, which every command under it takes.
func (g *Globals) AddFlags(cmd *cobra.Command) {
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.Server, "server", "", "Slipway API URL (env SLIPWAY_SERVER; default from the config file)")
	pf.StringVar(&g.Token, "token", "", "API bearer token (env SLIPWAY_TOKEN; default from the config file)")
	pf.StringVarP(&g.Project, "project", "p", "", "project to work in (env SLIPWAY_PROJECT; default \"default\")")
	pf.StringVar(&g.Config, "config", "", "config file (env SLIPWAY_CONFIG; default $XDG_CONFIG_HOME/slipway/config.yaml)")
}

// ProjectSet reports whether the user chose a project explicitly (flag or
// environment), in which case a manifest naming another project is an error.
func (g *Globals) ProjectSet(e *Env) bool {
	return g.Project != "" || e.Getenv("SLIPWAY_PROJECT") != ""
}

// Conn is a resolved connection: a client and the project to work in.
type Conn struct {
	Client  *client.Client
	Project string
	Server  string
}

// Connect resolves server, token and project: flag, then environment, then
// the config file, then the defaults.
func (g *Globals) Connect(e *Env) (*Conn, error) {
	cfgPath := cmp.Or(g.Config, e.Getenv("SLIPWAY_CONFIG"))
	if cfgPath == "" {
		p, err := ConfigPath(e.Getenv)
		if err != nil {
			return nil, err
		}
		cfgPath = p
	}
	fc, err := ReadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	server := cmp.Or(g.Server, e.Getenv("SLIPWAY_SERVER"), fc.Server, "http://127.0.0.1:7070")
	if !strings.Contains(server, "://") {
		server = "http://" + server
	}
	token := cmp.Or(g.Token, e.Getenv("SLIPWAY_TOKEN"), fc.Token)
	project := cmp.Or(g.Project, e.Getenv("SLIPWAY_PROJECT"), fc.Project, api.DefaultProject)
	return &Conn{
		Client:  client.New(client.Config{Server: server, Token: token, UserAgent: "slipway-cli/" + Version()}),
		Project: project,
		Server:  server,
	}, nil
}

// ProjectOf is the project a command works in for objects of kind: none
// for the kinds that live outside projects (Project itself).
func (cn *Conn) ProjectOf(kind api.KindInfo) string {
	if !kind.Projects {
		return ""
	}
	return cn.Project
}

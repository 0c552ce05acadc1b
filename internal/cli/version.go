package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/client"
)

// versions is what `slipway version -o json|yaml` prints, as kubectl's
// clientVersion and serverVersion.
type versions struct {
	Client client.VersionInfo  `json:"clientVersion" yaml:"clientVersion"`
	Server *client.VersionInfo `json:"serverVersion,omitempty" yaml:"serverVersion,omitempty"`
}

func newVersionCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var clientOnly bool
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		Long: `Version prints the version, commit and Go version of this binary and of
the server it talks to, and the API version both speak. With --client it
asks no server. "slipway --version" prints the client's version alone.`,
		Example: `  slipway version
  slipway version --client -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch output {
			case "", "json", "yaml":
			default:
				return fmt.Errorf("unsupported output format %q: use json or yaml (or leave -o out)", output)
			}
			v := versions{Client: client.VersionInfo{Version: Version(), Commit: cmdutil.Commit(), APIVersion: api.Version, GoVersion: runtime.Version()}}
			var serverErr error
			if !clientOnly {
				cn, err := g.Connect(e)
				if err != nil {
					return err
				}
				sv, err := cn.Client.Version(cmd.Context())
				if err != nil {
					serverErr = err // the client's part is still worth printing
				} else {
					v.Server = &sv
				}
			}
			if err := printVersions(e.Stdout, v, output); err != nil {
				return err
			}
			return serverErr
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: json or yaml (default: lines)")
	return cmd
}

func printVersions(w io.Writer, v versions, output string) error {
	switch output {
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	case "yaml":
		b, err := jsonToYAML(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	}
	line := func(who string, i client.VersionInfo) {
		fmt.Fprintf(w, "%s Version: %s\n", who, i.Version)
		fmt.Fprintf(w, "%s Commit: %s\n", who, orUnknown(i.Commit))
		fmt.Fprintf(w, "%s Go Version: %s\n", who, i.GoVersion)
	}
	line("Client", v.Client)
	if v.Server != nil {
		line("Server", *v.Server)
		if v.Server.APIVersion != v.Client.APIVersion {
			fmt.Fprintf(w, "API Version: %s (client), %s (server)\n", v.Client.APIVersion, v.Server.APIVersion)
			return nil
		}
	}
	fmt.Fprintf(w, "API Version: %s\n", v.Client.APIVersion)
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// jsonToYAML writes v as YAML with the keys and order of its JSON form.
func jsonToYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	blockStyle(&n)
	return yaml.Marshal(&n)
}

// blockStyle undoes the flow style a node read from JSON has.
func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style = 0
	} else if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
		n.Style = 0 // plain unless the value needs quotes
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

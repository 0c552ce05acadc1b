package up

import (
	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/server"
)

// NewAdminCmd is `admin` with its subcommand `migrate`.
func NewAdminCmd(e *cmdutil.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operate on a platform's state directly (not through the API)",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newMigrateCmd(e))
	return cmd
}

func newMigrateCmd(e *cmdutil.Env) *cobra.Command {
	cfg := server.MigrateConfig{}
	var logLevel string
	cmd := &cobra.Command{
		Use:   "migrate --from bolt://DIR --to etcd://HOST:PORT[,HOST:PORT...][/prefix]",
		Short: "Copy a stopped platform's state from its bolt file to etcd",
		Long: `Migrate copies every object of a stopped platform (its bolt store,
DIR/slipway.db, where DIR is the --data-dir of "slipway up") to a prefix
of an etcd cluster, then reads both back and prints, per kind, the number
of keys and a SHA-256 of their keys and values on each side: the copy is
verified when they are equal, and migrate fails otherwise.

It refuses to run while a slipway holds the bolt file (stop the platform
first: nothing may change during the copy), and refuses a target prefix
that already holds keys unless --force, which deletes them first.

The prefix defaults to /slipway. Revisions are not copied (etcd numbers the
writes anew), so resourceVersions change; clients list again. Pods' local
state (addresses, logs, build artifacts) stays in the data dir: start the
platform on etcd with the same --data-dir.`,
		Example: `  slipway admin migrate --from bolt://$HOME/.local/share/slipway --to etcd://127.0.0.1:2379
  slipway admin migrate --from bolt:///var/lib/slipway --to etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/prod \
      --etcd-ca ca.pem --etcd-cert client.pem --etcd-key client-key.pem
  slipway up --store etcd --etcd-endpoints http://127.0.0.1:2379 --data-dir $HOME/.local/share/slipway`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(e, logLevel, "text")
			if err != nil {
				return err
			}
			cfg.Logger, cfg.Out = logger, e.Stdout
			return server.Migrate(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.From, "from", "", "the stopped platform's store: bolt://DIR (DIR is its --data-dir)")
	f.StringVar(&cfg.To, "to", "", "the target: etcd://HOST:PORT[,HOST:PORT...][/prefix] (prefix default "+server.DefaultEtcdPrefix+")")
	f.BoolVar(&cfg.Force, "force", false, "delete what the target prefix holds before copying")
	addEtcdTLSFlags(cmd, &cfg.Etcd)
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("to")
	return cmd
}

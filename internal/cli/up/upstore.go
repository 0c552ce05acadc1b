package up

import (
	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/server"
)

// addStoreFlags adds `up`'s choice of store: the embedded bolt file or etcd.
func addStoreFlags(cmd *cobra.Command, cfg *server.Config) {
	f := cmd.Flags()
	f.StringVar(&cfg.Store, "store", server.StoreBolt, "where the state lives: bolt (a file in --data-dir) or etcd (--etcd-endpoints; every acknowledged write committed by a quorum)")
	f.StringSliceVar(&cfg.Etcd.Endpoints, "etcd-endpoints", nil, "etcd members' client URLs, comma-separated (http://host:2379; host:port means http://, or https:// with --etcd-ca or --etcd-cert)")
	f.StringVar(&cfg.Etcd.Prefix, "etcd-prefix", "", "etcd key prefix of this platform's state (default "+server.DefaultEtcdPrefix+"; platforms sharing a cluster need different ones)")
	addEtcdTLSFlags(cmd, &cfg.Etcd)
}

// addEtcdTLSFlags adds the client certificate and CA flags that `up` and
// `admin migrate` share.
func addEtcdTLSFlags(cmd *cobra.Command, c *server.EtcdConfig) {
	f := cmd.Flags()
	f.StringVar(&c.CertFile, "etcd-cert", "", "client certificate (PEM) for etcd; needs --etcd-key")
	f.StringVar(&c.KeyFile, "etcd-key", "", "client certificate's private key (PEM) for etcd")
	f.StringVar(&c.CAFile, "etcd-ca", "", "CA bundle (PEM) that verifies etcd's certificates (default: the system's)")
}

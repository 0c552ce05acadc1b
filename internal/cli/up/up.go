// Package up holds the verbs that run the platform in this process
// rather than talk to it: up and admin migrate.
package up

import (
	"cmp"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/server"
)

// NewUpCmd is `up`.
func NewUpCmd(e *cmdutil.Env) *cobra.Command {
	cfg := server.Config{}
	var logLevel, logFormat, configFile, podRange, svcRange string
	var trusted []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform in this process",
		Long: `Up runs Slipway on this machine in one process: the embedded store
(bbolt, in --data-dir), the API, the controllers, the runtime and the router.

On first start it creates an admin token, keeps only its hash, writes the
token to <data-dir>/admin.token (mode 0600) and, if the CLI config file does
not exist yet, writes it (server + token) so that the other slipway verbs
just work. SIGINT or SIGTERM stops everything gracefully.

The data dir holds the admin token and the store with every Secret: up
creates it with mode 0700 and, like ssh, refuses to start when it exists
with a wider mode (or when slipway.db or admin.token is readable by group
or others), saying which and the chmod to run, rather than tighten it
quietly: if others could read it, rotate the token and the Secrets.

Two Slipways on one machine need service IP ranges of their own: up
refuses a --service-ip-range in which another process already listens,
naming it and a free range to pass.`,
		Example: `  slipway up
  slipway up --data-dir /var/lib/slipway --api-addr 127.0.0.1:7070 --http-addr 127.0.0.1:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger(e, logLevel, logFormat)
			if err != nil {
				return err
			}
			cfg.Logger = logger
			if cfg.PodIPRange, err = loopbackRange("--pod-ip-range", podRange); err != nil {
				return err
			}
			switch {
			case svcRange == "": // the runtime's default
			case cfg.Runtime == "docker":
				// The server checks it against the pods' network.
				if cfg.ServiceIPRange, err = netip.ParsePrefix(svcRange); err != nil {
					return fmt.Errorf("--service-ip-range %q: must be a CIDR range such as 172.29.255.0/24", svcRange)
				}
			default:
				if cfg.ServiceIPRange, err = loopbackRange("--service-ip-range", svcRange); err != nil {
					return err
				}
			}
			for _, tp := range trusted {
				p, err := netip.ParsePrefix(tp)
				if err != nil {
					a, aerr := netip.ParseAddr(tp)
					if aerr != nil {
						return fmt.Errorf("--trusted-proxies %q: must be an address or a CIDR range such as 10.0.0.0/8", tp)
					}
					p = netip.PrefixFrom(a, a.BitLen())
				}
				cfg.TrustedProxies = append(cfg.TrustedProxies, p)
			}
			if cfg.DataDir == "" {
				cfg.DataDir = defaultDataDir(e.Getenv)
			}
			if configFile == "" {
				if p, err := cmdutil.ConfigPath(e.Getenv); err == nil {
					configFile = p
				}
			}
			cfg.OnReady = func(info server.Info) {
				if configFile != "" {
					if err := ensureConfig(configFile, info); err != nil {
						logger.Warn("could not write the CLI config file", "path", configFile, "err", err)
					}
				}
				fmt.Fprintf(e.Stderr, "Slipway %s is up.\n  API:     %s\n  Router:  http://%s\n  TLS:     %s\n  Data:    %s\n  Token:   %s\nStop it with Ctrl-C.\n",
					cmdutil.Version(), info.APIURL, info.HTTPAddr, cmp.Or(info.HTTPSAddr, "off"), info.DataDir, info.TokenFile)
			}
			cfg.Version, cfg.Commit = cmdutil.Version(), cmdutil.Commit()
			cfg.Stderr = e.Stderr
			return server.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "", "where the store, logs and the admin token live (default $XDG_DATA_HOME/slipway, i.e. ~/.local/share/slipway)")
	f.StringVar(&cfg.APIAddr, "api-addr", "127.0.0.1:7070", "address of the API server")
	f.StringVar(&cfg.HTTPAddr, "http-addr", "127.0.0.1:8080", "address of the router's HTTP listener")
	f.StringVar(&cfg.HTTPSAddr, "https-addr", "127.0.0.1:8443", "address of the router's HTTPS listener for routes with tls (\"\" to disable)")
	f.StringVar(&cfg.Runtime, "runtime", "process", "how pods run: process (local processes) or docker (containers on the Docker engine at DOCKER_HOST or the default socket)")
	f.BoolVar(&cfg.KeepPods, "keep-pods", false, "leave pods running when Slipway stops; the next start adopts them")
	f.StringVar(&cfg.RouterDomain, "router-domain", "localhost", "a Route without a host is served at <route>-<project>.<router-domain>")
	f.StringSliceVar(&trusted, "trusted-proxies", nil, "peers (addresses or CIDR ranges) whose X-Forwarded-* headers the router keeps; others' are replaced")
	f.StringVar(&cfg.AccessLog, "access-log", "", "router access log, one JSON object per request: - for stderr, or a file to append to (off when empty; never logs query strings, cookies or credentials)")
	f.DurationVar(&cfg.RouterDrainTimeout, "router-drain-timeout", server.DefaultRouterDrainTimeout, "how long WebSockets and streamed responses to a pod leaving traffic go on before the router closes them cleanly")
	f.StringVar(&podRange, "pod-ip-range", "127.20.0.0/16", "loopback range pod addresses come from")
	f.StringVar(&svcRange, "service-ip-range", "", "range service virtual IPs come from (default by runtime: 127.30.0.0/16 on the loopback for process; 172.29.255.0/24 for docker, inside the upper half 172.29.128.0/17 of the pods' network, which Slipway makes this host own with a local route)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	addStoreFlags(cmd, &cfg)
	f.StringVar(&configFile, "write-config", "", "CLI config file to create on first start (default $XDG_CONFIG_HOME/slipway/config.yaml)")
	return cmd
}

func loopbackRange(flag, val string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(val)
	if err != nil || !netip.MustParsePrefix("127.0.0.0/8").Contains(p.Addr()) || p.Bits() < 8 {
		return netip.Prefix{}, fmt.Errorf("%s %q: must be a range inside 127.0.0.0/8 such as 127.20.0.0/16", flag, val)
	}
	return p, nil
}

func newLogger(e *cmdutil.Env, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: must be debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(e.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(e.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: must be text or json", format)
}

// ensureConfig writes the CLI config for the local admin if there is none,
// and points it at the new address when it holds this platform's admin
// token but an old server (--api-addr changed). Any other file is left
// alone: it may point elsewhere on purpose.
func ensureConfig(path string, info server.Info) error {
	tok, err := os.ReadFile(info.TokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tok))
	old, err := cmdutil.ReadConfig(path)
	if err != nil {
		return err
	}
	switch {
	case old.Server == "" && old.Token == "":
	case old.Token == token && old.Server != info.APIURL:
	default:
		return nil
	}
	old.Server, old.Token = info.APIURL, token
	return writeConfig(path, old)
}

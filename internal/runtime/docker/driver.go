// Package docker is the runtime driver that runs each container as a Docker
// container, through the Docker Engine API (the official client, negotiating
// the API version down to what the engine speaks; Docker 20.10's 1.41 is
// enough):
//
//   - a pod is one network namespace held by an infra container (a 129-byte
//     static pause program Slipway writes itself and packages FROM scratch
//     at start-up, so no registry is ever needed); app containers join it
//     (NetworkMode container:<infra>), so they reach each other on localhost
//     and expose their ports on the pod's IP;
//   - pods live on a Slipway-managed bridge network (default "slipway",
//     172.29.0.0/16), whose addresses the host reaches directly: the router,
//     the service proxy and the agent's probes dial pod IPs as they do with
//     the process runtime. Docker hands containers only the lower half of
//     the subnet; service virtual IPs come from the upper half (default
//     172.29.255.0/24), which the host owns through a local route
//     (172.29.128.0/17 on lo), so the service proxy listens there and pods
//     reach it across the bridge;
//   - every container carries labels naming the Slipway that owns it (an id
//     kept in the driver's directory), its pod and its config, so that a
//     restarted Slipway adopts exactly its own containers and removes only
//     what it owns;
//   - each run of a container is a new Docker container; the previous run's
//     container is kept (stopped) for `logs --previous`, older ones are
//     removed.
//
// Images are never pulled: an image missing locally is an error that says
// how to build it.
package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// Labels on every container and on the network Slipway creates.
const (
	LabelManagedBy = "slipway.dev/managed-by" // the owning Slipway's id
	LabelPodUID    = "slipway.dev/pod-uid"
	LabelRole      = "slipway.dev/role" // "infra" or "app"
	LabelContainer = "slipway.dev/container"
	LabelRun       = "slipway.dev/run" // 1 for the first run, +1 per restart
	LabelPod       = "slipway.dev/pod-config"
	LabelConfig    = "slipway.dev/container-config"
	LabelHash      = "slipway.dev/config-hash"
	LabelNetwork   = "slipway.dev/network"

	roleInfra = "infra"
	roleApp   = "app"
)

// Defaults for Options.
var (
	DefaultNetwork = "slipway"
	DefaultSubnet  = netip.MustParsePrefix("172.29.0.0/16")
)

// Options configure a Driver. Zero values take the documented defaults.
type Options struct {
	// Dir holds the driver's id (the value of its managed-by label):
	// <data-dir>/runtime. Required.
	Dir string
	// Host is the engine's address (default: DOCKER_HOST, else the
	// platform's default socket).
	Host string
	// Network and Subnet name the bridge network pods live on; it is
	// created if missing.
	Network string
	Subnet  netip.Prefix
	// ServiceRange is where service virtual IPs come from: inside the
	// upper half of Subnet, which Docker never gives a container (default
	// DefaultServiceRange(Subnet)). New makes the host own it.
	ServiceRange netip.Prefix
	Logger       *slog.Logger
	// LogMaxBytes is the size at which Docker rotates a container's
	// json-file log (default 10 MiB); LogKeep is how many rotated files it
	// keeps beside the live one (default 1).
	LogMaxBytes int64
	LogKeep     int
}

func (o *Options) setDefaults() error {
	if o.Dir == "" {
		return fmt.Errorf("%w: Dir: must be set (the driver's state directory, <data-dir>/runtime)", runtime.ErrInvalid)
	}
	if o.Network == "" {
		o.Network = DefaultNetwork
	}
	if !o.Subnet.IsValid() {
		o.Subnet = DefaultSubnet
	}
	if !o.Subnet.Addr().Is4() || o.Subnet.Bits() > 28 {
		return fmt.Errorf("%w: Subnet: %s: must be an IPv4 prefix of at most /28", runtime.ErrInvalid, o.Subnet)
	}
	if !o.ServiceRange.IsValid() {
		o.ServiceRange = DefaultServiceRange(o.Subnet)
	}
	if err := CheckServiceRange(o.Subnet, o.ServiceRange); err != nil {
		return fmt.Errorf("%w: ServiceRange: %v", runtime.ErrInvalid, err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LogMaxBytes == 0 {
		o.LogMaxBytes = 10 << 20
	}
	if o.LogMaxBytes < 1024 {
		return fmt.Errorf("%w: LogMaxBytes: %d: must be at least 1024", runtime.ErrInvalid, o.LogMaxBytes)
	}
	if o.LogKeep == 0 {
		o.LogKeep = 1
	}
	if o.LogKeep < 0 {
		o.LogKeep = 0
	}
	return nil
}

// Driver implements runtime.Driver on a Docker engine.
type Driver struct {
	opts  Options
	log   *slog.Logger
	cli   *client.Client
	id    string // this Slipway's managed-by value
	pause string // the infra image's reference
	exits *runtime.ExitQueue

	bg       context.Context // cancelled by Close: ends watchers
	cancelBg context.CancelFunc
	watchers sync.WaitGroup

	recoverMu sync.Mutex
	recovered bool // Recover has run once

	mu     sync.Mutex
	closed bool
	pods   map[string]*pod
}

type pod struct {
	cfg     runtime.PodConfig
	ip      netip.Addr
	infraID string
	ready   chan struct{} // closed once the infra container runs (or failed)
	failed  error
	// opMu serialises what changes the pod's containers: starts, removal.
	opMu sync.Mutex

	// Guarded by Driver.mu.
	removed    bool
	containers map[string]*ctr
}

// ctr is one container of a pod: its current run and the previous one.
type ctr struct {
	cfg    runtime.ContainerConfig
	run    int
	id     string // the current run's Docker container
	prevID string // the previous run's, kept for its logs

	// Guarded by Driver.mu.
	status   runtime.ContainerStatus
	killSent bool
	done     chan struct{} // closed once the current run has ended and is recorded
}

var _ runtime.Driver = (*Driver)(nil)

// New connects to the engine, checks that it answers, and makes sure the
// pods' network and the infra image exist. Call Recover next.
func New(ctx context.Context, o Options) (*Driver, error) {
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	opts := []client.Opt{client.FromEnv}
	if o.Host != "" {
		opts = append(opts, client.WithHost(o.Host))
	}
	cli, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if err := Ping(ctx, cli); err != nil {
		cli.Close()
		return nil, err
	}
	id, err := loadID(o.Dir)
	if err != nil {
		cli.Close()
		return nil, err
	}
	bg, cancel := context.WithCancel(context.Background())
	d := &Driver{
		opts: o, log: o.Logger, cli: cli, id: id, exits: runtime.NewExitQueue(),
		bg: bg, cancelBg: cancel, pods: map[string]*pod{},
	}
	if err := d.ensureNetwork(ctx); err != nil {
		d.Close()
		return nil, err
	}
	if err := ensureServiceRange(o.Subnet, o.ServiceRange, d.log); err != nil {
		d.Close()
		return nil, err
	}
	if d.pause, err = ensurePauseImage(ctx, cli); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Ping checks that an engine answers, bounded to a few seconds, with an
// error that names where it looked.
func Ping(ctx context.Context, cli *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("cannot reach the Docker engine at %s: %w", cli.DaemonHost(), err)
	}
	return nil
}

// ID is this Slipway's managed-by label value.
func (d *Driver) ID() string { return d.id }

// Network is the name of the network pods live on.
func (d *Driver) Network() string { return d.opts.Network }

// ServiceRange is where service virtual IPs come from: addresses the host
// owns and the pods reach.
func (d *Driver) ServiceRange() netip.Prefix { return d.opts.ServiceRange }

// loadID reads the driver's id from dir, creating it on first use: it
// outlives restarts, so a restarted Slipway recognises its containers.
func loadID(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "docker-id")
	b, err := os.ReadFile(path)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if runtime.ValidatePod(runtime.PodConfig{UID: id}) != nil {
			return "", fmt.Errorf("%s: %q is not a valid id; remove the file to start afresh (containers of the old id are then left alone)", path, id)
		}
		return id, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 6)
	_, _ = rand.Read(raw)
	id := "slipway-" + hex.EncodeToString(raw)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", err
	}
	return id, nil
}

// Name implements runtime.Driver.
func (d *Driver) Name() string { return "docker" }

// Capabilities implements runtime.Driver: the engine enforces limits
// through its cgroups, and remembers exit codes across Slipway restarts.
func (d *Driver) Capabilities() runtime.Capabilities {
	return runtime.Capabilities{
		MemoryLimit:          runtime.Capability{Supported: true, Reason: "Docker memory limit (swap disabled)"},
		CPULimit:             runtime.Capability{Supported: true, Reason: "Docker NanoCPUs quota"},
		ExitCodeAfterRecover: true,
		Mounts:               runtime.Capability{Supported: true, Reason: "named volumes of the engine's local driver; a tmpfs per container run for medium Memory"},
		SizeLimit:            runtime.Capability{Reason: "local volumes have no quota: claims and emptyDirs are measured, not enforced (an emptyDir of medium Memory is a tmpfs of its sizeLimit)"},
	}
}

// Exits implements runtime.Driver.
func (d *Driver) Exits() <-chan runtime.ExitEvent { return d.exits.Out() }

// Close implements runtime.Driver: watchers stop, containers keep running.
func (d *Driver) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancelBg()
	d.watchers.Wait()
	d.exits.Close()
	return d.cli.Close()
}

func (d *Driver) isClosed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// getPod returns a pod whose sandbox is ready.
func (d *Driver) getPod(ctx context.Context, uid string) (*pod, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, runtime.ErrClosed
	}
	p := d.pods[uid]
	d.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: pod %q", runtime.ErrNotFound, uid)
	}
	select {
	case <-p.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.failed != nil {
		return nil, fmt.Errorf("%w: pod %q: its sandbox failed: %v", runtime.ErrNotFound, uid, p.failed)
	}
	return p, nil
}

// containerName is the Docker name of a pod's container run; it starts
// with the owner's id, so two Slipways on one engine never collide.
func (d *Driver) containerName(podUID, name string, run int) string {
	if name == "" {
		return d.id + "_" + podUID + "_" + roleInfra
	}
	return fmt.Sprintf("%s_%s_%s_%d", d.id, podUID, name, run)
}

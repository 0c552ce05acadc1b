package docker

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// The pods' subnet is split in two halves: Docker's IPAM hands containers
// addresses from the lower one only (the network's IPRange), and service
// virtual IPs come from the upper one. A VIP is then on-link for every pod
// (no route, no NAT: the pod ARPs for it and the host, owning it through a
// local route, answers), and never collides with a container's address.

// ContainerRange is the part of subnet Docker gives containers: its lower
// half.
func ContainerRange(subnet netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(subnet.Masked().Addr(), subnet.Bits()+1)
}

// serviceHalf is the part of subnet reserved for service virtual IPs.
func serviceHalf(subnet netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(lastAddr(subnet), subnet.Bits()+1).Masked()
}

// DefaultServiceRange is the last /24 of subnet (172.29.255.0/24 for the
// default 172.29.0.0/16), or its upper half when that is smaller.
func DefaultServiceRange(subnet netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(lastAddr(subnet), max(24, subnet.Bits()+1)).Masked()
}

// CheckServiceRange says why r cannot hold the service virtual IPs of pods
// on subnet, or nil: it must lie in the subnet's upper half, where Docker
// never places a container, and hold at least two usable addresses.
func CheckServiceRange(subnet, r netip.Prefix) error {
	half := serviceHalf(subnet)
	if !r.IsValid() || !r.Addr().Is4() || !half.Contains(r.Addr()) || r.Bits() < half.Bits() {
		return fmt.Errorf("%s: must lie inside %s, the upper half of the Docker network's subnet %s, which Docker never gives a container (for example %s): pods reach service addresses only on their own network",
			r, half, subnet, DefaultServiceRange(subnet))
	}
	if r.Bits() > 30 {
		return fmt.Errorf("%s: must be at most a /30 (a range needs usable addresses besides its first and last)", r)
	}
	return nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(a[:]) | (uint32(1)<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(a[:], v)
	return netip.AddrFrom4(a)
}

// networkVerdict is what to do with an existing network of the pods' name.
type networkVerdict int

const (
	networkOK       networkVerdict = iota
	networkRecreate                // Slipway's, but made without the container range; unused
)

// judgeNetwork decides whether an existing network can hold the pods: it
// must be Slipway's, on the subnet, with Docker's allocation confined to
// the container range (else a container could take a service address). An
// older Slipway's network lacks the range: it is recreated when no
// container uses it, and refused with a clear error otherwise.
func judgeNetwork(name string, nw network.Inspect, subnet netip.Prefix) (networkVerdict, error) {
	if nw.Labels[LabelNetwork] != name {
		return 0, fmt.Errorf("docker network %q exists but was not created by Slipway (no %s label); remove it or choose another network", name, LabelNetwork)
	}
	want := ContainerRange(subnet)
	if len(nw.IPAM.Config) == 1 && nw.IPAM.Config[0].Subnet == subnet && nw.IPAM.Config[0].IPRange == want {
		return networkOK, nil
	}
	var have []string
	for _, c := range nw.IPAM.Config {
		h := "subnet " + c.Subnet.String()
		if c.IPRange.IsValid() {
			h += " ip-range " + c.IPRange.String()
		}
		have = append(have, h)
	}
	if len(nw.Containers) > 0 {
		return 0, fmt.Errorf("docker network %q has %v but Slipway needs subnet %s with ip-range %s (containers confined to the lower half; service addresses live in the upper half), and %d container(s) still use it: stop them (or the Slipway that runs them), then start again and Slipway recreates it",
			name, have, subnet, want, len(nw.Containers))
	}
	return networkRecreate, nil
}

// ensureNetwork finds or creates the pods' bridge network. Two Slipways
// (or test processes) racing to create it are kept apart by the engine:
// a second network on the same subnet is refused, and the loser re-reads.
func (d *Driver) ensureNetwork(ctx context.Context) error {
	name, subnet := d.opts.Network, d.opts.Subnet
	for attempt := 0; ; attempt++ {
		res, err := d.cli.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		switch {
		case err == nil:
			verdict, err := judgeNetwork(name, res.Network, subnet)
			if err != nil || verdict == networkOK {
				return err
			}
			// Someone may attach a container in between: the engine then
			// refuses the removal and the next attempt judges again.
			if _, err := d.cli.NetworkRemove(ctx, res.Network.ID, client.NetworkRemoveOptions{}); err == nil {
				d.log.Info("removed the pods' network to recreate it with a container range", "network", name, "ipRange", ContainerRange(subnet))
			} else if !cerrdefs.IsNotFound(err) && attempt >= 9 {
				return fmt.Errorf("recreating docker network %q: %w", name, err)
			}
		case !cerrdefs.IsNotFound(err):
			return fmt.Errorf("docker network %q: %w", name, err)
		default:
			_, err = d.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
				Driver: "bridge",
				IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet, IPRange: ContainerRange(subnet)}}},
				Labels: map[string]string{LabelNetwork: name},
			})
			if err == nil {
				d.log.Info("created the pods' network", "network", name, "subnet", subnet, "containerRange", ContainerRange(subnet))
				return nil
			}
			if attempt >= 9 {
				return fmt.Errorf("creating docker network %q on %s: %w", name, subnet, err)
			}
		}
		// Most likely another Slipway created or removed it a moment ago;
		// the engine makes that visible by name shortly.
		select {
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ensureServiceRange makes the host own the subnet's reserved half, and so
// r, so that the service proxy can listen on its addresses and pods on the
// bridge reach them: one local route (`ip route add local HALF dev lo`),
// the same for every Slipway on the network whatever range each takes.
// The route stays when Slipway stops: other Slipways may use it, and
// without a listener an address of it only refuses connections; nothing
// leaves the machine.
func ensureServiceRange(subnet, r netip.Prefix, log *slog.Logger) error {
	probe := r.Masked().Addr().Next()
	if canBind(probe) == nil {
		return nil
	}
	half := serviceHalf(subnet)
	if err := addLocalRoute(half); err != nil {
		return fmt.Errorf("service range %s: making this host own %s: %w (run Slipway as root, or add the route yourself: ip route add local %s dev lo)", r, half, err, half)
	}
	if err := canBind(probe); err != nil {
		return fmt.Errorf("service range %s: added the local route, but %s still cannot be bound: %w", r, probe, err)
	}
	log.Info("the host now owns the service addresses", "range", half, "route", "local "+half.String()+" dev lo")
	return nil
}

func canBind(a netip.Addr) error {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(a, 0).String())
	if err != nil {
		return err
	}
	return ln.Close()
}

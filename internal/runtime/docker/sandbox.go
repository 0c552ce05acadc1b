package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strconv"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

var errNotFound = runtime.ErrNotFound

// labels are what every container of a pod carries.
func (d *Driver) labels(podUID, role, name string, run int) map[string]string {
	l := map[string]string{LabelManagedBy: d.id, LabelPodUID: podUID, LabelRole: role}
	if role == roleApp {
		l[LabelContainer] = name
		l[LabelRun] = strconv.Itoa(run)
	}
	return l
}

// CreateSandbox implements runtime.Driver: it starts the pod's infra
// container on the pods' network; its address is the pod's.
func (d *Driver) CreateSandbox(ctx context.Context, cfg runtime.PodConfig) (runtime.Sandbox, error) {
	if err := runtime.ValidatePod(cfg); err != nil {
		return runtime.Sandbox{}, err
	}
	if err := runtime.ValidateVolumes(cfg.Volumes, nil); err != nil {
		return runtime.Sandbox{}, err
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.Sandbox{}, runtime.ErrClosed
	}
	if p := d.pods[cfg.UID]; p != nil {
		d.mu.Unlock()
		select {
		case <-p.ready:
		case <-ctx.Done():
			return runtime.Sandbox{}, ctx.Err()
		}
		if p.failed != nil {
			return runtime.Sandbox{}, p.failed
		}
		return runtime.Sandbox{PodUID: cfg.UID, IP: p.ip}, nil
	}
	p := &pod{cfg: cfg, ready: make(chan struct{}), containers: map[string]*ctr{}}
	d.pods[cfg.UID] = p
	d.mu.Unlock()

	err := d.setupVolumes(ctx, cfg)
	if err == nil {
		err = d.startInfra(ctx, p)
	}
	if err != nil {
		_ = d.removePodVolumes(context.WithoutCancel(ctx), cfg.UID)
		p.failed = err
		d.mu.Lock()
		delete(d.pods, cfg.UID)
		d.mu.Unlock()
	}
	close(p.ready)
	if err != nil {
		return runtime.Sandbox{}, err
	}
	d.log.Debug("sandbox created", "pod", cfg.UID, "ip", p.ip, "infra", short(p.infraID))
	return runtime.Sandbox{PodUID: cfg.UID, IP: p.ip}, nil
}

func (d *Driver) startInfra(ctx context.Context, p *pod) error {
	labels := d.labels(p.cfg.UID, roleInfra, "", 0)
	rec := p.cfg
	rec.Volumes = runtime.Recorded(rec.Volumes) // never the files: they may be secrets
	b, _ := json.Marshal(rec)                   // cannot fail: strings, maps of strings, integers
	labels[LabelPod] = string(b)
	hostname := p.cfg.Name
	if len(hostname) > 63 || runtime.ValidatePod(runtime.PodConfig{UID: hostname}) != nil {
		hostname = ""
	}
	opts := client.ContainerCreateOptions{
		Name: d.containerName(p.cfg.UID, "", 0),
		Config: &container.Config{
			Image: d.pause, Labels: labels, Hostname: hostname,
		},
		HostConfig: &container.HostConfig{
			NetworkMode: container.NetworkMode(d.opts.Network),
			LogConfig:   container.LogConfig{Type: "none"},
		},
	}
	created, err := d.cli.ContainerCreate(ctx, opts)
	if cerrdefs.IsConflict(err) {
		// A container of that name is left from a failed attempt or from a
		// Slipway that was not recovered: it is ours (the name holds our
		// id), and holds no running app, or Recover would have adopted it.
		d.forceRemove(ctx, opts.Name)
		created, err = d.cli.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("pod %q: creating the infra container: %w", p.cfg.UID, err)
	}
	if _, err := d.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		d.forceRemove(context.WithoutCancel(ctx), created.ID)
		return fmt.Errorf("pod %q: starting the infra container: %w", p.cfg.UID, err)
	}
	ip, err := d.infraIP(ctx, created.ID)
	if err != nil {
		d.forceRemove(context.WithoutCancel(ctx), created.ID)
		return fmt.Errorf("pod %q: %w", p.cfg.UID, err)
	}
	p.infraID, p.ip = created.ID, ip
	return nil
}

// infraIP is the infra container's address on the pods' network.
func (d *Driver) infraIP(ctx context.Context, id string) (netip.Addr, error) {
	ins, err := d.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return netip.Addr{}, fmt.Errorf("inspecting the infra container: %w", err)
	}
	if ns := ins.Container.NetworkSettings; ns != nil {
		if ep := ns.Networks[d.opts.Network]; ep != nil && ep.IPAddress.IsValid() {
			return ep.IPAddress, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("the infra container %s has no address on network %q", short(id), d.opts.Network)
}

// RemoveSandbox implements runtime.Driver: whatever still runs is killed
// (and reported on Exits), then every container of the pod — its runs,
// kept runs and infra container — is removed.
func (d *Driver) RemoveSandbox(ctx context.Context, podUID string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return runtime.ErrClosed
	}
	p := d.pods[podUID]
	d.mu.Unlock()
	if p != nil {
		select {
		case <-p.ready:
		case <-ctx.Done():
			return ctx.Err()
		}
		p.opMu.Lock()
		defer p.opMu.Unlock()
		d.mu.Lock()
		p.removed = true
		var running []*ctr
		for _, c := range p.containers {
			if !isDone(c.done) {
				running = append(running, c)
			}
		}
		d.mu.Unlock()
		for _, c := range running {
			if err := d.kill(ctx, c, 0); err != nil {
				return fmt.Errorf("pod %q: %w", podUID, err)
			}
		}
	}
	// Listing by label also finds what no record names: runs left by a
	// crash between create and record, or a pod removed before Recover.
	list, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", LabelManagedBy+"="+d.id, LabelPodUID+"="+podUID),
	})
	if err != nil {
		return fmt.Errorf("pod %q: listing its containers: %w", podUID, err)
	}
	// App containers first: the infra container holds their namespace.
	sort.SliceStable(list.Items, func(i, j int) bool {
		return list.Items[i].Labels[LabelRole] != roleInfra && list.Items[j].Labels[LabelRole] == roleInfra
	})
	for _, s := range list.Items {
		if err := d.remove(ctx, s.ID); err != nil {
			return fmt.Errorf("pod %q: %w", podUID, err)
		}
	}
	if err := d.removePodVolumes(ctx, podUID); err != nil {
		return err
	}
	d.mu.Lock()
	if d.pods[podUID] == p {
		delete(d.pods, podUID)
	}
	d.mu.Unlock()
	return nil
}

// remove force-removes a container; one already gone is not an error.
func (d *Driver) remove(ctx context.Context, id string) error {
	_, err := d.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("removing container %s: %w", short(id), err)
	}
	return nil
}

// forceRemove is remove for clean-up paths, where an error is only logged.
func (d *Driver) forceRemove(ctx context.Context, id string) {
	if err := d.remove(ctx, id); err != nil {
		d.log.Warn("clean-up failed", "err", err)
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

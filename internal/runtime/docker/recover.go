package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"slipway.dev/slipway/internal/runtime"
)

// Recover implements runtime.Driver: it lists the containers labelled with
// this Slipway's id, rebuilds its pods from their labels, adopts the runs
// still running and removes what cannot be used (app containers whose
// infra container is gone, runs older than the previous one).
func (d *Driver) Recover(ctx context.Context) ([]runtime.RecoveredSandbox, error) {
	d.recoverMu.Lock()
	defer d.recoverMu.Unlock()
	if d.recovered {
		return d.view(), nil
	}
	began := time.Now()
	list, err := d.cli.ContainerList(ctx, client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", LabelManagedBy+"="+d.id),
	})
	if err != nil {
		return nil, fmt.Errorf("listing Slipway's containers: %w", err)
	}
	type found struct {
		infra *container.Summary
		apps  map[string][]container.Summary // by container name
	}
	byPod := map[string]*found{}
	for i, s := range list.Items {
		uid := s.Labels[LabelPodUID]
		f := byPod[uid]
		if f == nil {
			f = &found{apps: map[string][]container.Summary{}}
			byPod[uid] = f
		}
		if s.Labels[LabelRole] == roleInfra {
			f.infra = &list.Items[i]
		} else {
			f.apps[s.Labels[LabelContainer]] = append(f.apps[s.Labels[LabelContainer]], s)
		}
	}
	for uid, f := range byPod {
		d.mu.Lock()
		known := d.pods[uid] != nil
		d.mu.Unlock()
		if known {
			continue
		}
		p, err := d.recoverPod(ctx, uid, f.infra)
		var lost errLost
		if err != nil && !errors.As(err, &lost) {
			// The engine failed us (or ctx ended): nothing is known to be
			// lost, so nothing is removed.
			return nil, fmt.Errorf("pod %q: %w", uid, err)
		}
		if err != nil {
			d.log.Warn("removing a pod that cannot be recovered", "pod", uid, "err", err)
			for _, runs := range f.apps {
				for _, s := range runs {
					d.forceRemove(ctx, s.ID)
				}
			}
			if f.infra != nil {
				d.forceRemove(ctx, f.infra.ID)
			}
			continue
		}
		for name, runs := range f.apps {
			sort.Slice(runs, func(i, j int) bool { return runNumber(runs[i]) > runNumber(runs[j]) })
			for _, s := range runs[min(2, len(runs)):] {
				d.forceRemove(ctx, s.ID)
			}
			c, err := d.recoverContainer(ctx, runs[0])
			if err != nil {
				return nil, fmt.Errorf("pod %q: container %q: %w", uid, name, err)
			}
			if len(runs) > 1 {
				c.prevID = runs[1].ID
			}
			p.containers[name] = c
		}
		d.mu.Lock()
		d.pods[uid] = p
		for _, c := range p.containers {
			if !isDone(c.done) && !d.closed {
				d.watchers.Add(1)
				go d.watch(uid, c)
			}
		}
		d.mu.Unlock()
	}
	d.recovered = true
	view := d.view()
	d.log.Info("recovered Slipway's containers", "pods", len(view), "containers", len(list.Items), "took", time.Since(began).Round(time.Millisecond))
	return view, nil
}

// errLost says why a pod left by a previous Slipway can never run again.
type errLost struct{ why string }

func (e errLost) Error() string { return e.why }

func runNumber(s container.Summary) int {
	n, _ := strconv.Atoi(s.Labels[LabelRun])
	return n
}

// recoverPod rebuilds a pod from its infra container, starting it again if
// it stopped (after an engine restart); apps then restart into it.
func (d *Driver) recoverPod(ctx context.Context, uid string, infra *container.Summary) (*pod, error) {
	if infra == nil {
		return nil, errLost{"its infra container is gone"}
	}
	var cfg runtime.PodConfig
	if err := json.Unmarshal([]byte(infra.Labels[LabelPod]), &cfg); err != nil || cfg.UID != uid {
		return nil, errLost{fmt.Sprintf("its infra container's %s label is unreadable (%v)", LabelPod, err)}
	}
	if infra.State != container.StateRunning {
		if _, err := d.cli.ContainerStart(ctx, infra.ID, client.ContainerStartOptions{}); err != nil {
			return nil, fmt.Errorf("restarting its infra container: %w", err)
		}
	}
	ip, err := d.infraIP(ctx, infra.ID)
	if err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	close(ready)
	return &pod{cfg: cfg, ip: ip, infraID: infra.ID, ready: ready, containers: map[string]*ctr{}}, nil
}

func (d *Driver) recoverContainer(ctx context.Context, s container.Summary) (*ctr, error) {
	ins, err := d.cli.ContainerInspect(ctx, s.ID, client.ContainerInspectOptions{})
	if err != nil {
		return nil, err
	}
	var env []string
	if ins.Container.Config != nil {
		env = ins.Container.Config.Env
	}
	cfg, err := configFromLabel(s.Labels[LabelConfig], env)
	if err != nil {
		return nil, fmt.Errorf("its %s label is unreadable: %v", LabelConfig, err)
	}
	c := &ctr{cfg: cfg, run: runNumber(s), id: s.ID, done: make(chan struct{})}
	st := ins.Container.State
	hash := s.Labels[LabelHash]
	if st != nil && st.Running {
		c.status = runtime.ContainerStatus{
			Name: cfg.Name, State: runtime.StateRunning, PID: st.Pid,
			StartedAt: parseTime(st.StartedAt), ConfigHash: hash,
		}
		return c, nil
	}
	if st == nil {
		st = &container.State{ExitCode: -1}
	}
	// It ended while no Slipway watched: the engine still knows how.
	c.status = exitedStatus(cfg.Name, hash, 0, st)
	close(c.done)
	return c, nil
}

// view is every pod the driver knows, sorted by UID, containers by name.
func (d *Driver) view() []runtime.RecoveredSandbox {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := []runtime.RecoveredSandbox{}
	for uid, p := range d.pods {
		if !isDone(p.ready) || p.failed != nil || p.removed {
			continue
		}
		rs := runtime.RecoveredSandbox{Pod: p.cfg, Sandbox: runtime.Sandbox{PodUID: uid, IP: p.ip}}
		for _, c := range p.containers {
			rs.Containers = append(rs.Containers, runtime.RecoveredContainer{Config: c.cfg, Status: c.status})
		}
		sort.Slice(rs.Containers, func(i, j int) bool { return rs.Containers[i].Config.Name < rs.Containers[j].Config.Name })
		out = append(out, rs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pod.UID < out[j].Pod.UID })
	return out
}

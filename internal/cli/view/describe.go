package view

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"slipway.dev/slipway/internal/api"
)

// Describe writes a person-readable account of o. Secret values never
// appear: only their keys and sizes.
func Describe(w io.Writer, o api.Object, events []*api.Event, metrics Metrics, now time.Time) {
	d := &descWriter{w: w}
	m := o.GetMeta()
	d.kv(0, "Name", m.Name)
	if m.Project != "" {
		d.kv(0, "Project", m.Project)
	}
	d.kv(0, "Kind", o.GetTypeMeta().Kind)
	d.kv(0, "Labels", formatLabels(m.Labels))
	d.kv(0, "Annotations", formatLabels(m.Annotations))
	d.kv(0, "Created", fmt.Sprintf("%s (%s ago)", m.CreationTimestamp.Format(time.RFC3339), formatAge(m.CreationTimestamp, now)))
	d.kv(0, "UID", m.UID)
	d.kv(0, "Resource Version", fmt.Sprint(m.ResourceVersion))
	switch x := o.(type) {
	case *api.App:
		describeApp(d, x)
	case *api.Revision:
		d.kv(0, "App", x.Spec.App)
		d.kv(0, "Number", fmt.Sprint(x.Spec.Number))
		d.kv(0, "Template Hash", x.Spec.TemplateHash)
		d.kv(0, "Replicas", fmt.Sprintf("%d desired | %d ready | %d available", x.Spec.Replicas, x.Status.ReadyReplicas, x.Status.AvailableReplicas))
		describeContainers(d, x.Spec.Template.Containers)
	case *api.Pod:
		describePod(d, x, now)
	case *api.Service:
		d.kv(0, "Selector", formatLabels(x.Spec.Selector))
		d.kv(0, "Cluster IP", cmp.Or(x.Status.ClusterIP, "<pending>"))
		for _, p := range x.Spec.Ports {
			d.kv(0, "Port", fmt.Sprintf("%s %d/%s -> %s", cmp.Or(p.Name, "<unnamed>"), p.Port, cmp.Or(p.Protocol, "TCP"), p.TargetPort.String()))
		}
		describeConditions(d, x.Status.Conditions)
	case *api.Route:
		describeRoute(d, x, metrics)
	case *api.Secret:
		d.kv(0, "Type", cmp.Or(x.Type, "Opaque"))
		d.line(0, "Data:")
		for _, k := range slices.Sorted(maps.Keys(x.Data)) {
			d.kv(1, k, fmt.Sprintf("%d bytes", len(x.Data[k])))
		}
	case *api.Project:
		d.kv(0, "Display Name", cmp.Or(x.Spec.DisplayName, "-"))
		d.kv(0, "Description", cmp.Or(x.Spec.Description, "-"))
		d.kv(0, "Status", cmp.Or(x.Status.Phase, "-"))
	case *api.Build, *api.ImageStream:
		describeBuildKinds(d, x)
	case *api.PersistentVolumeClaim, *api.ConfigMap:
		describeVolumeKinds(d, x) // volumes.go
	case *api.Event:
		d.kv(0, "Object", fmt.Sprintf("%s/%s", strings.ToLower(x.InvolvedObject.Kind), x.InvolvedObject.Name))
		d.kv(0, "Type", x.Type)
		d.kv(0, "Reason", x.Reason)
		d.kv(0, "Message", x.Message)
		d.kv(0, "Count", fmt.Sprint(x.Count))
		d.kv(0, "First Seen", x.FirstTimestamp.Format(time.RFC3339))
		d.kv(0, "Last Seen", x.LastTimestamp.Format(time.RFC3339))
	}
	d.flush()
	if _, isEvent := o.(*api.Event); isEvent {
		return
	}
	fmt.Fprintln(w, "Events:")
	if len(events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].LastTimestamp.Before(events[j].LastTimestamp) })
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tREASON\tAGE\tFROM\tMESSAGE")
	for _, ev := range events {
		age := formatAge(ev.LastTimestamp, now)
		if ev.Count > 1 {
			age = fmt.Sprintf("%s (x%d over %s)", age, ev.Count, formatAge(ev.FirstTimestamp, now))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", ev.Type, ev.Reason, age, cmp.Or(ev.Source, "-"), ev.Message)
	}
	tw.Flush()
}

func describeApp(d *descWriter, a *api.App) {
	replicas := valueOr(a.Spec.Replicas, 1)
	d.kv(0, "Replicas", fmt.Sprintf("%d desired | %d ready | %d up-to-date | %d available", replicas, a.Status.ReadyReplicas, upToDate(a), a.Status.AvailableReplicas))
	d.kv(0, "Strategy", cmp.Or(a.Spec.Strategy.Type, api.StrategyRolling))
	if r := a.Spec.Strategy.Rolling; r != nil {
		surge, unavail := "-", "-"
		if r.MaxSurge != nil {
			surge = r.MaxSurge.String()
		}
		if r.MaxUnavailable != nil {
			unavail = r.MaxUnavailable.String()
		}
		d.kv(1, "Max Surge", surge)
		d.kv(1, "Max Unavailable", unavail)
	}
	if c := a.Spec.Strategy.Canary; c != nil {
		for i, s := range c.Steps {
			d.kv(1, fmt.Sprintf("Step %d", i), describeStep(s))
		}
	}
	if a.Spec.Paused {
		d.kv(0, "Paused", "true")
	}
	d.kv(0, "Phase", appPhase(a))
	if a.Status.Message != "" {
		d.kv(0, "Message", a.Status.Message)
	}
	d.kv(0, "Serving Revision", revisionCell(ServingRevision(a)))
	d.kv(0, "Latest Revision", revisionCell(a.Status.LatestRevision))
	d.kv(0, "Stable Revision", revisionCell(a.Status.StableRevision))
	d.kv(0, "Traffic", formatTraffic(a.Status.Traffic))
	if v := Rollout(a); len(v) > 0 {
		d.line(0, "Rollout:")
		for _, l := range v {
			d.line(0, l)
		}
	}
	describeContainers(d, a.Spec.Template.Containers)
	describeVolumes(d, a.Spec.Template.Volumes)
	describeConditions(d, a.Status.Conditions)
}

func describeStep(s api.CanaryStep) string {
	switch {
	case s.SetWeight != nil:
		return fmt.Sprintf("setWeight %d", *s.SetWeight)
	case s.Pause != nil && s.Pause.Duration != "":
		return "pause " + string(s.Pause.Duration)
	case s.Pause != nil:
		return "pause until promoted"
	case s.Analysis != nil:
		return fmt.Sprintf("analysis (%d metrics)", len(s.Analysis.Metrics))
	}
	return "-"
}

func describeContainers(d *descWriter, cs []api.Container) {
	d.line(0, "Containers:")
	for _, c := range cs {
		d.line(1, c.Name+":")
		if c.Image != "" {
			d.kv(2, "Image", c.Image)
		}
		if len(c.Command) > 0 {
			d.kv(2, "Command", strings.Join(c.Command, " "))
		}
		if len(c.Args) > 0 {
			d.kv(2, "Args", strings.Join(c.Args, " "))
		}
		for _, p := range c.Ports {
			d.kv(2, "Port", fmt.Sprintf("%s %d/%s", cmp.Or(p.Name, "<unnamed>"), p.Port, cmp.Or(p.Protocol, "TCP")))
		}
		for _, pr := range []struct {
			name string
			p    *api.Probe
		}{{"Readiness", c.ReadinessProbe}, {"Liveness", c.LivenessProbe}, {"Startup", c.StartupProbe}} {
			if pr.p != nil {
				d.kv(2, pr.name, describeProbe(pr.p))
			}
		}
		for k, q := range c.Resources.Limits {
			d.kv(2, "Limit "+k, string(q))
		}
		describeMounts(d, 2, c.VolumeMounts)
		if len(c.Env) > 0 {
			d.line(2, "Environment:")
			for _, ev := range c.Env {
				v := ev.Value
				if ev.ValueFrom != nil && ev.ValueFrom.SecretKeyRef != nil {
					v = fmt.Sprintf("<set to the key %q of secret %q>", ev.ValueFrom.SecretKeyRef.Key, ev.ValueFrom.SecretKeyRef.Name)
				}
				d.kv(3, ev.Name, v)
			}
		}
	}
}

func describeProbe(p *api.Probe) string {
	var h string
	switch {
	case p.HTTPGet != nil:
		h = fmt.Sprintf("http-get %s://%s:%s%s", strings.ToLower(cmp.Or(p.HTTPGet.Scheme, "http")), p.HTTPGet.Host, p.HTTPGet.Port.String(), cmp.Or(p.HTTPGet.Path, "/"))
	case p.TCPSocket != nil:
		h = "tcp-socket :" + p.TCPSocket.Port.String()
	case p.Exec != nil:
		h = "exec " + strings.Join(p.Exec.Command, " ")
	}
	return fmt.Sprintf("%s delay=%ds timeout=%ds period=%ds #success=%d #failure=%d",
		h, p.InitialDelaySeconds, p.TimeoutSeconds, p.PeriodSeconds, p.SuccessThreshold, p.FailureThreshold)
}

func describePod(d *descWriter, p *api.Pod, now time.Time) {
	d.kv(0, "App", cmp.Or(p.Spec.App, "-"))
	d.kv(0, "Revision", revisionCell(p.Spec.Revision))
	d.kv(0, "Status", podStatus(p))
	d.kv(0, "IP", cmp.Or(p.Status.PodIP, "-"))
	if !p.Status.StartTime.IsZero() {
		d.kv(0, "Start Time", p.Status.StartTime.Format(time.RFC3339))
	}
	if p.Status.Message != "" {
		d.kv(0, "Message", p.Status.Message)
	}
	describeContainers(d, p.Spec.Containers)
	describeVolumes(d, p.Spec.Volumes)
	if len(p.Status.ContainerStatuses) > 0 {
		d.line(0, "Container Statuses:")
	}
	for _, cs := range p.Status.ContainerStatuses {
		d.line(1, cs.Name+":")
		d.kv(2, "State", describeState(cs.State))
		if cs.LastState != (api.ContainerState{}) {
			d.kv(2, "Last State", describeState(cs.LastState))
		}
		d.kv(2, "Ready", fmt.Sprint(cs.Ready))
		d.kv(2, "Restart Count", fmt.Sprint(cs.RestartCount))
		if len(cs.ProbeResults) > 0 {
			d.line(2, "Recent Probes:")
			for _, r := range cs.ProbeResults {
				out := "ok"
				if !r.Success {
					out = "FAILED"
				}
				detail := ""
				if r.StatusCode != 0 {
					detail += fmt.Sprintf(" status=%d", r.StatusCode)
				}
				if r.Error != "" {
					detail += " error=" + r.Error
				}
				if r.Body != "" {
					detail += fmt.Sprintf(" body=%q", r.Body)
				}
				d.line(3, fmt.Sprintf("%s %s %s in %.1fms%s (%s ago)", r.Probe, out, r.Time.Format(time.TimeOnly), r.DurationMS, detail, formatAge(r.Time, now)))
			}
		}
	}
	describeConditions(d, p.Status.Conditions)
}

func describeState(s api.ContainerState) string {
	switch {
	case s.Running != nil:
		return "Running since " + s.Running.StartedAt.Format(time.RFC3339)
	case s.Waiting != nil:
		return strings.TrimSpace("Waiting " + s.Waiting.Reason + " " + s.Waiting.Message)
	case s.Terminated != nil:
		t := s.Terminated
		msg := fmt.Sprintf("Terminated %s (exit code %d", cmp.Or(t.Reason, "Error"), t.ExitCode)
		if t.Signal != 0 {
			msg += fmt.Sprintf(", signal %d", t.Signal)
		}
		return msg + ")"
	}
	return "-"
}

// Metrics is the text of the API's /metrics, for describing a Route: the
// split the router measured. OK is false when it could not be read.
type Metrics struct {
	Text string
	OK   bool
}

func describeRoute(d *descWriter, r *api.Route, metrics Metrics) {
	d.kv(0, "Host", cmp.Or(r.Spec.Host, cmp.Or(r.Status.Host, "<default>")))
	d.kv(0, "Path", cmp.Or(r.Spec.Path, "/"))
	d.kv(0, "Backends", formatBackends(r.Spec))
	for _, m := range r.Spec.Match {
		var what string
		switch {
		case m.Header != nil:
			what = fmt.Sprintf("header %s=%s", m.Header.Name, m.Header.Value)
		case m.Cookie != nil:
			what = fmt.Sprintf("cookie %s=%s", m.Cookie.Name, m.Cookie.Value)
		case m.Query != nil:
			what = fmt.Sprintf("query %s=%s", m.Query.Name, m.Query.Value)
		}
		d.kv(0, "Match", what+" -> "+cmp.Or(m.Service, "<canary>"))
	}
	if a := r.Spec.SessionAffinity; a != nil {
		d.kv(0, "Session Affinity", fmt.Sprintf("%s %s ttl=%s", a.Type, a.CookieName, cmp.Or(string(a.TTL), "-")))
	}
	if t := r.Spec.TLS; t != nil {
		d.kv(0, "TLS", fmt.Sprintf("%s, certificate from secret %q, insecure: %s", t.Termination, t.SecretName, cmp.Or(t.InsecureEdgeTerminationPolicy, "None")))
	}
	if rr := r.Spec.Retries; rr != nil {
		d.kv(0, "Retries", fmt.Sprintf("%d on status %v", rr.Attempts, rr.OnStatus))
	}
	if mr := r.Spec.Mirror; mr != nil {
		d.kv(0, "Mirror", fmt.Sprintf("%d%% of requests copied to %s (answers dropped)", mr.Percent, mr.Service))
	}
	describeSplit(d, r, metrics.Text, metrics.OK)
	describeConditions(d, r.Status.Conditions)
}

func describeConditions(d *descWriter, conds []api.Condition) {
	if len(conds) == 0 {
		return
	}
	d.line(0, "Conditions:")
	for _, c := range conds {
		msg := c.Status
		if c.Reason != "" {
			msg += " " + c.Reason
		}
		if c.Message != "" {
			msg += ": " + c.Message
		}
		d.kv(1, c.Type, msg)
	}
}

// descWriter aligns "Key: value" pairs at each indentation level.
type descWriter struct {
	w  io.Writer
	tw *tabwriter.Writer
}

func (d *descWriter) writer() *tabwriter.Writer {
	if d.tw == nil {
		d.tw = tabwriter.NewWriter(d.w, 0, 8, 1, ' ', 0)
	}
	return d.tw
}

func (d *descWriter) kv(indent int, k, v string) {
	if v == "" {
		v = "<none>"
	}
	fmt.Fprintf(d.writer(), "%s%s:\t%s\n", strings.Repeat("  ", indent), k, v)
}

func (d *descWriter) line(indent int, s string) {
	fmt.Fprintf(d.writer(), "%s%s\n", strings.Repeat("  ", indent), s)
}

func (d *descWriter) flush() {
	if d.tw != nil {
		d.tw.Flush()
	}
}

// describeBuildKinds is `describe` for builds and image streams.
func describeBuildKinds(d *descWriter, o api.Object) {
	switch x := o.(type) {
	case *api.Build:
		d.kv(0, "App", x.Spec.App)
		d.kv(0, "Number", strconv.FormatInt(x.Spec.Number, 10))
		src := x.Spec.Source.Type
		if x.Spec.Source.ArchiveDigest != "" {
			src += fmt.Sprintf(" (%d bytes, %s)", x.Spec.Source.ArchiveBytes, x.Spec.Source.ArchiveDigest)
		}
		d.kv(0, "Source", src)
		strat := cmp.Or(x.Spec.Strategy.Type, "<detected>")
		if x.Status.Strategy != "" {
			strat = x.Status.Strategy
		}
		d.kv(0, "Strategy", strat)
		d.kv(0, "Phase", cmp.Or(x.Status.Phase, api.BuildNew))
		if !x.Status.StartTime.IsZero() {
			d.kv(0, "Started", x.Status.StartTime.Format(time.RFC3339))
		}
		d.kv(0, "Duration", cmp.Or(x.Status.Duration, "-"))
		d.kv(0, "Image", cmp.Or(x.Status.Image, "-"))
		d.kv(0, "Image Digest", cmp.Or(x.Status.ImageDigest, "-"))
		d.kv(0, "Message", cmp.Or(x.Status.Message, "-"))
		d.kv(0, "Log", "slipway build logs "+x.Metadata.Name)
	case *api.ImageStream:
		d.kv(0, "History Limit", itoa(valueOr(x.Spec.HistoryLimit, api.DefaultImageHistoryLimit)))
		d.line(0, "Images:")
		for _, im := range x.Status.Images {
			d.kv(1, im.Image, fmt.Sprintf("%s  build %s  %s  %s", cmp.Or(im.Digest, "-"), im.Build, im.Created.Format(time.RFC3339), im.Source))
		}
	}
}

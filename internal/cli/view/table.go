// Package view renders Slipway objects for a person: get's tables,
// describe's accounts (with the split the router measured for a route) and
// a rollout's progress and history. It is pure presentation: api objects and
// a time in, text out; the commands that fetch them are in package cli.
package view

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"slipway.dev/slipway/internal/api"
)

// columns returns the table columns of a kind; wide adds the -o wide ones.
// now is passed in so AGE is computed once per print.
func columns(obj api.Object, wide bool, now time.Time) (header []string, row []string) {
	m := obj.GetMeta()
	age := formatAge(m.CreationTimestamp, now)
	switch o := obj.(type) {
	case *api.Project:
		return []string{"NAME", "DISPLAY NAME", "STATUS", "AGE"},
			[]string{m.Name, o.Spec.DisplayName, cmp.Or(o.Status.Phase, "-"), age}
	case *api.App:
		desired := valueOr(o.Spec.Replicas, 1)
		h := []string{"NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REVISION", "STRATEGY", "PHASE", "AGE"}
		r := []string{m.Name, fmt.Sprintf("%d/%d", min(o.Status.ReadyReplicas, desired), desired), itoa(upToDate(o)), itoa(o.Status.AvailableReplicas),
			revisionCell(ServingRevision(o)), cmp.Or(o.Spec.Strategy.Type, "-"), appPhase(o), age}
		if wide {
			h = append(h, "LATEST", "TRAFFIC", "CONTAINERS")
			r = append(r, revisionCell(o.Status.LatestRevision), formatTraffic(o.Status.Traffic), containerNames(o.Spec.Template.Containers))
		}
		return h, r
	case *api.Revision:
		h := []string{"NAME", "APP", "DESIRED", "READY", "AVAILABLE", "AGE"}
		r := []string{m.Name, o.Spec.App, itoa(o.Spec.Replicas), itoa(o.Status.ReadyReplicas), itoa(o.Status.AvailableReplicas), age}
		if wide {
			h = append(h, "TEMPLATE-HASH")
			r = append(r, cmp.Or(o.Spec.TemplateHash, "-"))
		}
		return h, r
	case *api.Pod:
		ready, restarts := 0, int32(0)
		for _, cs := range o.Status.ContainerStatuses {
			if cs.Ready {
				ready++
			}
			restarts += cs.RestartCount
		}
		h := []string{"NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP"}
		r := []string{m.Name, fmt.Sprintf("%d/%d", ready, len(o.Spec.Containers)), podStatus(o), itoa(restarts), age, cmp.Or(o.Status.PodIP, "-")}
		if wide {
			h = append(h, "APP", "REVISION")
			r = append(r, cmp.Or(o.Spec.App, "-"), revisionCell(o.Spec.Revision))
		}
		return h, r
	case *api.Service:
		ports := make([]string, len(o.Spec.Ports))
		for i, p := range o.Spec.Ports {
			ports[i] = fmt.Sprintf("%d/%s", p.Port, cmp.Or(p.Protocol, api.ProtocolTCP))
			if !p.TargetPort.IsZero() && p.TargetPort.String() != strconv.Itoa(int(p.Port)) {
				ports[i] = fmt.Sprintf("%d:%s/%s", p.Port, p.TargetPort.String(), cmp.Or(p.Protocol, api.ProtocolTCP))
			}
		}
		ip := cmp.Or(o.Status.ClusterIP, "-")
		if c := api.FindCondition(o.Status.Conditions, "VIPBound"); c != nil && c.Status == api.ConditionFalse {
			ip += " (" + c.Reason + ")" // not served: describe says why
		}
		h := []string{"NAME", "CLUSTER-IP", "PORTS", "AGE"}
		r := []string{m.Name, ip, strings.Join(ports, ","), age}
		if wide {
			h = append(h, "SELECTOR")
			r = append(r, formatLabels(o.Spec.Selector))
		}
		return h, r
	case *api.Endpoints:
		var ready, notReady []string
		for _, a := range o.Addresses {
			for _, pt := range a.Ports {
				ep := fmt.Sprintf("%s:%d", a.IP, pt.TargetPort)
				if a.Ready {
					ready = append(ready, ep)
				} else {
					notReady = append(notReady, ep)
				}
			}
		}
		h := []string{"NAME", "ENDPOINTS", "AGE"}
		r := []string{m.Name, cmp.Or(strings.Join(ready, ","), "<none>"), age}
		if wide {
			h = append(h, "NOT READY")
			r = append(r, cmp.Or(strings.Join(notReady, ","), "<none>"))
		}
		return h, r
	case *api.Route:
		host := o.Spec.Host
		if host == "" {
			host = o.Status.Host
		}
		admitted := "-"
		if c := api.FindCondition(o.Status.Conditions, "Admitted"); c != nil {
			admitted = c.Status
		}
		return []string{"NAME", "HOST", "PATH", "BACKENDS", "ADMITTED", "AGE"},
			[]string{m.Name, cmp.Or(host, "-"), cmp.Or(o.Spec.Path, "/"), formatBackends(o.Spec), admitted, age}
	case *api.Secret:
		return []string{"NAME", "TYPE", "KEYS", "AGE"},
			[]string{m.Name, cmp.Or(o.Type, "Opaque"), cmp.Or(strings.Join(slices.Sorted(maps.Keys(o.Data)), ","), "-"), age}
	case *api.Event:
		return []string{"LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"},
			[]string{formatAge(o.LastTimestamp, now), o.Type, o.Reason,
				strings.ToLower(o.InvolvedObject.Kind) + "/" + o.InvolvedObject.Name, o.Message}
	case *api.Build, *api.ImageStream:
		return buildColumns(obj, wide, now)
	case *api.PersistentVolumeClaim, *api.ConfigMap:
		return volumeColumns(obj, wide, now) // volumes.go
	}
	return []string{"NAME", "AGE"}, []string{m.Name, age}
}

// ServingRevision is the revision that takes most of an App's traffic (the
// stable one when none has any yet): after a rollback, the older one, not
// the latest.
func ServingRevision(a *api.App) int64 {
	var best api.TrafficTarget
	for _, t := range a.Status.Traffic {
		if t.Weight > best.Weight {
			best = t
		}
	}
	if best.Weight > 0 {
		return best.Revision
	}
	return cmp.Or(a.Status.StableRevision, a.Status.LatestRevision)
}

// upToDate counts the pods of the latest revision, as kubectl's UP-TO-DATE.
func upToDate(a *api.App) int32 {
	for _, r := range a.Status.Revisions {
		if r.Revision == a.Status.LatestRevision {
			return r.Replicas
		}
	}
	return 0
}

// appPhase is the App's phase, RolledBack when it is Healthy on an older
// revision than its template's (rollout rollback).
func appPhase(a *api.App) string {
	if rolledBack(a) {
		return "RolledBack"
	}
	return cmp.Or(a.Status.Phase, "-")
}

// buildColumns are the table columns of builds and image streams.
func buildColumns(obj api.Object, wide bool, now time.Time) (header []string, row []string) {
	m := obj.GetMeta()
	age := formatAge(m.CreationTimestamp, now)
	switch o := obj.(type) {
	case *api.Build:
		h := []string{"NAME", "APP", "STRATEGY", "PHASE", "IMAGE", "DURATION", "AGE"}
		strat := o.Status.Strategy
		if strat == "" {
			strat = o.Spec.Strategy.Type
		}
		r := []string{m.Name, o.Spec.App, cmp.Or(strat, "-"), cmp.Or(o.Status.Phase, api.BuildNew), cmp.Or(o.Status.Image, "-"), cmp.Or(o.Status.Duration, "-"), age}
		if wide {
			h = append(h, "DIGEST", "MESSAGE")
			r = append(r, cmp.Or(shortDigest(o.Status.ImageDigest), "-"), cmp.Or(o.Status.Message, "-"))
		}
		return h, r
	case *api.ImageStream:
		latest, digest, updated := "-", "-", "-"
		if len(o.Status.Images) > 0 {
			im := o.Status.Images[0]
			latest, digest, updated = im.Image, cmp.Or(shortDigest(im.Digest), "-"), formatAge(im.Created, now)
		}
		h := []string{"NAME", "LATEST", "DIGEST", "IMAGES", "UPDATED", "AGE"}
		r := []string{m.Name, latest, digest, strconv.Itoa(len(o.Status.Images)), updated, age}
		if wide {
			h = append(h, "LIMIT")
			r = append(r, itoa(valueOr(o.Spec.HistoryLimit, api.DefaultImageHistoryLimit)))
		}
		return h, r
	}
	return []string{"NAME", "AGE"}, []string{m.Name, age}
}

// shortDigest keeps "sha256:" and 12 hex digits, as docker prints IDs.
func shortDigest(d string) string {
	if len(d) > len("sha256:")+12 {
		return d[:len("sha256:")+12]
	}
	return d
}

func podStatus(p *api.Pod) string {
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" && p.Status.Phase != api.PodSucceeded {
			return t.Reason
		}
	}
	if p.Status.Reason != "" {
		return p.Status.Reason
	}
	return cmp.Or(p.Status.Phase, api.PodPending)
}

func revisionCell(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func formatTraffic(ts []api.TrafficTarget) string {
	if len(ts) == 0 {
		return "-"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("r%d=%d%%", t.Revision, t.Weight)
	}
	return strings.Join(parts, ",")
}

func formatBackends(s api.RouteSpec) string {
	b := []api.RouteBackend{s.To}
	b = append(b, s.AlternateBackends...)
	if len(b) == 1 {
		return b[0].Service
	}
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%s(%d)", x.Service, valueOr(x.Weight, api.DefaultRouteWeight))
	}
	return strings.Join(parts, ",")
}

func containerNames(cs []api.Container) string {
	n := make([]string, len(cs))
	for i, c := range cs {
		n[i] = c.Name
	}
	return strings.Join(n, ",")
}

func formatLabels(l map[string]string) string {
	if len(l) == 0 {
		return "<none>"
	}
	keys := slices.Sorted(maps.Keys(l))
	for i, k := range keys {
		keys[i] = k + "=" + l[k]
	}
	return strings.Join(keys, ",")
}

// formatAge renders a duration the way kubectl does: 45s, 12m, 5h, 3d.
func formatAge(t, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

// valueOr is *p, or d when p is nil: an optional field's value or its
// default.
func valueOr[T any](p *T, d T) T {
	if p == nil {
		return d
	}
	return *p
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

// Table writes objs as aligned columns; withProject prepends PROJECT.
func Table(w io.Writer, objs []api.Object, wide, withProject, noHeader bool, now time.Time) error {
	var al Aligner
	return al.Print(w, objs, TableOptions{Wide: wide, WithProject: withProject, NoHeader: noHeader}, now)
}

// TableOptions say which columns a table has.
type TableOptions struct {
	Wide        bool // the -o wide columns
	WithProject bool // PROJECT first (-A)
	NoHeader    bool
	ShowLabels  bool // LABELS last (--show-labels)
	KindPrefix  bool // NAME as kind/name, when a listing mixes kinds (get all)
}

// Row is one object's table row: header and cells.
func Row(o api.Object, opts TableOptions, now time.Time) (header, row []string) {
	h, r := columns(o, opts.Wide, now)
	if opts.KindPrefix && len(r) > 0 && h[0] == "NAME" {
		r[0] = strings.ToLower(o.GetTypeMeta().Kind) + "/" + r[0]
	}
	if opts.WithProject {
		h = append([]string{"PROJECT"}, h...)
		r = append([]string{o.GetMeta().Project}, r...)
	}
	if opts.ShowLabels {
		h = append(h, "LABELS")
		r = append(r, formatLabels(o.GetMeta().Labels))
	}
	return h, r
}

// Aligner writes table rows whose columns stay aligned from one call to
// the next, as a watch prints rows one by one under the first listing's
// header: a column only ever widens (when a later cell is wider), as
// kubectl's watch does. Each column is padded to its width plus 3 spaces,
// as text/tabwriter would with the same padding.
type Aligner struct {
	widths []int
}

// Print writes objs as rows (with the header unless opts.NoHeader).
func (al *Aligner) Print(w io.Writer, objs []api.Object, opts TableOptions, now time.Time) error {
	var header []string
	rows := make([][]string, 0, len(objs))
	for _, o := range objs {
		h, r := Row(o, opts, now)
		if header == nil {
			header = h
		}
		rows = append(rows, r)
	}
	if opts.NoHeader {
		header = nil
	}
	return al.Rows(w, header, rows)
}

// Rows writes a header (none when nil) and rows.
func (al *Aligner) Rows(w io.Writer, header []string, rows [][]string) error {
	all := rows
	if header != nil {
		all = append([][]string{header}, rows...)
	}
	for _, r := range all {
		for i, c := range r {
			if i == len(al.widths) {
				al.widths = append(al.widths, 0)
			}
			al.widths[i] = max(al.widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range all {
		for i, c := range r {
			b.WriteString(c)
			if i < len(r)-1 {
				b.WriteString(strings.Repeat(" ", al.widths[i]-utf8.RuneCountInString(c)+3))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

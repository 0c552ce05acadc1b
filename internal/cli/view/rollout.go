package view

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"slipway.dev/slipway/internal/api"
)

// RestartedAtAnnotation is set on an App's pod template by `rollout
// restart`: a template change, hence a new revision with fresh pods.
const RestartedAtAnnotation = "slipway.dev/restartedAt"

// rolledBack reports a rollout rolled back: the app serves, but not the
// revision its template asks for.
func rolledBack(a *api.App) bool {
	ro := a.Status.Rollout
	return ro != nil && ro.State == api.RolloutRolledBack && ro.Revision == a.Status.LatestRevision
}

// RolloutLine describes where an App's rollout stands: the headline of
// rollout status, done when it ended and failed when it did not complete.
func RolloutLine(a *api.App) (line string, done, failed bool) {
	st := a.Status
	want := valueOr(a.Spec.Replicas, 1)
	switch {
	case st.ObservedGeneration < a.Metadata.Generation:
		return fmt.Sprintf("Waiting for app/%s's change to be observed...", a.Metadata.Name), false, false
	case st.Phase == api.AppDegraded:
		return fmt.Sprintf("app/%s is Degraded: %s", a.Metadata.Name, st.Message), true, true
	case rolledBack(a):
		return fmt.Sprintf("app/%s was rolled back to revision %d (revision %d is held until the template changes or rollout retry)", a.Metadata.Name, st.StableRevision, st.Rollout.Revision), true, true
	case st.Phase == api.AppHealthy:
		return fmt.Sprintf("app/%s successfully rolled out (revision %d, %d/%d pods ready)", a.Metadata.Name, st.LatestRevision, latestReady(a), want), true, false
	case st.Phase == api.AppPaused:
		return fmt.Sprintf("app/%s is paused: %s (%s)", a.Metadata.Name, st.Message, WaitingFor(a)), false, false
	}
	ready := latestReady(a)
	return fmt.Sprintf("Waiting for the rollout of app/%s to finish: revision %d, %d of %d pods ready, traffic %s",
		a.Metadata.Name, st.LatestRevision, ready, want, formatTraffic(st.Traffic)), false, false
}

// latestReady is the ready pods of the latest revision, counted up to the
// desired number: old revisions' pods are not the new revision's, and
// pods beyond spec.replicas (a scale-down's, still draining) are on their
// way out, so "7/5 ready" never reads.
func latestReady(a *api.App) int32 {
	want := valueOr(a.Spec.Replicas, 1)
	for _, r := range a.Status.Revisions {
		if r.Revision == a.Status.LatestRevision {
			return min(r.Ready, want)
		}
	}
	return min(a.Status.ReadyReplicas, want)
}

// WaitingFor returns the command that continues a rollout waiting for a
// person, "" when it is not waiting for one: a BlueGreen preview before
// promotion or a Canary at a pause without a duration wait for rollout
// promote, an app paused by rollout pause (spec.paused) for rollout resume.
// A timed pause or an auto-promotion waits for the clock, not a person.
func WaitingFor(a *api.App) string {
	st := a.Status
	if st.ObservedGeneration < a.Metadata.Generation || st.Phase != api.AppPaused {
		return ""
	}
	verb := "promote"
	if a.Spec.Paused {
		verb = "resume"
	}
	cmd := "slipway rollout " + verb + " app/" + a.Metadata.Name
	if p := a.Metadata.Project; p != "" && p != api.DefaultProject {
		cmd += " -p " + p
	}
	return cmd
}

// Rollout is the lines under rollout status's headline: the rollout,
// each revision's pods and weight, the preview, the analyses and the
// zero-downtime report. describe app shows the same.
func Rollout(a *api.App) []string {
	st := a.Status
	ro := st.Rollout
	var out []string
	if ro != nil && ro.From != 0 {
		l := fmt.Sprintf("  %s of revision %d from revision %d: %s", rolloutNoun(a), ro.Revision, ro.From, ro.State)
		if c := a.Spec.Strategy.Canary; c != nil && st.CurrentStep != nil && (ro.State == api.RolloutProgressing || ro.State == api.RolloutPaused) {
			step := int(*st.CurrentStep)
			if step < len(c.Steps) {
				l += fmt.Sprintf(", step %d of %d (%s)", step, len(c.Steps), describeStep(c.Steps[step]))
			} else {
				l += fmt.Sprintf(", after the last of %d steps", len(c.Steps))
			}
		}
		if ro.Message != "" {
			l += ": " + ro.Message
		}
		out = append(out, l)
	}
	if len(st.Revisions) > 0 {
		var b strings.Builder
		tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "  REVISION\tDESIRED\tPODS\tREADY\tAVAILABLE\tWEIGHT")
		for _, r := range st.Revisions {
			tag := ""
			switch {
			case r.Revision == st.StableRevision:
				tag = " (stable)"
			case ro != nil && r.Revision == ro.Revision:
				tag = " (new)"
			}
			fmt.Fprintf(tw, "  %d%s\t%d\t%d\t%d\t%d\t%d%%\n", r.Revision, tag, r.Desired, r.Replicas, r.Ready, r.Available, r.Weight)
		}
		tw.Flush()
		out = append(out, strings.Split(strings.TrimRight(b.String(), "\n"), "\n")...)
	}
	if st.PreviewRevision != 0 {
		l := fmt.Sprintf("  preview: revision %d (header X-Slipway-Revision: preview", st.PreviewRevision)
		if bg := a.Spec.Strategy.BlueGreen; bg != nil && bg.PreviewHost != "" {
			l += ", host " + bg.PreviewHost
		}
		out = append(out, l+")")
	}
	if ro != nil {
		for _, r := range ro.Analysis {
			l := fmt.Sprintf("  analysis %s: %s, %d measurements, %d failed, %d inconclusive", r.Name, r.Phase, r.Measurements, r.Failures, r.Inconclusives)
			if r.Message != "" {
				l += ": " + r.Message
			}
			out = append(out, l)
		}
		if r := ro.Report; r != nil && ro.From != 0 {
			out = append(out, "  "+formatReport(r))
		}
	}
	return out
}

// rolloutNoun names a rollout by the strategy it runs or ran under. A
// record without one (written before rollouts kept it) is named by the
// spec only while in progress: once it ended, the spec may have changed.
func rolloutNoun(a *api.App) string {
	ro := a.Status.Rollout
	s := ro.Strategy
	if s == "" && (ro.State == api.RolloutProgressing || ro.State == api.RolloutPaused) {
		s = cmp.Or(a.Spec.Strategy.Type, api.StrategyRolling)
	}
	if s == "" {
		return "Rollout"
	}
	return s + " rollout"
}

// formatReport is the zero-downtime report on one line.
func formatReport(r *api.Report) string {
	if !r.Measured {
		return fmt.Sprintf("report: took %s; longest time without a ready pod %s; requests not measured (no router counters)",
			millis(r.DurationMillis), millis(r.LongestNoReadyMillis))
	}
	var total int64
	var per []string
	for _, rr := range r.Revisions {
		total += rr.Requests
		per = append(per, fmt.Sprintf("revision %d: %d", rr.Revision, rr.Requests))
	}
	return fmt.Sprintf("report: took %s; %d requests (%s); %d failed (%d of them 503 for want of a ready pod); %d upstream errors; longest time without a ready pod %s",
		millis(r.DurationMillis), total, cmp.Or(strings.Join(per, ", "), "none"), r.Failed, r.NoReadyPod, r.UpstreamErrors, millis(r.LongestNoReadyMillis))
}

func millis(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

// History lists an app's revisions (oldest first) with what each changed.
func History(w io.Writer, revs []*api.Revision, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tAGE\tDESIRED\tREADY\tCHANGE")
	var prev *api.Revision
	for _, r := range revs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\n", r.Spec.Number, formatAge(r.Metadata.CreationTimestamp, now), r.Spec.Replicas, r.Status.ReadyReplicas, templateChange(prev, r))
		prev = r
	}
	tw.Flush()
}

// templateChange summarises what a revision changed from the one before:
// images, commands and environment values of its containers.
func templateChange(prev, cur *api.Revision) string {
	if prev == nil {
		return "<initial>"
	}
	var parts []string
	if at := cur.Spec.Template.Metadata.Annotations[RestartedAtAnnotation]; at != "" && at != prev.Spec.Template.Metadata.Annotations[RestartedAtAnnotation] {
		parts = append(parts, "restart")
	}
	old := map[string]api.Container{}
	for _, c := range prev.Spec.Template.Containers {
		old[c.Name] = c
	}
	for _, c := range cur.Spec.Template.Containers {
		o, ok := old[c.Name]
		if !ok {
			parts = append(parts, "+container "+c.Name)
			continue
		}
		if c.Image != o.Image {
			parts = append(parts, c.Name+" image "+c.Image)
		}
		if strings.Join(c.Command, " ") != strings.Join(o.Command, " ") || strings.Join(c.Args, " ") != strings.Join(o.Args, " ") {
			parts = append(parts, c.Name+" command")
		}
		oldEnv := map[string]string{}
		for _, ev := range o.Env {
			oldEnv[ev.Name] = ev.Value
		}
		for _, ev := range c.Env {
			if v, ok := oldEnv[ev.Name]; !ok || v != ev.Value {
				if ev.ValueFrom != nil {
					parts = append(parts, c.Name+" env "+ev.Name+" (from a secret)")
				} else {
					parts = append(parts, c.Name+" env "+ev.Name+"="+ev.Value)
				}
			}
		}
	}
	if len(parts) == 0 {
		return "template"
	}
	return strings.Join(parts, ", ")
}

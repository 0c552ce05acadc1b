package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
)

// RestartedAtAnnotation is set on an App's pod template by `rollout
// restart`: a template change, hence a new revision with fresh pods.
const RestartedAtAnnotation = "slipway.dev/restartedAt"

// updateAttempts bounds read-modify-write retries when an App keeps
// changing under a command.
const updateAttempts = 5

var (
	appKind, _      = api.LookupKind("App")
	revisionKind, _ = api.LookupKind("Revision")
)

// updateApp applies mutate to the App with compare-and-swap on the
// resourceVersion read, re-reading on a conflict so no concurrent change is
// lost. mutate returns false when there is nothing to write.
// doing names the change in the error ("scaled", "updated").
func updateApp(ctx context.Context, cn *conn, name, doing string, mutate func(*api.App) (bool, error)) (*api.App, error) {
	for range updateAttempts {
		obj, err := cn.c.Get(ctx, appKind, cn.project, name)
		if err != nil {
			return nil, err
		}
		app, ok := obj.(*api.App)
		if !ok {
			return nil, fmt.Errorf("the server returned %T for app %s", obj, name)
		}
		changed, err := mutate(app)
		if err != nil || !changed {
			return app, err
		}
		out, err := cn.c.Update(ctx, app)
		if !api.IsConflict(err) {
			if err != nil {
				return nil, err
			}
			return out.(*api.App), nil
		}
	}
	return nil, fmt.Errorf("app %s changed %d times while it was being %s: try again", name, updateAttempts, doing)
}

// appTarget reads `app/NAME` or `app NAME`.
func appTarget(args []string, verb string) (string, error) {
	info, names, err := parseTarget(args)
	if err != nil {
		return "", err
	}
	if info.Kind != "App" {
		return "", fmt.Errorf("%s cannot be used here: only apps can (slipway %s app/NAME)", info.Plural, verb)
	}
	if len(names) != 1 {
		return "", fmt.Errorf("must name one app: slipway %s app/NAME", verb)
	}
	return names[0], nil
}

func newRolloutCmd(e *env, g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND app/NAME",
		Short: "Watch and steer an app's rollouts",
		Long: `Every change to an app's template is a new revision, rolled out by the
app's strategy. These commands watch a rollout, list the revisions, hold
new changes, start a fresh rollout of the same template, or go back to an
earlier one.`,
	}
	cmd.AddCommand(newRolloutStatusCmd(e, g), newRolloutHistoryCmd(e, g),
		newRolloutPauseCmd(e, g, true), newRolloutPauseCmd(e, g, false),
		newRolloutRestartCmd(e, g), newRolloutUndoCmd(e, g))
	return cmd
}

func newRolloutStatusCmd(e *env, g *globals) *cobra.Command {
	var watch bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status app/NAME",
		Short: "Show a rollout's progress; wait until it ends",
		Long: `Status prints the rollout's progress as it changes and waits until the
app is Healthy (exit 0) or Degraded (exit 1), or until --timeout (exit 1).
With --watch=false it prints the current state once and exits 0 if Healthy,
1 otherwise.`,
		Example: `  slipway rollout status app/hello
  slipway rollout status app/hello --timeout 2m`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := appTarget(args, "rollout status")
			if err != nil {
				return err
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			last := ""
			for {
				obj, err := cn.c.Get(ctx, appKind, cn.project, name)
				if err != nil {
					if ctx.Err() != nil {
						return fmt.Errorf("timed out after %v waiting for the rollout of app/%s (last: %s)", timeout, name, last)
					}
					return err
				}
				line, done, failed := rolloutLine(obj.(*api.App))
				if line != last {
					fmt.Fprintln(e.stdout, line)
					last = line
				}
				switch {
				case failed:
					return fmt.Errorf("the rollout of app/%s failed", name)
				case done:
					return nil
				case !watch:
					return fmt.Errorf("app/%s is still rolling out", name)
				}
				select {
				case <-ctx.Done():
					if errors.Is(ctx.Err(), context.DeadlineExceeded) {
						return fmt.Errorf("timed out after %v waiting for the rollout of app/%s (last: %s)", timeout, name, last)
					}
					return ctx.Err()
				case <-time.After(250 * time.Millisecond): // a terminal's refresh pace
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout ends")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never)")
	return cmd
}

// rolloutLine describes where an App's rollout stands.
func rolloutLine(a *api.App) (line string, done, failed bool) {
	st := a.Status
	want := int32(1)
	if a.Spec.Replicas != nil {
		want = *a.Spec.Replicas
	}
	switch {
	case st.ObservedGeneration < a.Metadata.Generation:
		return fmt.Sprintf("Waiting for app/%s's change to be observed...", a.Metadata.Name), false, false
	case st.Phase == api.AppDegraded:
		return fmt.Sprintf("app/%s is Degraded: %s", a.Metadata.Name, st.Message), true, true
	case st.Phase == api.AppHealthy:
		return fmt.Sprintf("app/%s successfully rolled out (revision %d, %d/%d pods ready)", a.Metadata.Name, st.LatestRevision, st.ReadyReplicas, want), true, false
	case st.Phase == api.AppPaused:
		return fmt.Sprintf("app/%s is paused: %s (slipway rollout resume app/%s)", a.Metadata.Name, st.Message, a.Metadata.Name), false, false
	}
	return fmt.Sprintf("Waiting for the rollout of app/%s to finish: revision %d, %d of %d pods ready, traffic %s",
		a.Metadata.Name, st.LatestRevision, st.ReadyReplicas, want, formatTraffic(st.Traffic)), false, false
}

func newRolloutHistoryCmd(e *env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "history app/NAME",
		Short: "List an app's revisions",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := appTarget(args, "rollout history")
			if err != nil {
				return err
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			revs, err := appRevisions(cmd.Context(), cn, name)
			if err != nil {
				return err
			}
			if len(revs) == 0 {
				return fmt.Errorf("app/%s has no revisions yet", name)
			}
			printHistory(e.stdout, revs, time.Now())
			return nil
		},
	}
}

func appRevisions(ctx context.Context, cn *conn, app string) ([]*api.Revision, error) {
	if _, err := cn.c.Get(ctx, appKind, cn.project, app); err != nil {
		return nil, err
	}
	objs, _, err := cn.c.List(ctx, revisionKind, cn.project, api.LabelApp+"="+app)
	if err != nil {
		return nil, err
	}
	var revs []*api.Revision
	for _, o := range objs {
		if r := o.(*api.Revision); r.Spec.App == app {
			revs = append(revs, r)
		}
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Spec.Number < revs[j].Spec.Number })
	return revs, nil
}

func printHistory(w io.Writer, revs []*api.Revision, now time.Time) {
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

func newRolloutPauseCmd(e *env, g *globals, pause bool) *cobra.Command {
	verb, short := "pause", "Hold template changes: they are kept but not rolled out"
	if !pause {
		verb, short = "resume", "Roll out the changes held by pause"
	}
	return &cobra.Command{
		Use:   verb + " app/NAME",
		Short: short,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := appTarget(args, "rollout "+verb)
			if err != nil {
				return err
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			_, err = updateApp(cmd.Context(), cn, name, verb+"d", func(a *api.App) (bool, error) {
				if a.Spec.Paused == pause {
					return false, nil
				}
				a.Spec.Paused = pause
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app/%s %sd\n", name, verb)
			return nil
		},
	}
}

func newRolloutRestartCmd(e *env, g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restart app/NAME",
		Short: "Roll out fresh pods of the same template",
		Long: `Restart stamps the pod template with the time, which makes a new
revision: the app's strategy replaces every pod, as for any change.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := appTarget(args, "rollout restart")
			if err != nil {
				return err
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			now := time.Now().UTC().Format(time.RFC3339Nano)
			_, err = updateApp(cmd.Context(), cn, name, "restarted", func(a *api.App) (bool, error) {
				if a.Spec.Template.Metadata.Annotations == nil {
					a.Spec.Template.Metadata.Annotations = map[string]string{}
				}
				a.Spec.Template.Metadata.Annotations[RestartedAtAnnotation] = now
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app/%s restarted\n", name)
			return nil
		},
	}
}

func newRolloutUndoCmd(e *env, g *globals) *cobra.Command {
	var to int64
	cmd := &cobra.Command{
		Use:   "undo app/NAME [--to-revision N]",
		Short: "Roll out an earlier revision's template again",
		Long: `Undo copies an earlier revision's template into the app: a new rollout,
by the app's strategy, of what ran before (the previous revision unless
--to-revision names one). History keeps going forward: the rollout makes a
new revision.`,
		Example: `  slipway rollout undo app/hello
  slipway rollout undo app/hello --to-revision 3`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := appTarget(args, "rollout undo")
			if err != nil {
				return err
			}
			cn, err := g.connect(e)
			if err != nil {
				return err
			}
			revs, err := appRevisions(cmd.Context(), cn, name)
			if err != nil {
				return err
			}
			target, err := undoTarget(revs, to)
			if err != nil {
				return fmt.Errorf("app/%s: %w", name, err)
			}
			_, err = updateApp(cmd.Context(), cn, name, "rolled back", func(a *api.App) (bool, error) {
				a.Spec.Template = target.Spec.Template
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "app/%s rolled back to the template of revision %d\n", name, target.Spec.Number)
			return nil
		},
	}
	cmd.Flags().Int64Var(&to, "to-revision", 0, "the revision whose template to roll out (default: the one before the latest)")
	return cmd
}

// undoTarget picks the revision to go back to: to, or the one before the
// latest.
func undoTarget(revs []*api.Revision, to int64) (*api.Revision, error) {
	if to < 0 {
		return nil, fmt.Errorf("--to-revision %d: must be a revision number (see slipway rollout history)", to)
	}
	if to > 0 {
		for _, r := range revs {
			if r.Spec.Number == to {
				return r, nil
			}
		}
		var have []string
		for _, r := range revs {
			have = append(have, strconv.FormatInt(r.Spec.Number, 10))
		}
		return nil, fmt.Errorf("no revision %d: the kept revisions are %s", to, strings.Join(have, ", "))
	}
	if len(revs) < 2 {
		return nil, errors.New("there is no earlier revision to go back to")
	}
	return revs[len(revs)-2], nil
}

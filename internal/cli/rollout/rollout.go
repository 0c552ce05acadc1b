// Package rollout holds `rollout`: watch an app's rollout (status and its
// exit statuses), list its revisions, and steer it.
package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/cli/cmdutil"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
)

// NewCmd is `rollout` with its subcommands.
func NewCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout SUBCOMMAND app/NAME",
		Short: "Watch and steer an app's rollouts",
		Long: `Every change to an app's template is a new revision, rolled out by the
app's strategy. These commands watch a rollout, list the revisions, hold
new changes, start a fresh rollout of the same template, or go back to an
earlier one, and steer a BlueGreen or Canary rollout: promote, abort,
rollback and retry are requests the deploy controller acts on once and
acknowledges in the app's status (see 'slipway rollout promote --help').`,
	}
	cmd.AddCommand(newRolloutStatusCmd(e, g), newRolloutHistoryCmd(e, g),
		newRolloutPauseCmd(e, g, true), newRolloutPauseCmd(e, g, false),
		newRolloutRestartCmd(e, g), newRolloutUndoCmd(e, g),
		newRolloutPromoteCmd(e, g), newRolloutRequestCmd(e, g, api.RequestAbort), newRolloutRequestCmd(e, g, api.RequestRollback),
		newRolloutRequestCmd(e, g, api.RequestRetry))
	for _, c := range cmd.Commands() {
		c.ValidArgsFunction = cmdutil.CompleteApps(e, g)
	}
	return cmd
}

func newRolloutStatusCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var watch, waitPaused bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status app/NAME",
		Short: "Show a rollout's progress; wait until it ends or waits for you",
		Long: `Status shows the rollout's progress as it changes: each revision's pods
and traffic weight, the canary step, the analyses' verdicts, and at the end
the zero-downtime report. On a terminal the view is redrawn in place;
otherwise each change prints plain lines.

It waits until the rollout ends or waits for a person, and its exit status
says which (as the Argo Rollouts plugin's status does):

  0    the app is Healthy: the rollout completed
  1    the rollout is Degraded, aborted or rolled back (or the command failed)
  2    the rollout waits for a person: a BlueGreen preview before promotion,
       a Canary at a pause without a duration, or an app paused with
       rollout pause; the message names the command that continues it
       (rollout promote or rollout resume). With --wait-paused it keeps
       waiting instead (pauses do not count toward the progress deadline,
       so give a --timeout)
  3    --timeout passed first
  130  interrupted (Ctrl-C)

With --watch=false it prints the current state once and exits with the
same statuses, 1 while the rollout is still in progress.`,
		Example: `  slipway rollout status app/hello
  slipway rollout status app/hello --timeout 2m
  slipway rollout status app/hello --wait-paused --timeout 30m   # until someone promotes it`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := cmdutil.AppTarget(args, "rollout status")
			if err != nil {
				return err
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			parent := cmd.Context()
			ctx, cancel := cmdutil.WithTimeout(parent, timeout)
			defer cancel()
			tty := isTerminal(e.Stdout)
			last, drawn := "", 0
			stopped := func() error {
				if parent.Err() != nil {
					return &cmdutil.ExitError{Code: cmdutil.ExitInterrupted} // Ctrl-C: quietly
				}
				return &cmdutil.ExitError{Code: cmdutil.ExitTimedOut, Err: fmt.Errorf("timed out after %v waiting for the rollout of app/%s (last: %s)", timeout, name, firstLine(last))}
			}
			for {
				a, err := cmdutil.GetApp(ctx, cn, name)
				if err != nil {
					if ctx.Err() != nil {
						return stopped()
					}
					return err
				}
				line, done, failed := view.RolloutLine(a)
				screen := strings.Join(append([]string{line}, view.Rollout(a)...), "\n")
				if screen != last {
					if tty && drawn > 0 {
						fmt.Fprintf(e.Stdout, "\x1b[%dA\x1b[J", drawn) // redraw in place
					}
					fmt.Fprintln(e.Stdout, screen)
					last, drawn = screen, strings.Count(screen, "\n")+1
				}
				cont := view.WaitingFor(a)
				switch {
				case failed:
					return fmt.Errorf("the rollout of app/%s did not complete: %s", name, failure(a))
				case done:
					return nil
				case cont != "" && (!waitPaused || !watch):
					return &cmdutil.ExitError{Code: cmdutil.ExitPaused, Note: true, Err: fmt.Errorf("the rollout of app/%s waits for a person: %s continues it", name, cont)}
				case !watch:
					return fmt.Errorf("app/%s is still rolling out", name)
				}
				select {
				case <-ctx.Done():
					return stopped()
				case <-time.After(250 * time.Millisecond): // a terminal's refresh pace
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", true, "wait until the rollout ends")
	cmd.Flags().BoolVar(&waitPaused, "wait-paused", false, "keep waiting while the rollout waits for a person (instead of exiting 2)")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: never), exiting 3")
	return cmd
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func failure(a *api.App) string {
	if ro := a.Status.Rollout; ro != nil && ro.Message != "" {
		return ro.Message
	}
	return a.Status.Message
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func newRolloutHistoryCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "history app/NAME",
		Short:   "List an app's revisions",
		Example: "  slipway rollout history app/hello",
		RunE: func(cmd *cobra.Command, args []string) error {
			cn, a, err := cmdutil.OpenApp(cmd.Context(), e, g, args, "rollout history")
			if err != nil {
				return err
			}
			revs, err := appRevisions(cmd.Context(), cn, a.Metadata.Name)
			if err != nil {
				return err
			}
			if len(revs) == 0 {
				return fmt.Errorf("app/%s has no revisions yet", a.Metadata.Name)
			}
			view.History(e.Stdout, revs, time.Now())
			return nil
		},
	}
}

// appRevisions lists the revisions of an app, oldest first.
func appRevisions(ctx context.Context, cn *cmdutil.Conn, app string) ([]*api.Revision, error) {
	objs, _, err := cn.Client.List(ctx, cmdutil.RevisionKind, cn.Project, api.LabelApp+"="+app)
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

func newRolloutPauseCmd(e *cmdutil.Env, g *cmdutil.Globals, pause bool) *cobra.Command {
	verb, short := "pause", "Stop a rollout where it stands and hold template changes"
	if !pause {
		verb, short = "resume", "Carry on a paused rollout and roll out the changes held by pause"
	}
	return &cobra.Command{
		Use:     verb + " app/NAME",
		Short:   short,
		Example: "  slipway rollout " + verb + " app/hello",
		RunE: func(cmd *cobra.Command, args []string) error {
			cn, app, err := cmdutil.OpenApp(cmd.Context(), e, g, args, "rollout "+verb)
			if err != nil {
				return err
			}
			_, err = cmdutil.UpdateApp(cmd.Context(), cn, app, verb+"d", func(a *api.App) (bool, error) {
				if a.Spec.Paused == pause {
					return false, nil
				}
				a.Spec.Paused = pause
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "app/%s %sd\n", app.Metadata.Name, verb)
			return nil
		},
	}
}

func newRolloutRestartCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "restart app/NAME",
		Short:   "Roll out fresh pods of the same template",
		Example: "  slipway rollout restart app/hello",
		Long: `Restart stamps the pod template with the time, which makes a new
revision: the app's strategy replaces every pod, as for any change.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			cn, app, err := cmdutil.OpenApp(cmd.Context(), e, g, args, "rollout restart")
			if err != nil {
				return err
			}
			now := time.Now().UTC().Format(time.RFC3339Nano)
			_, err = cmdutil.UpdateApp(cmd.Context(), cn, app, "restarted", func(a *api.App) (bool, error) {
				if a.Spec.Template.Metadata.Annotations == nil {
					a.Spec.Template.Metadata.Annotations = map[string]string{}
				}
				a.Spec.Template.Metadata.Annotations[view.RestartedAtAnnotation] = now
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "app/%s restarted\n", app.Metadata.Name)
			return nil
		},
	}
}

func newRolloutUndoCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
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
			cn, app, err := cmdutil.OpenApp(cmd.Context(), e, g, args, "rollout undo")
			if err != nil {
				return err
			}
			name := app.Metadata.Name
			revs, err := appRevisions(cmd.Context(), cn, name)
			if err != nil {
				return err
			}
			target, err := undoTarget(revs, to)
			if err != nil {
				return fmt.Errorf("app/%s: %w", name, err)
			}
			_, err = cmdutil.UpdateApp(cmd.Context(), cn, app, "rolled back", func(a *api.App) (bool, error) {
				a.Spec.Template = target.Spec.Template
				return true, nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(e.Stdout, "app/%s rolled back to the template of revision %d\n", name, target.Spec.Number)
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

// requestWait bounds how long a control verb waits for the controller to
// acknowledge its request.
const requestWait = 30 * time.Second

var requestHelp = map[string][2]string{
	api.RequestAbort: {"Stop the rollout: all traffic back to the stable revision, phase Degraded",
		`Abort stops a BlueGreen, Canary or Rolling rollout where it is: all traffic
goes back to the stable revision at once, the new revision's pods are
scaled down, and the app is Degraded until a new change or 'rollout retry'.`},
	api.RequestRollback: {"Flip all traffic back to the previous revision, from any state",
		`Rollback sends all traffic to the previous revision at once: the stable
revision during a rollout (in a step, paused, analysing or aborted), or the
one before a completed rollout (still warm within a BlueGreen
scaleDownDelaySeconds; otherwise its pods start first). The rolled-back
revision is held: applying the same template again does not roll it out;
a new template or 'rollout retry' does.`},
	api.RequestRetry: {"Start an aborted or rolled-back rollout again",
		`Retry starts the rollout of the held revision again from its first step,
with fresh analyses.`},
}

// newRolloutRequestCmd is a control verb: it writes the request annotation
// and waits until the controller acknowledges it.
func newRolloutRequestCmd(e *cmdutil.Env, g *cmdutil.Globals, verb string) *cobra.Command {
	h := requestHelp[verb]
	return &cobra.Command{
		Use:     verb + " app/NAME",
		Short:   h[0],
		Long:    h[1] + "\n\nThe request is acknowledged in the app's status (see 'slipway rollout promote --help').",
		Example: "  slipway rollout " + verb + " app/hello",
		RunE: func(cmd *cobra.Command, args []string) error {
			return sendRequest(cmd.Context(), e, g, args, verb, verb)
		},
	}
}

func newRolloutPromoteCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var full bool
	cmd := &cobra.Command{
		Use:   "promote app/NAME [--full]",
		Short: "Move a paused BlueGreen or Canary rollout forward",
		Long: `Promote moves a rollout forward: a BlueGreen rollout switches all traffic
to the new revision (after its pre-promotion analysis); a Canary leaves its
current step (a pause until promoted, or any other). With --full a Canary
skips its remaining steps and analyses, and a BlueGreen its analyses.

Like abort, rollback and retry, promote writes the request to the app's
annotation slipway.dev/rollout-request as "<verb> <nonce>"; the deploy
controller acts on each value once, records it in status.observedRequest
(and why in status.requestRefused when it cannot), and the command waits
for that acknowledgement.`,
		Example: `  slipway rollout promote app/hello
  slipway rollout promote app/hello --full`,
		RunE: func(cmd *cobra.Command, args []string) error {
			verb := api.RequestPromote
			if full {
				verb = api.RequestPromoteFull
			}
			return sendRequest(cmd.Context(), e, g, args, "promote", verb)
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps and analyses")
	return cmd
}

func sendRequest(ctx context.Context, e *cmdutil.Env, g *cmdutil.Globals, args []string, name, verb string) error {
	cn, read, err := cmdutil.OpenApp(ctx, e, g, args, "rollout "+name)
	if err != nil {
		return err
	}
	app := read.Metadata.Name
	value := fmt.Sprintf("%s %d", verb, time.Now().UnixNano())
	if _, err := cmdutil.UpdateApp(ctx, cn, read, "requested", func(a *api.App) (bool, error) {
		if a.Metadata.Annotations == nil {
			a.Metadata.Annotations = map[string]string{}
		}
		a.Metadata.Annotations[api.RolloutRequestAnnotation] = value
		return true, nil
	}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, requestWait)
	defer cancel()
	for {
		a, err := cmdutil.GetApp(wctx, cn, app)
		if err != nil {
			if wctx.Err() != nil {
				return fmt.Errorf("app/%s: the deploy controller did not acknowledge %q within %v", app, verb, requestWait)
			}
			return err
		}
		if a.Status.ObservedRequest == value {
			if a.Status.RequestRefused != "" {
				return fmt.Errorf("app/%s: rollout %s refused: %s", app, name, a.Status.RequestRefused)
			}
			line, _, _ := view.RolloutLine(a)
			fmt.Fprintf(e.Stdout, "app/%s: rollout %s done; %s\n", app, name, line)
			return nil
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("app/%s: the deploy controller did not acknowledge %q within %v", app, verb, requestWait)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

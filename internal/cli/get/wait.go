package get

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/cli/jsonpath"
	"slipway.dev/slipway/internal/cli/view"
)

// waitFor is what --for asks: a condition's status, a JSONPath's value,
// or that the object is gone.
type waitFor struct {
	condition, status string             // condition=NAME[=STATUS]
	path              *jsonpath.Template // jsonpath={...}=VALUE
	value             string
	delete            bool
	text              string
}

func parseWaitFor(s string) (waitFor, error) {
	w := waitFor{text: s}
	switch {
	case s == "delete":
		w.delete = true
	case strings.HasPrefix(s, "condition="):
		c := strings.TrimPrefix(s, "condition=")
		w.condition, w.status, _ = strings.Cut(c, "=")
		if w.status == "" {
			w.status = api.ConditionTrue
		}
		if w.condition == "" {
			return w, fmt.Errorf("--for %q: name the condition, e.g. condition=Available", s)
		}
	case strings.HasPrefix(s, "jsonpath="):
		expr := strings.TrimPrefix(s, "jsonpath=")
		i := strings.LastIndex(expr, "=")
		if i < 0 || !strings.HasSuffix(expr[:i], "}") {
			return w, fmt.Errorf("--for %q: must be jsonpath={PATH}=VALUE, e.g. jsonpath={.status.phase}=Healthy", s)
		}
		t, err := jsonpath.ParseExpr(expr[:i])
		if err != nil {
			return w, fmt.Errorf("--for: %w", err)
		}
		w.path, w.value = t, expr[i+1:]
	default:
		return w, fmt.Errorf("--for %q: must be condition=NAME[=STATUS], jsonpath={PATH}=VALUE or delete", s)
	}
	return w, nil
}

// met reports whether obj satisfies w, and what it shows now.
func (w waitFor) met(obj api.Object) (bool, string, error) {
	if w.path != nil {
		g, err := view.Generic(obj)
		if err != nil {
			return false, "", err
		}
		var got []string
		for _, v := range w.path.Values(g) {
			got = append(got, jsonpath.Text(v))
		}
		now := strings.Join(got, ",")
		return now == w.value, now, nil
	}
	status, reason, ok := view.Condition(obj, w.condition)
	if !ok {
		return false, "no condition " + w.condition, nil
	}
	now := w.condition + "=" + status
	if reason != "" {
		now += " (" + reason + ")"
	}
	return strings.EqualFold(status, w.status), now, nil
}

// NewWaitCmd is `wait --for`.
func NewWaitCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var forArg, selector string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait KIND/NAME... | KIND NAME... | KIND -l SELECTOR --for=condition=NAME[=STATUS] | --for=jsonpath={PATH}=VALUE | --for=delete",
		Short: "Wait until objects reach a condition, or are gone",
		Long: `Wait watches each object until it meets --for, as kubectl wait does:

  condition=NAME[=STATUS]  the object's condition NAME has STATUS (True when
                           left out). An app's Available is True when at least
                           spec.replicas pods are available on the revision
                           it serves, and its Progressing is the deploy
                           controller's; a pod has Ready, a route Admitted.
  jsonpath={PATH}=VALUE    the value of a JSONPath (as -o jsonpath reads it)
  delete                   the object no longer exists

It exits 0 when every object met it, 3 when --timeout passed first
(naming what each one still shows), 1 on an error and 130 when
interrupted.`,
		Example: `  slipway wait --for=condition=Available app/hello --timeout 60s
  slipway wait --for=condition=Ready pods -l app=hello --timeout 2m
  slipway wait --for=jsonpath='{.status.phase}'=Healthy app/hello
  slipway wait --for=delete pod/hello-1-x7k2p`,
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if forArg == "" {
				return errors.New("give --for: condition=NAME[=STATUS], jsonpath={PATH}=VALUE or delete")
			}
			w, err := parseWaitFor(forArg)
			if err != nil {
				return err
			}
			targets, err := parseGetTargets(args)
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
			for _, t := range targets {
				project := cn.ProjectOf(t.info)
				names := t.names
				if selector != "" {
					if len(names) > 0 {
						return errors.New("name the objects or give -l, not both")
					}
					if names, err = cmdutil.SelectedNames(ctx, cn, t.info, project, selector); err != nil {
						return err
					}
				}
				if len(names) == 0 {
					return fmt.Errorf("name the %s to wait for, or give -l", t.info.Plural)
				}
				for _, n := range names {
					last, err := waitOne(ctx, cn, t.info, project, n, w)
					what := strings.ToLower(t.info.Kind) + "/" + n
					switch {
					case err == nil:
						fmt.Fprintf(e.Stdout, "%s %s\n", what, metWord(w))
					case parent.Err() != nil:
						return &cmdutil.ExitError{Code: cmdutil.ExitInterrupted}
					case ctx.Err() != nil:
						return &cmdutil.ExitError{Code: cmdutil.ExitTimedOut, Err: fmt.Errorf("timed out after %v waiting for %s to meet --for=%s (now: %s)", timeout, what, w.text, last)}
					default:
						return err
					}
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&forArg, "for", "", "condition=NAME[=STATUS], jsonpath={PATH}=VALUE or delete")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "wait for the objects of the kind whose labels match")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long (0: never), exiting 3")
	return cmd
}

func metWord(w waitFor) string {
	switch {
	case w.delete:
		return "deleted"
	case w.path != nil:
		return "met " + w.text
	}
	return "condition met"
}

// waitOne reads the object, then follows its changes until it meets w;
// it returns what the object last showed.
func waitOne(ctx context.Context, cn *cmdutil.Conn, kind api.KindInfo, project, name string, w waitFor) (string, error) {
	last := "not read yet"
	for {
		obj, err := cn.Client.Get(ctx, kind, project, name)
		switch {
		case api.IsNotFound(err) && w.delete:
			return "deleted", nil
		case api.IsNotFound(err):
			return last, err
		case err != nil:
			return last, err
		}
		if w.delete {
			last = "exists"
		} else {
			ok, now, err := w.met(obj)
			if err != nil {
				return last, err
			}
			if last = now; ok {
				return last, nil
			}
		}
		// Follow the object's changes from the version read; when the
		// stream ends (or the version is too old), read it again.
		events, err := cn.Client.Watch(ctx, kind, project, obj.GetMeta().ResourceVersion, "")
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			if api.ReasonOf(err) != api.ReasonGone {
				return last, err
			}
			continue
		}
		for ev := range events {
			if ev.Err != nil || ev.Object.GetMeta().Name != name {
				continue
			}
			if ev.Type == "DELETED" {
				if w.delete {
					return "deleted", nil
				}
				return last, fmt.Errorf("%s/%s was deleted", strings.ToLower(kind.Kind), name)
			}
			if w.delete {
				continue
			}
			ok, now, err := w.met(ev.Object)
			if err != nil {
				return last, err
			}
			if last = now; ok {
				return last, nil
			}
		}
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
	}
}

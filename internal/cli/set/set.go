// Package set holds the verbs that change one thing of an app or route:
// set (route-backends, env, image), scale and expose.
package set

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
	"slipway.dev/slipway/internal/clock"
)

// setAttempts bounds the read-modify-write retries of set commands when
// the object keeps changing under them.
const setAttempts = 5

// ReasonBackendsChanged is the reason of the Event recorded on a Route
// whose backends `set route-backends` changed.
const ReasonBackendsChanged = "BackendsChanged"

// NewSetCmd is `set` with its subcommands `route-backends`, `env` and `image`.
func NewSetCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set SUBCOMMAND",
		Short: "Change one field of an object",
		Example: `  slipway set env app/hello VERSION=v2
  slipway set image app/hello web=default/hello:3
  slipway set route-backends hello hello-v1=80 hello-v2=20`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("set needs a subcommand: route-backends, env or image (slipway set --help)")
		},
	}
	cmd.AddCommand(newSetRouteBackendsCmd(e, g, clock.Real{}), newSetEnvCmd(e, g), newSetImageCmd(e, g))
	return cmd
}

// backendsOptions are the flags of set route-backends.
type backendsOptions struct {
	zero, equal bool
}

func newSetRouteBackendsCmd(e *cmdutil.Env, g *cmdutil.Globals, clk clock.Clock) *cobra.Command {
	var o backendsOptions
	cmd := &cobra.Command{
		Use:   "route-backends ROUTE [SVC=WEIGHT...]",
		Short: "Split a route's traffic between services (A/B)",
		Long: fmt.Sprintf(`Route-backends sets the services a route sends traffic to, and their weights,
as "oc set route-backends" does. The first service becomes spec.to, the
others spec.alternateBackends (at most %d); each gets a share of requests in
proportion to its weight, an integer from 0 to %d (0: none).

Without services it prints the route's backends and weights. --zero sets
every weight to 0 (the route then answers 503), --equal sets every weight to
%d; both apply to the services named, or else to the route's current ones.

Every service must exist in the route's project. Each change is recorded as
an Event on the route (reason %s).`, api.MaxAlternateBackends, api.MaxRouteWeight, api.DefaultRouteWeight, ReasonBackendsChanged),
		Example: `  slipway set route-backends hello
  slipway set route-backends hello hello-v1=90 hello-v2=10
  slipway set route-backends hello hello-v1=0 hello-v2=100
  slipway set route-backends hello --equal`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := routeName(args[0])
			if err != nil {
				return err
			}
			if o.zero && o.equal {
				return errors.New("--zero and --equal cannot be used together")
			}
			wanted, err := parseBackends(args[1:], o)
			if err != nil {
				return err
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if len(wanted) == 0 && !o.zero && !o.equal {
				obj, err := cn.Client.Get(ctx, cmdutil.RouteKind, cn.Project, name)
				if err != nil {
					return err
				}
				return printBackends(e.Stdout, obj.(*api.Route))
			}
			// Every named service must exist before anything is written.
			for _, b := range wanted {
				if err := requireService(ctx, cn, b.Service); err != nil {
					return err
				}
			}
			changed, err := setBackends(ctx, cn, name, wanted, o)
			if err != nil {
				return err
			}
			if changed == nil {
				fmt.Fprintf(e.Stdout, "route/%s backends unchanged\n", name)
				return nil
			}
			fmt.Fprintf(e.Stdout, "route/%s backends updated\n", name)
			if err := recordBackendsEvent(ctx, cn, clk, changed); err != nil {
				// The change is made; the event is only its account.
				fmt.Fprintf(e.Stderr, "warning: the change was not recorded as an event: %v\n", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.zero, "zero", false, "set the weight of every backend to 0")
	f.BoolVar(&o.equal, "equal", false, fmt.Sprintf("set the weight of every backend to %d", api.DefaultRouteWeight))
	return cmd
}

// routeName reads ROUTE, route/ROUTE or routes/ROUTE.
func routeName(arg string) (string, error) {
	k, n, ok := strings.Cut(arg, "/")
	if !ok {
		return arg, nil
	}
	if info, found := api.LookupKind(k); !found || info.Kind != "Route" {
		return "", fmt.Errorf("%q: route-backends changes routes only: give ROUTE or route/ROUTE", arg)
	}
	if n == "" {
		return "", fmt.Errorf("%q: missing name after the slash", arg)
	}
	return n, nil
}

// parseBackends reads SVC=WEIGHT arguments, or bare SVC names with --zero
// and --equal, which set the weights themselves.
func parseBackends(args []string, o backendsOptions) ([]api.RouteBackend, error) {
	if len(args) > 1+api.MaxAlternateBackends {
		return nil, fmt.Errorf("%d services given: a route has at most %d backends (spec.to and %d alternateBackends)",
			len(args), 1+api.MaxAlternateBackends, api.MaxAlternateBackends)
	}
	flag := ""
	switch {
	case o.zero:
		flag = "--zero"
	case o.equal:
		flag = "--equal"
	}
	var out []api.RouteBackend
	for _, a := range args {
		svc, w, hasWeight := strings.Cut(a, "=")
		if svc == "" {
			return nil, fmt.Errorf("invalid backend %q: must be SVC=WEIGHT, e.g. hello-v1=90", a)
		}
		if slices.ContainsFunc(out, func(b api.RouteBackend) bool { return b.Service == svc }) {
			return nil, fmt.Errorf("service %s is given twice: each service may appear once", svc)
		}
		var weight int32
		switch {
		case flag != "" && hasWeight:
			return nil, fmt.Errorf("invalid backend %q: %s sets every weight, name the services without =WEIGHT", a, flag)
		case flag == "" && !hasWeight:
			return nil, fmt.Errorf("invalid backend %q: must be SVC=WEIGHT with a weight from 0 to %d, e.g. %s=90", a, api.MaxRouteWeight, svc)
		case hasWeight:
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 || n > int(api.MaxRouteWeight) {
				return nil, fmt.Errorf("invalid weight %q for service %s: must be an integer from 0 to %d", w, svc, api.MaxRouteWeight)
			}
			weight = int32(n)
		}
		out = append(out, api.RouteBackend{Service: svc, Weight: &weight})
	}
	return out, nil
}

// requireService checks that a backend service exists in the project.
func requireService(ctx context.Context, cn *cmdutil.Conn, name string) error {
	_, err := cn.Client.Get(ctx, cmdutil.ServiceKind, cn.Project, name)
	if api.IsNotFound(err) {
		return fmt.Errorf("service %q not found in project %q: every backend must be a service of the route's project", name, cn.Project)
	}
	return err
}

// backendsChange is a change made: the route as written and the backends
// before and after, for the event.
type backendsChange struct {
	route       *api.Route
	before, now []api.RouteBackend
}

// setBackends writes the route's new backends with compare-and-swap on
// the resourceVersion read, re-reading on a conflict so that no concurrent
// change is lost. It returns nil when the route already had them.
func setBackends(ctx context.Context, cn *cmdutil.Conn, name string, wanted []api.RouteBackend, o backendsOptions) (*backendsChange, error) {
	rt, err := cmdutil.GetObject[*api.Route](ctx, cn, cmdutil.RouteKind, name)
	if err != nil {
		return nil, err
	}
	var before, next []api.RouteBackend
	rt, err = cmdutil.UpdateObject(ctx, cn, cmdutil.RouteKind, rt, setAttempts, func(rt *api.Route) (bool, error) {
		before = backendsOf(rt.Spec)
		next = cloneBackends(wanted)
		if len(next) == 0 {
			next = cloneBackends(before)
		}
		for i := range next {
			switch {
			case o.zero:
				next[i].Weight = new(int32(0))
			case o.equal:
				next[i].Weight = new(api.DefaultRouteWeight)
			}
		}
		for i, m := range rt.Spec.Match {
			if m.Service != "" && !slices.ContainsFunc(next, func(b api.RouteBackend) bool { return b.Service == m.Service }) {
				return false, fmt.Errorf("route %s: spec.match[%d] sends to service %s, which would no longer be a backend: keep it among the services or change the match first",
					name, i, m.Service)
			}
		}
		if formatWeights(next) == formatWeights(before) {
			return false, nil
		}
		rt.Spec.To = next[0]
		rt.Spec.AlternateBackends = nil
		if len(next) > 1 {
			rt.Spec.AlternateBackends = next[1:]
		}
		return true, nil
	})
	switch {
	case errors.Is(err, cmdutil.ErrKeptChanging):
		return nil, fmt.Errorf("route %s changed %d times while its backends were being set: try again", name, setAttempts)
	case err != nil || formatWeights(next) == formatWeights(before):
		return nil, err
	}
	return &backendsChange{route: rt, before: before, now: next}, nil
}

// recordBackendsEvent writes the Event that makes an A/B change visible in
// `describe route` and `get events`.
func recordBackendsEvent(ctx context.Context, cn *cmdutil.Conn, clk clock.Clock, c *backendsChange) error {
	m := c.route.Metadata
	now := clk.Now().UTC()
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return err
	}
	ev := &api.Event{
		Metadata:       api.ObjectMeta{Name: m.Name + "." + hex.EncodeToString(suffix[:]), Project: m.Project},
		InvolvedObject: api.ObjectReference{Kind: "Route", Project: m.Project, Name: m.Name, UID: m.UID},
		Type:           api.EventNormal,
		Reason:         ReasonBackendsChanged,
		Message:        fmt.Sprintf("backends set to %s (were %s)", formatWeights(c.now), formatWeights(c.before)),
		Source:         "slipway set route-backends",
		Count:          1,
		FirstTimestamp: now,
		LastTimestamp:  now,
	}
	_, err := cn.Client.Create(ctx, ev)
	return err
}

// backendsOf lists spec.to then spec.alternateBackends, weights filled in.
func backendsOf(s api.RouteSpec) []api.RouteBackend {
	bs := cloneBackends(append([]api.RouteBackend{s.To}, s.AlternateBackends...))
	for i := range bs {
		if bs[i].Weight == nil {
			bs[i].Weight = new(api.DefaultRouteWeight)
		}
	}
	return bs
}

func cloneBackends(bs []api.RouteBackend) []api.RouteBackend {
	out := make([]api.RouteBackend, len(bs))
	for i, b := range bs {
		out[i] = api.RouteBackend{Service: b.Service}
		if b.Weight != nil {
			out[i].Weight = new(*b.Weight)
		}
	}
	return out
}

// formatWeights renders backends as "a=90, b=10".
func formatWeights(bs []api.RouteBackend) string {
	parts := make([]string, len(bs))
	for i, b := range bs {
		w := api.DefaultRouteWeight
		if b.Weight != nil {
			w = *b.Weight
		}
		parts[i] = fmt.Sprintf("%s=%d", b.Service, w)
	}
	return strings.Join(parts, ", ")
}

// printBackends lists a route's backends as oc does, with each one's share
// of the traffic.
func printBackends(w io.Writer, rt *api.Route) error {
	bs := backendsOf(rt.Spec)
	var total int64
	for _, b := range bs {
		total += int64(*b.Weight)
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tTO\tWEIGHT")
	for _, b := range bs {
		share := int64(0)
		if total > 0 {
			share = (int64(*b.Weight)*100 + total/2) / total
		}
		fmt.Fprintf(tw, "routes/%s\tService\t%s\t%d (%d%%)\n", rt.Metadata.Name, b.Service, *b.Weight, share)
	}
	return tw.Flush()
}

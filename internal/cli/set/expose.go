package set

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// exposeOptions are the flags of expose.
type exposeOptions struct {
	port       int
	targetPort string
	host       string
	path       string
	name       string
	dryRun     bool
}

// NewExposeCmd is `expose`.
func NewExposeCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var o exposeOptions
	cmd := &cobra.Command{
		Use:   "expose app/NAME | svc/NAME",
		Short: "Make an app reachable: create its Service and public Route",
		Long: `Expose creates what a newcomer needs to reach an app from a browser.

For app/NAME it writes a Service selecting the app's pods (app: NAME) on
--port, forwarding to --target-port (by default the first port the app's
first container declares, by name when it has one), and a Route to that
Service. For svc/NAME it writes only the Route.

The Route's host is --host, or else the router's default
<route>-<project>.<router domain> (http://NAME-default.localhost:8080 with
the defaults of "slipway up").

Expose applies its objects: running it again with the same flags changes
nothing, and with other flags brings the Service and Route back to what
the flags say (weights set since with "slipway set route-backends" too).`,
		Example: `  slipway expose app/hello
  slipway expose app/hello --port 8080 --target-port http --host hello.example.com
  slipway expose svc/hello-v1 --name hello --path /api`,
		RunE: func(cmd *cobra.Command, args []string) error {
			info, names, err := cmdutil.ParseTarget(args)
			if err != nil {
				return err
			}
			if info.Kind != "App" && info.Kind != "Service" {
				return fmt.Errorf("%s cannot be exposed: expose app/NAME (a Service and a Route) or svc/NAME (a Route)", info.Plural)
			}
			if len(names) != 1 {
				return fmt.Errorf("expose takes exactly one app or service: slipway expose app/NAME (got %d names)", len(names))
			}
			if o.port < 1 || o.port > 65535 {
				return fmt.Errorf("invalid --port %d: must be from 1 to 65535", o.port)
			}
			if info.Kind == "Service" {
				for _, f := range []string{"port", "target-port"} {
					if cmd.Flags().Changed(f) {
						return fmt.Errorf("--%s applies to app/NAME only: a route serves the first port of service %s", f, names[0])
					}
				}
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			objs, err := exposeObjects(cmd.Context(), cn, info, names[0], o)
			if err != nil {
				return err
			}
			// Checked here as well as on the server, so that a bad flag is
			// reported as the field it sets, not as an item of a batch.
			for _, obj := range objs {
				api.SetDefaults(obj)
				if errs := validation.Validate(obj); len(errs) > 0 {
					return errs.ToError(api.KindOf(obj), obj.GetMeta().Name)
				}
			}
			return cmdutil.ApplyObjects(cmd.Context(), e, cn, objs, o.dryRun)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.port, "port", 80, "the Service's port (app/NAME only)")
	f.StringVar(&o.targetPort, "target-port", "", "the pods' port, by number or name (app/NAME only; default: the app's first declared port)")
	f.StringVar(&o.host, "host", "", "the Route's host, exact or *.wildcard (default: <route>-<project>.<router domain>)")
	f.StringVar(&o.path, "path", "", "the Route's path prefix (default /)")
	f.StringVar(&o.name, "name", "", "the name of the Service and Route (default: NAME)")
	f.BoolVar(&o.dryRun, "dry-run", false, "validate on the server and report what would change, writing nothing")
	return cmd
}

// exposeObjects builds the Service (for an app) and the Route to apply,
// reading the app or service so that a missing one or an app without a
// port is reported before anything is written.
func exposeObjects(ctx context.Context, cn *cmdutil.Conn, info api.KindInfo, name string, o exposeOptions) ([]api.Object, error) {
	obj, err := cn.Client.Get(ctx, info, cn.Project, name)
	if err != nil {
		return nil, err
	}
	target := cmp.Or(o.name, name)
	route := &api.Route{
		Metadata: api.ObjectMeta{Name: target, Project: cn.Project},
		Spec:     api.RouteSpec{Host: o.host, Path: o.path, To: api.RouteBackend{Service: target}},
	}
	switch x := obj.(type) {
	case *api.Service:
		// The route belongs with the service: `get routes -l app=hello`
		// finds it as it finds the service.
		route.Metadata.Labels = maps.Clone(x.Metadata.Labels)
		route.Spec.To.Service = name
		return []api.Object{route}, nil
	case *api.App:
		tp, err := exposeTargetPort(x, o.targetPort)
		if err != nil {
			return nil, err
		}
		labels := map[string]string{api.LabelApp: name}
		svc := &api.Service{
			Metadata: api.ObjectMeta{Name: target, Project: cn.Project, Labels: labels},
			Spec: api.ServiceSpec{
				Selector: map[string]string{api.LabelApp: name},
				Ports:    []api.ServicePort{{Port: int32(o.port), TargetPort: tp}},
			},
		}
		if tp.IsString {
			svc.Spec.Ports[0].Name = tp.StrVal
		}
		route.Metadata.Labels = maps.Clone(labels)
		return []api.Object{svc, route}, nil
	}
	return nil, fmt.Errorf("the server returned %T for %s %s", obj, info.Kind, name)
}

// exposeTargetPort resolves --target-port against the app's declared ports,
// defaulting to the first port of its first container.
func exposeTargetPort(app *api.App, flag string) (api.IntOrString, error) {
	var declared []api.ContainerPort
	for _, c := range app.Spec.Template.Containers {
		declared = append(declared, c.Ports...)
	}
	if flag == "" {
		var first []api.ContainerPort
		if cs := app.Spec.Template.Containers; len(cs) > 0 {
			first = cs[0].Ports
		}
		if len(first) == 0 {
			return api.IntOrString{}, fmt.Errorf("app %s declares no port in its first container: give --target-port (the port its pods listen on)", app.Metadata.Name)
		}
		if first[0].Name != "" {
			return api.FromString(first[0].Name), nil
		}
		return api.FromInt(first[0].Port), nil
	}
	if n, err := strconv.Atoi(flag); err == nil {
		if n < 1 || n > 65535 {
			return api.IntOrString{}, fmt.Errorf("invalid --target-port %d: must be from 1 to 65535, or the name of a port of the app", n)
		}
		return api.FromInt(int32(n)), nil
	}
	var names []string
	for _, p := range declared {
		if p.Name == flag {
			return api.FromString(flag), nil
		}
		if p.Name != "" {
			names = append(names, p.Name)
		}
	}
	have := "it names none"
	if len(names) > 0 {
		have = "its named ports: " + strings.Join(names, ", ")
	}
	return api.IntOrString{}, fmt.Errorf("invalid --target-port %q: app %s declares no port of that name (%s); give a number or one of its port names", flag, app.Metadata.Name, have)
}

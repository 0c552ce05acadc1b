package cmdutil

import (
	"context"
	"fmt"
	"io"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
)

// ParseTarget reads the kubectl forms `KIND`, `KIND NAME...` and `KIND/NAME`.
func ParseTarget(args []string) (api.KindInfo, []string, error) {
	if len(args) == 0 {
		return api.KindInfo{}, nil, fmt.Errorf("must name a kind: one of %s", view.KindList())
	}
	kindArg, names := args[0], args[1:]
	if k, n, ok := strings.Cut(kindArg, "/"); ok {
		if len(names) > 0 {
			return api.KindInfo{}, nil, fmt.Errorf("there is no need to name a kind again after %q: use KIND/NAME or KIND NAME", kindArg)
		}
		if n == "" {
			return api.KindInfo{}, nil, fmt.Errorf("%q: missing name after the slash", kindArg)
		}
		kindArg, names = k, []string{n}
	}
	info, err := view.LookupKind(kindArg)
	if err != nil {
		return api.KindInfo{}, nil, err
	}
	return info, names, nil
}

// SelectedNames lists the names of the objects a label selector matches;
// none is an error, as a command given -l has nothing to act on.
func SelectedNames(ctx context.Context, cn *Conn, info api.KindInfo, project, selector string) ([]string, error) {
	objs, _, err := cn.Client.List(ctx, info, project, selector)
	if err != nil {
		return nil, err
	}
	view.SortObjects(objs)
	var names []string
	for _, o := range objs {
		names = append(names, o.GetMeta().Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no %s match the selector %q", info.Plural, selector)
	}
	return names, nil
}

// ApplyObjects applies objs and reports each one as created, configured
// or unchanged.
func ApplyObjects(ctx context.Context, e *Env, cn *Conn, objs []api.Object, dryRun bool) error {
	results, err := cn.Client.Apply(ctx, objs, dryRun)
	if err != nil {
		return err
	}
	suffix := ""
	if dryRun {
		suffix = " (dry run)"
	}
	for _, r := range results {
		fmt.Fprintf(e.Stdout, "%s/%s %s%s\n", strings.ToLower(r.Kind), r.Name, r.Result, suffix)
	}
	return nil
}

// BuildLog copies a build's log (to its end with follow).
func BuildLog(ctx context.Context, cn *Conn, name string, follow bool, out io.Writer) error {
	rc, err := cn.Client.BuildLog(ctx, cn.Project, name, follow)
	if err != nil {
		return err
	}
	defer rc.Close()
	if _, err := io.Copy(out, rc); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

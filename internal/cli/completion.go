package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"slipway.dev/slipway/internal/api"
)

// completionTimeout bounds the server call behind a completion: a shell
// waiting on a Tab should not hang on an unreachable server.
const completionTimeout = 2 * time.Second

// completionContext is the command's context: cobra's __complete runs
// without one when the root was executed without ExecuteContext.
func completionContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// completeKinds proposes the kinds (their plurals), and all when withAll.
func completeKinds(toComplete string, withAll bool) []string {
	var out []string
	if withAll && strings.HasPrefix("all", toComplete) {
		out = append(out, "all")
	}
	for _, k := range api.Kinds {
		if strings.HasPrefix(k.Plural, toComplete) {
			out = append(out, k.Plural)
		}
	}
	return out
}

// objectNames lists the names of a kind's objects in the command's project
// that start with prefix and are not in skip; nothing when the server
// cannot be asked.
func objectNames(ctx context.Context, e *env, g *globals, kind api.KindInfo, prefix string, skip []string) []string {
	cn, err := g.connect(e)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	objs, _, err := cn.c.List(ctx, kind, cn.projectOf(kind), "")
	if err != nil {
		return nil
	}
	var out []string
	for _, o := range objs {
		n := o.GetMeta().Name
		if strings.HasPrefix(n, prefix) && !slices.Contains(skip, n) {
			out = append(out, n)
		}
	}
	return out
}

// completeSlashed completes KIND/NAME: the kind's objects as KIND/NAME.
func completeSlashed(ctx context.Context, e *env, g *globals, toComplete string, allowed func(api.KindInfo) bool) []string {
	k, prefix, _ := strings.Cut(toComplete, "/")
	info, ok := api.LookupKind(k)
	if !ok || (allowed != nil && !allowed(info)) {
		return nil
	}
	var out []string
	for _, n := range objectNames(ctx, e, g, info, prefix, nil) {
		out = append(out, k+"/"+n)
	}
	return out
}

// completeTarget completes the KIND [NAME...] and KIND/NAME arguments of
// get, describe and delete: kinds first, then the names of the kind's
// objects, asked of the server (cobra's dynamic completion).
func completeTarget(e *env, g *globals, withAll bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := completionContext(cmd)
		switch {
		case strings.Contains(toComplete, "/"):
			return completeSlashed(ctx, e, g, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
		case len(args) == 0:
			return completeKinds(toComplete, withAll), cobra.ShellCompDirectiveNoFileComp
		case strings.Contains(args[0], "/") || strings.Contains(args[0], ",") || args[0] == "all":
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		info, ok := api.LookupKind(args[0])
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return objectNames(ctx, e, g, info, toComplete, args[1:]), cobra.ShellCompDirectiveNoFileComp
	}
}

func completeGet(e *env, g *globals) cobra.CompletionFunc { return completeTarget(e, g, true) }

// completeApps completes the app/NAME of the commands that work on one
// app (rollout's, scale, set): app/ and the apps' names.
func completeApps(e *env, g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := completionContext(cmd)
		if !strings.Contains(toComplete, "/") {
			if !strings.HasPrefix("app/", toComplete) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			toComplete = "app/"
		}
		return completeSlashed(ctx, e, g, toComplete, func(k api.KindInfo) bool { return k.Kind == "App" }), cobra.ShellCompDirectiveNoFileComp
	}
}

// completeLogs completes logs' POD, pod/POD, app/NAME and build/NAME.
func completeLogs(e *env, g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := completionContext(cmd)
		if strings.Contains(toComplete, "/") {
			return completeSlashed(ctx, e, g, toComplete, func(k api.KindInfo) bool {
				return k.Kind == "Pod" || k.Kind == "App" || k.Kind == "Build"
			}), cobra.ShellCompDirectiveNoFileComp
		}
		return objectNames(ctx, e, g, podKind, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
	}
}

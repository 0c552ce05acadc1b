package cmdutil

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

// CompletionContext is the command's context: cobra's __complete runs
// without one when the root was executed without ExecuteContext.
func CompletionContext(cmd *cobra.Command) context.Context {
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

// ObjectNames lists the names of a kind's objects in the command's project
// that start with prefix and are not in skip; nothing when the server
// cannot be asked.
func ObjectNames(ctx context.Context, e *Env, g *Globals, kind api.KindInfo, prefix string, skip []string) []string {
	cn, err := g.Connect(e)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	objs, _, err := cn.Client.List(ctx, kind, cn.ProjectOf(kind), "")
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

// CompleteSlashed completes KIND/NAME: the kind's objects as KIND/NAME.
func CompleteSlashed(ctx context.Context, e *Env, g *Globals, toComplete string, allowed func(api.KindInfo) bool) []string {
	k, prefix, _ := strings.Cut(toComplete, "/")
	info, ok := api.LookupKind(k)
	if !ok || (allowed != nil && !allowed(info)) {
		return nil
	}
	var out []string
	for _, n := range ObjectNames(ctx, e, g, info, prefix, nil) {
		out = append(out, k+"/"+n)
	}
	return out
}

// CompleteTarget completes the KIND [NAME...] and KIND/NAME arguments of
// get, describe and delete: kinds first, then the names of the kind's
// objects, asked of the server (cobra's dynamic completion).
func CompleteTarget(e *Env, g *Globals, withAll bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := CompletionContext(cmd)
		switch {
		case strings.Contains(toComplete, "/"):
			return CompleteSlashed(ctx, e, g, toComplete, nil), cobra.ShellCompDirectiveNoFileComp
		case len(args) == 0:
			return completeKinds(toComplete, withAll), cobra.ShellCompDirectiveNoFileComp
		case strings.Contains(args[0], "/") || strings.Contains(args[0], ",") || args[0] == "all":
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		info, ok := api.LookupKind(args[0])
		if !ok {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return ObjectNames(ctx, e, g, info, toComplete, args[1:]), cobra.ShellCompDirectiveNoFileComp
	}
}

// CompleteApps completes the app/NAME of the commands that work on one
// app (rollout's, scale, set): app/ and the apps' names.
func CompleteApps(e *Env, g *Globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := CompletionContext(cmd)
		if !strings.Contains(toComplete, "/") {
			if !strings.HasPrefix("app/", toComplete) {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			toComplete = "app/"
		}
		return CompleteSlashed(ctx, e, g, toComplete, func(k api.KindInfo) bool { return k.Kind == "App" }), cobra.ShellCompDirectiveNoFileComp
	}
}

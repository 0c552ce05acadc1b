package apply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/cmdutil"
)

// NewPatchCmd is `patch --type merge`.
func NewPatchCmd(e *cmdutil.Env, g *cmdutil.Globals) *cobra.Command {
	var patch, patchType string
	cmd := &cobra.Command{
		Use:   "patch KIND NAME|KIND/NAME [--type merge] --patch PATCH",
		Short: "Change fields of an object with a JSON merge patch",
		Long: `Patch applies a JSON merge patch (RFC 7386, kubectl's --type merge) to an
object: the patch's fields replace the object's, a null removes one, and
lists are replaced whole. The patch may be JSON or YAML. The result is
decoded strictly (an unknown field is an error) and written with
compare-and-swap on the version read, re-applied to a fresh read on a
conflict, so no concurrent change is lost; the server validates it as any
other write. Status is the controllers': a patch of it changes nothing.

The patch is given with --patch: -p is --project, as for every command.`,
		Example: `  slipway patch app hello --type merge --patch '{"spec":{"replicas":3}}'
  slipway patch app/hello --patch '{"metadata":{"labels":{"team":null}}}'
  slipway patch route hello --patch 'spec: {path: /api}' -p staging`,
		ValidArgsFunction: cmdutil.CompleteTarget(e, g, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if patchType != "merge" {
				return fmt.Errorf("--type %s is not supported: use --type merge (a JSON merge patch)", patchType)
			}
			if patch == "" {
				return errors.New(`give the patch with --patch, e.g. --patch '{"spec":{"replicas":3}}' (-p is --project)`)
			}
			var p any
			if err := yaml.Unmarshal([]byte(patch), &p); err != nil {
				return fmt.Errorf("--patch: neither JSON nor YAML: %v", err)
			}
			pm, ok := p.(map[string]any)
			if !ok {
				return errors.New("--patch: must be an object, e.g. {\"spec\":{...}}")
			}
			info, names, err := cmdutil.ParseTarget(args)
			if err != nil {
				return err
			}
			if len(names) != 1 {
				return fmt.Errorf("name one %s to patch: slipway patch %s NAME --patch PATCH", strings.ToLower(info.Kind), strings.ToLower(info.Kind))
			}
			cn, err := g.Connect(e)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			project := cn.ProjectOf(info)
			obj, err := cn.Client.Get(ctx, info, project, names[0])
			if err != nil {
				return err
			}
			changed := false
			_, err = cmdutil.UpdateObject(ctx, cn, info, obj, cmdutil.UpdateAttempts, func(o api.Object) (bool, error) {
				patched, err := mergePatch(info, o, pm)
				if err != nil {
					return false, err
				}
				changed = !reflect.DeepEqual(userPart(o), userPart(patched))
				if changed {
					reflect.ValueOf(o).Elem().Set(reflect.ValueOf(patched).Elem())
				}
				return changed, nil
			})
			what := strings.ToLower(info.Kind) + "/" + names[0]
			if errors.Is(err, cmdutil.ErrKeptChanging) {
				return fmt.Errorf("%s changed %d times while it was being patched: try again", what, cmdutil.UpdateAttempts)
			}
			if err != nil {
				return err
			}
			if !changed {
				fmt.Fprintf(e.Stdout, "%s patched (no change)\n", what)
				return nil
			}
			fmt.Fprintf(e.Stdout, "%s patched\n", what)
			return nil
		},
	}
	// No -p: it is --project here (kubectl's -n), as logs has no -p for --previous.
	cmd.Flags().StringVar(&patch, "patch", "", "the patch, JSON or YAML (kubectl's -p: here -p is --project)")
	cmd.Flags().StringVar(&patchType, "type", "merge", "patch type: merge (JSON merge patch, RFC 7386)")
	return cmd
}

// mergePatch returns obj with the merge patch applied, decoded strictly
// into a new object of its kind. The object's identity (kind, name,
// project, uid, resourceVersion) is kept whatever the patch says.
func mergePatch(info api.KindInfo, obj api.Object, patch map[string]any) (api.Object, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	merged, err := json.Marshal(applyMerge(doc, patch))
	if err != nil {
		return nil, err
	}
	out := info.NewObject()
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return nil, fmt.Errorf("the patched %s is not one: %v", info.Kind, err)
	}
	om, m := obj.GetMeta(), out.GetMeta()
	if m.Name != om.Name || m.Project != om.Project {
		return nil, errors.New("a patch cannot rename an object or move it to another project")
	}
	m.UID, m.ResourceVersion = om.UID, om.ResourceVersion
	*out.GetTypeMeta() = *obj.GetTypeMeta()
	return out, nil
}

// applyMerge is RFC 7386's MergePatch(target, patch).
func applyMerge(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = applyMerge(tm[k], v)
	}
	return tm
}

// userPart is what a user's write changes (spec, labels, annotations and
// the rest but status), for telling a patch that changes nothing.
func userPart(o api.Object) any {
	b, _ := json.Marshal(o)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	delete(m, "status")
	return m
}

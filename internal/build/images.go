package build

import (
	"path"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// RecordImage puts rec at the head of an image stream's history and
// returns what is kept and what is pruned: the limit newest images stay,
// and older ones go, except those still in use (a Revision or the App's template names
// them: `rollout undo` must find its image). A record of the same build
// number replaces the old one. Pure.
func RecordImage(images []api.ImageRecord, rec api.ImageRecord, limit int, inUse map[string]bool) (kept, pruned []api.ImageRecord) {
	kept = append(kept, rec)
	for _, im := range images {
		if im.Number != rec.Number {
			kept = append(kept, im)
		}
	}
	if limit < 1 {
		limit = int(api.DefaultImageHistoryLimit)
	}
	all := kept
	kept = nil
	for i, im := range all {
		if i < limit || inUse[im.Image] {
			kept = append(kept, im)
		} else {
			pruned = append(pruned, im)
		}
	}
	return kept, pruned
}

// TargetContainers are the containers of app a new image goes to: those
// its ImageChange trigger names (all when it names none), or nil when the
// App has no ImageChange trigger.
func TargetContainers(app *api.App) []string {
	for _, t := range app.Spec.Triggers {
		if t.Type != api.TriggerImageChange {
			continue
		}
		if t.ImageChange != nil && len(t.ImageChange.ContainerNames) > 0 {
			return slices.Clone(t.ImageChange.ContainerNames)
		}
		names := make([]string, len(app.Spec.Template.Containers))
		for i, c := range app.Spec.Template.Containers {
			names[i] = c.Name
		}
		return names
	}
	return nil
}

// ApplyImageChange sets image on the App's target containers and reports
// which ones changed (none: the App has no ImageChange trigger, or already
// runs image). It changes app in place: pass a copy. Pure.
func ApplyImageChange(app *api.App, image string) []string {
	targets := TargetContainers(app)
	var changed []string
	for i := range app.Spec.Template.Containers {
		c := &app.Spec.Template.Containers[i]
		if slices.Contains(targets, c.Name) && c.Image != image {
			c.Image = image
			changed = append(changed, c.Name)
		}
	}
	return changed
}

// Executable is the path, relative to the image's root, of the program a
// binary build produces or expects: the command of the App's first target
// container (the first container when there is no ImageChange trigger) as
// written when it is relative ("hello", "./bin/web" → "bin/web"), its base
// name when it is absolute, and "app" when there is no command.
func Executable(app *api.App) string {
	cs := app.Spec.Template.Containers
	targets := TargetContainers(app)
	for _, c := range cs {
		if len(targets) > 0 && !slices.Contains(targets, c.Name) {
			continue
		}
		if len(c.Command) > 0 {
			cmd := c.Command[0]
			if p := path.Clean(cmd); !path.IsAbs(cmd) && p != "." && p != ".." && !strings.HasPrefix(p, "../") {
				return p
			}
			if b := path.Base(cmd); b != "." && b != "/" && b != ".." {
				return b
			}
		}
		break
	}
	return "app"
}

// DefaultBuildHistoryLimit is how many finished Builds of an App are kept
// (with their logs); older ones are deleted.
const DefaultBuildHistoryLimit = 10

// PruneBuilds names the finished builds of one App to delete so that at
// most keep remain, oldest (lowest number) first. Builds not finished are
// never pruned. Pure.
func PruneBuilds(builds []*api.Build, keep int) []string {
	var done []*api.Build
	for _, b := range builds {
		if b.Status.Finished() {
			done = append(done, b)
		}
	}
	slices.SortFunc(done, func(a, b *api.Build) int { return cmpInt(b.Spec.Number, a.Spec.Number) })
	var out []string
	for i, b := range done {
		if i >= keep {
			out = append(out, b.Metadata.Name)
		}
	}
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

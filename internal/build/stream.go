package build

import (
	"context"
	"os"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/registry"
)

// maxConflicts bounds the read-modify-write retries on a busy object.
const maxConflicts = 10

// recordImage adds the build's image to the App's ImageStream (created at
// the first build) and prunes what falls beyond its history limit, with
// the artifacts or Docker tags of the pruned images.
func (r *Runner) recordImage(ctx context.Context, b *api.Build, res result, app *api.App) error {
	project := b.Metadata.Project
	rec := api.ImageRecord{
		Image: res.image, Digest: res.digest, Build: b.Metadata.Name, Number: b.Spec.Number,
		Source: describeSource(b.Spec.Source), Created: r.Clock.Now(),
	}
	inUse, err := r.imagesInUse(ctx, project, app)
	if err != nil {
		return err
	}
	for range maxConflicts {
		obj, err := r.Reg.Get(ctx, imageStreamKind, project, b.Spec.App)
		if api.IsNotFound(err) {
			obj, err = r.Reg.Create(ctx, &api.ImageStream{Metadata: api.ObjectMeta{
				Name: b.Spec.App, Project: project, Labels: map[string]string{"app": b.Spec.App},
			}})
			if api.IsAlreadyExists(err) {
				continue
			}
		}
		if err != nil {
			return err
		}
		s := obj.(*api.ImageStream)
		limit := int(api.DefaultImageHistoryLimit)
		if s.Spec.HistoryLimit != nil {
			limit = int(*s.Spec.HistoryLimit)
		}
		kept, pruned := RecordImage(s.Status.Images, rec, limit, inUse)
		s.Status.Images = kept
		if _, err := r.Reg.UpdateStatus(ctx, s); api.IsConflict(err) {
			continue
		} else if err != nil {
			return err
		}
		for _, im := range pruned {
			r.removeImage(ctx, project, b.Spec.App, im)
		}
		return nil
	}
	return api.Errorf(api.ReasonConflict, "image stream %s kept changing", b.Spec.App)
}

// imagesInUse are the images the App's template and Revisions name.
func (r *Runner) imagesInUse(ctx context.Context, project string, app *api.App) (map[string]bool, error) {
	inUse := map[string]bool{}
	for _, c := range app.Spec.Template.Containers {
		inUse[c.Image] = true
	}
	revs, _, err := r.Reg.List(ctx, revisionKind, project, listAll)
	if err != nil {
		return nil, err
	}
	for _, o := range revs {
		rev := o.(*api.Revision)
		if rev.Spec.App != app.Metadata.Name {
			continue
		}
		for _, c := range rev.Spec.Template.Containers {
			inUse[c.Image] = true
		}
	}
	return inUse, nil
}

func (r *Runner) removeImage(ctx context.Context, project, app string, im api.ImageRecord) {
	var err error
	if r.Docker != nil {
		err = r.Docker.Remove(ctx, im.Image)
	} else if n, ok := imageNumber(im.Image, project, app); ok {
		err = os.RemoveAll(ArtifactPath(r.ArtifactDir, project, app, n))
	}
	if err != nil {
		r.Log.Warn("pruning an old image", "image", im.Image, "err", err)
		return
	}
	r.Log.Info("pruned an old image", "image", im.Image)
}

// imageNumber reads n from <project>/<app>:<n>.
func imageNumber(ref, project, app string) (int64, bool) {
	s, ok := strings.CutPrefix(ref, project+"/"+app+":")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// imageChange writes image into the App's template for the containers of
// its ImageChange trigger; the deploy controller turns the changed template
// into a Revision and rolls it out with the App's strategy.
func (r *Runner) imageChange(ctx context.Context, b *api.Build, image string) ([]string, error) {
	for range maxConflicts {
		obj, err := r.Reg.Get(ctx, appKind, b.Metadata.Project, b.Spec.App)
		if err != nil {
			return nil, err
		}
		app := obj.(*api.App)
		changed := ApplyImageChange(app, image)
		if len(changed) == 0 {
			return nil, nil
		}
		if _, err := r.Reg.Update(ctx, app); api.IsConflict(err) {
			continue
		} else if err != nil {
			return nil, err
		}
		if r.Events != nil {
			r.Events.Record(ctx, app, api.EventNormal, "ImageChange",
				"build "+b.Metadata.Name+" set image "+image+" on containers "+strings.Join(changed, ", "))
		}
		return changed, nil
	}
	return nil, api.Errorf(api.ReasonConflict, "app %s kept changing", b.Spec.App)
}

var listAll = registry.ListOptions{}

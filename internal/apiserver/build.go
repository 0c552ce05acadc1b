package apiserver

import (
	"context"
	"io"
	"net/http"
	"slices"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
	"slipway.dev/slipway/internal/registry"
)

// BuildSources keeps uploaded build sources and serves build logs; the
// build package implements it (the API server never imports it).
type BuildSources interface {
	// Limit is the largest source archive accepted, in bytes.
	Limit() int64
	// Stage stores and checks an uploaded archive. Its errors are
	// *api.Error: RequestEntityTooLarge past Limit, BadRequest for an
	// archive that is not a plain tar of files, directories and links
	// inside the source.
	Stage(ctx context.Context, body io.Reader) (StagedSource, error)
	// Release removes what Claim kept for a build that could not be
	// recorded.
	Release(project, build string)
	// BuildLog opens a build's log (see PodLogs for the reader's contract).
	BuildLog(ctx context.Context, project, build string, follow bool) (io.ReadCloser, error)
}

// StagedSource is an upload not yet attached to a build.
type StagedSource interface {
	Size() int64
	Digest() string
	// Claim attaches the upload to a build name; an AlreadyExists error
	// says the name is taken, and the upload stays staged.
	Claim(project, build string) error
	// Discard removes an upload that was not claimed (no-op after Claim).
	Discard()
}

var (
	appKind, _         = api.LookupKind("App")
	buildKind, _       = api.LookupKind("Build")
	imageStreamKind, _ = api.LookupKind("ImageStream")
)

// startBuild serves POST /api/v1/projects/{project}/apps/{name}/builds:
// the body is the source directory as a tar archive; the answer is the
// new Build (201), numbered after the App's previous builds. The build
// runner picks it up from the store.
func (s *server) startBuild(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodPost {
		return methodNotAllowed(w, r, http.MethodPost)
	}
	if s.opts.Builds == nil {
		return api.Errorf(api.ReasonUnavailable, "builds are not available: this API server runs without a build runner")
	}
	project, app := r.PathValue("project"), r.PathValue("name")
	q := r.URL.Query()
	for k := range q {
		if k != "strategy" {
			return api.Errorf(api.ReasonBadRequest, "unknown parameter %q: the only parameter is strategy (Docker, Go or Directory)", k)
		}
	}
	limit := s.opts.Builds.Limit()
	if r.ContentLength > limit {
		return api.Errorf(api.ReasonTooLarge, "the build source is %d bytes, larger than the limit of %d bytes: leave files out with .dockerignore", r.ContentLength, limit)
	}
	ctx := r.Context()
	if _, err := s.reg.Get(ctx, appKind, project, app); err != nil {
		return err
	}
	proto := &api.Build{
		Metadata: api.ObjectMeta{Project: project, Labels: map[string]string{"app": app}},
		Spec:     api.BuildSpec{App: app, Number: 1, Source: api.BuildSource{Type: api.BuildSourceDir}, Strategy: api.BuildStrategy{Type: q.Get("strategy")}},
	}
	proto.Metadata.Name = api.BuildName(app, 1)
	api.SetDefaults(proto)
	if errs := validation.Validate(proto); len(errs) > 0 {
		return errs.ToError("Build", proto.Metadata.Name)
	}
	staged, err := s.opts.Builds.Stage(ctx, r.Body)
	if err != nil {
		return err
	}
	defer staged.Discard()
	n, err := s.nextBuildNumber(ctx, project, app)
	if err != nil {
		return err
	}
	for range 100 {
		name := api.BuildName(app, n)
		if err := staged.Claim(project, name); api.IsAlreadyExists(err) {
			n++ // a concurrent upload, or what a deleted build left: the next number
			continue
		} else if err != nil {
			return err
		}
		b := *proto
		b.Metadata.Name, b.Spec.Number = name, n
		b.Spec.Source.ArchiveBytes, b.Spec.Source.ArchiveDigest = staged.Size(), staged.Digest()
		created, err := s.reg.Create(ctx, &b)
		if err != nil {
			s.opts.Builds.Release(project, name)
			return err
		}
		s.writeJSON(w, http.StatusCreated, created)
		return nil
	}
	return api.Errorf(api.ReasonConflict, "could not find a free build number for app %s: try again", app)
}

// nextBuildNumber is one more than the highest number among the App's
// Builds and the images of its ImageStream (builds may have been deleted;
// a number, and so an image tag, is never reused).
func (s *server) nextBuildNumber(ctx context.Context, project, app string) (int64, error) {
	var top int64
	builds, _, err := s.reg.List(ctx, buildKind, project, registry.ListOptions{})
	if err != nil {
		return 0, err
	}
	for _, o := range builds {
		if b := o.(*api.Build); b.Spec.App == app {
			top = max(top, b.Spec.Number)
		}
	}
	obj, err := s.reg.Get(ctx, imageStreamKind, project, app)
	switch {
	case err == nil:
		for _, im := range obj.(*api.ImageStream).Status.Images {
			top = max(top, im.Number)
		}
	case !api.IsNotFound(err):
		return 0, err
	}
	return top + 1, nil
}

// buildLog serves GET /api/v1/projects/{project}/builds/{name}/log[?follow=true].
func (s *server) buildLog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return methodNotAllowed(w, r, http.MethodGet)
	}
	project, name := r.PathValue("project"), r.PathValue("name")
	q := r.URL.Query()
	for k := range q {
		if !slices.Contains([]string{"follow"}, k) {
			return api.Errorf(api.ReasonBadRequest, "unknown parameter %q: the only parameter is follow", k)
		}
	}
	follow, err := queryBool(q.Get("follow"), "follow")
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.reg.Get(ctx, buildKind, project, name); err != nil {
		return err
	}
	if s.opts.Builds == nil {
		return api.Errorf(api.ReasonUnavailable, "build logs are not available: this API server runs without a build runner")
	}
	rc, err := s.opts.Builds.BuildLog(ctx, project, name, follow)
	if err != nil {
		return err
	}
	s.streamLog(ctx, w, r, rc, follow)
	return nil
}

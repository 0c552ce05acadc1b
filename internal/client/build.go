package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"slipway.dev/slipway/internal/api"
)

// StartBuild uploads a source archive (a tar stream, see build/archive)
// for a build of app and returns the new Build. strategy may be empty
// (the runner detects it from the source).
func (c *Client) StartBuild(ctx context.Context, project, app string, source io.Reader, strategy string) (*api.Build, error) {
	if app == "" {
		return nil, errors.New("StartBuild: no app name")
	}
	if project == "" {
		project = api.DefaultProject
	}
	q := url.Values{}
	if strategy != "" {
		q.Set("strategy", strategy)
	}
	var b api.Build
	path := "/api/v1/projects/" + url.PathEscape(project) + "/apps/" + url.PathEscape(app) + "/builds"
	if err := c.do(ctx, http.MethodPost, path, q, source, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// BuildLog opens a build's log; with follow, reading blocks for new output
// until the build has finished and its log is read.
func (c *Client) BuildLog(ctx context.Context, project, name string, follow bool) (io.ReadCloser, error) {
	if project == "" {
		project = api.DefaultProject
	}
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, http.MethodGet, "/api/v1/projects/"+url.PathEscape(project)+"/builds/"+url.PathEscape(name)+"/log", q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"slipway.dev/slipway/internal/api"
)

// LogOptions selects which log of a pod to read and how much of it.
type LogOptions struct {
	// Container may be empty when the pod has exactly one container.
	Container string
	// Follow keeps the stream open for new output until ctx ends or the
	// container's run ends.
	Follow bool
	// Previous reads the log of the container's run before the current one.
	Previous bool
	// TailLines, when positive, limits the output to the last TailLines
	// lines; 0 or less means the whole log.
	TailLines int
}

// PodLogs opens a pod container's log (stdout and stderr as written). The
// caller reads it and must close it; with Follow, reading blocks until new
// output comes, ctx ends or the run ends. A missing pod, a bad container
// name and the like come back as *api.Error before any output.
func (c *Client) PodLogs(ctx context.Context, project, pod string, opts LogOptions) (io.ReadCloser, error) {
	if pod == "" {
		return nil, errors.New("PodLogs: no pod name")
	}
	if project == "" {
		project = api.DefaultProject
	}
	q := url.Values{}
	if opts.Container != "" {
		q.Set("container", opts.Container)
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	if opts.Previous {
		q.Set("previous", "true")
	}
	if opts.TailLines > 0 {
		q.Set("tailLines", fmt.Sprint(opts.TailLines))
	}
	path := "/api/v1/projects/" + url.PathEscape(project) + "/pods/" + url.PathEscape(pod) + "/log"
	resp, err := c.send(ctx, http.MethodGet, path, q, nil)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

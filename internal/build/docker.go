package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/client"
)

// Docker builds images through the Docker Engine API (the socket from
// DOCKER_HOST or the default), negotiating the API version down to the
// engine's (Debian's docker.io 20.10 speaks 1.41). Nothing is ever pulled:
// a Dockerfile must start FROM scratch or from an image already on the
// engine, which the engine reports clearly otherwise.
type Docker struct {
	c *client.Client
}

// NewDocker connects to the engine and checks that it answers.
func NewDocker(ctx context.Context) (*Docker, error) {
	c, err := client.New(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	if _, err := c.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		c.Close()
		return nil, fmt.Errorf("no Docker engine answers at %s: %w", c.DaemonHost(), err)
	}
	return &Docker{c: c}, nil
}

// Close releases the client.
func (d *Docker) Close() error { return d.c.Close() }

// buildMessage is one line of the engine's build output stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
	Aux json.RawMessage `json:"aux"`
}

// Build sends the context tar (the Dockerfile named dockerfile inside it)
// to the engine, tags the image, copies the engine's output to log and
// returns the image ID (sha256:…).
func (d *Docker) Build(ctx context.Context, buildContext io.Reader, dockerfile, tag string, labels map[string]string, log io.Writer) (string, error) {
	res, err := d.c.ImageBuild(ctx, buildContext, client.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  dockerfile,
		Remove:      true,
		ForceRemove: true,
		Labels:      labels,
		// The classic builder: BuildKit needs a session the engine of
		// Debian's docker.io would have to be configured for.
		Version: build.BuilderV1,
	})
	if err != nil {
		return "", fmt.Errorf("docker build: %w", err)
	}
	defer res.Body.Close()
	dec := json.NewDecoder(res.Body)
	var id string
	for {
		var m buildMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return "", fmt.Errorf("docker build: reading the engine's output: %w", err)
		}
		switch {
		case m.Error != "" || m.ErrorDetail != nil:
			msg := m.Error
			if msg == "" {
				msg = m.ErrorDetail.Message
			}
			fmt.Fprintln(log, msg)
			return "", fmt.Errorf("docker build: %s", strings.TrimSpace(msg))
		case m.Stream != "":
			io.WriteString(log, m.Stream)
		case m.Status != "":
			fmt.Fprintln(log, m.Status)
		case len(m.Aux) > 0:
			var aux struct{ ID string }
			if json.Unmarshal(m.Aux, &aux) == nil && aux.ID != "" {
				id = aux.ID
			}
		}
	}
	// The classic builder reports the ID in a "Successfully built" line
	// rather than aux; inspecting the tag is exact either way.
	ins, err := d.c.ImageInspect(ctx, tag)
	if err != nil {
		return "", fmt.Errorf("docker build: the image %s is not on the engine after the build: %w", tag, err)
	}
	if id != "" && id != ins.ID {
		return "", fmt.Errorf("docker build: the engine built %s but %s is %s", id, tag, ins.ID)
	}
	return ins.ID, nil
}

// Remove deletes a tag (and the image when nothing else refers to it).
func (d *Docker) Remove(ctx context.Context, ref string) error {
	_, err := d.c.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	return err
}

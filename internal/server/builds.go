package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"slipway.dev/slipway/internal/apiserver"
	"slipway.dev/slipway/internal/build"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/controller"
	"slipway.dev/slipway/internal/events"
	"slipway.dev/slipway/internal/registry"
)

// artifactDir is where the process runtime's build artifacts live.
func artifactDir(dataDir string) string { return filepath.Join(dataDir, "artifacts") }

// builds wires the build runner: sources and logs under <data-dir>/builds,
// artifacts under <data-dir>/artifacts, images on the Docker engine when
// the runtime is docker.
type builds struct {
	runner *build.Runner
	api    buildAPI
}

func newBuilds(ctx context.Context, cfg Config, reg *registry.Registry, log *slog.Logger) (*builds, error) {
	src := &build.Sources{Dir: filepath.Join(cfg.DataDir, "builds")}
	if err := os.MkdirAll(src.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("builds dir: %w", err)
	}
	clk := clock.Real{}
	r := &build.Runner{
		Reg: reg, Sources: src, ArtifactDir: artifactDir(cfg.DataDir), GoEnv: goEnv(os.Environ()), Clock: clk,
		Events: &events.Recorder{Reg: reg, Source: "build", Clock: clk, Log: log},
		Log:    log.With("controller", "build"),
	}
	if cfg.Runtime == "docker" {
		d, err := build.NewDocker(ctx)
		if err != nil {
			return nil, fmt.Errorf("builds on docker: %w", err)
		}
		r.Docker = d
	}
	return &builds{runner: r, api: buildAPI{src: src, logs: &build.Logs{Reg: reg, Sources: src}}}, nil
}

// run runs the build controller until ctx ends.
func (b *builds) run(ctx context.Context) error {
	b.runner.Run(ctx, controller.NewQueue[controller.Key](clock.Real{}, controller.DefaultBackoff))
	if b.runner.Docker != nil {
		b.runner.Docker.Close()
	}
	return nil
}

// goEnv is what `go build` sees of Slipway's environment: the toolchain's
// own settings and what a shell would have, nothing else.
func goEnv(environ []string) []string {
	keep := map[string]bool{"PATH": true, "HOME": true, "USER": true, "TMPDIR": true, "XDG_CACHE_HOME": true,
		"HTTPS_PROXY": true, "HTTP_PROXY": true, "NO_PROXY": true, "https_proxy": true, "http_proxy": true, "no_proxy": true}
	var out []string
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		if keep[k] || strings.HasPrefix(k, "GO") {
			out = append(out, kv)
		}
	}
	return out
}

// buildAPI serves the API's build endpoints from the build package, so
// that the API server never imports it.
type buildAPI struct {
	src  *build.Sources
	logs *build.Logs
}

func (b buildAPI) Limit() int64 { return b.src.Limit() }

func (b buildAPI) Stage(ctx context.Context, body io.Reader) (apiserver.StagedSource, error) {
	st, err := b.src.Stage(ctx, body)
	if err != nil {
		return nil, err
	}
	return st, nil
}

func (b buildAPI) Release(project, name string) { b.src.Release(project, name) }

func (b buildAPI) BuildLog(ctx context.Context, project, name string, follow bool) (io.ReadCloser, error) {
	return b.logs.BuildLog(ctx, project, name, follow)
}

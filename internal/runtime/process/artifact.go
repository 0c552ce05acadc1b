package process

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/runtime"
)

// The process runtime has no images. What stands for one is a build
// artifact: `slipway build` makes the directory
// <ArtifactDir>/<project>/<app>/<n> and names it with the reference
// <project>/<app>:<n>, the same reference the Docker runtime tags its image
// with, so an App's template reads the same on both runtimes.
//
// A container whose image is such a reference runs from its artifact:
//   - its working directory is the artifact (a relative workingDir is taken
//     inside it, as in an image);
//   - a command without a slash ("hello") names the artifact's program when
//     the artifact holds an executable of that name, ahead of PATH; a
//     relative command ("./hello", "bin/web") resolves against the working
//     directory as always; an absolute one is left alone.
//
// Any other image (e.g. "nginx:1.27") is ignored, as it always was: the
// process runtime runs commands, not images. A reference of the artifact
// form whose directory is missing is an error naming it, never a silent
// fallback to whatever the host's PATH holds.

// artifactRef parses <project>/<app>:<n>.
func artifactRef(image string) (project, app string, n int64, ok bool) {
	name, tag, found := strings.Cut(image, ":")
	if !found {
		return "", "", 0, false
	}
	project, app, found = strings.Cut(name, "/")
	if !found || !isLabel(project) || !isLabel(app) {
		return "", "", 0, false
	}
	n, err := strconv.ParseInt(tag, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != tag {
		return "", "", 0, false
	}
	return project, app, n, true
}

// isLabel: a Slipway project or app name (an RFC 1123 label).
func isLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// runFrom returns the working directory a container runs in and the
// program prog (its command[0], or an exec probe's) stands for, resolving
// an artifact image as described above.
func (d *Driver) runFrom(cfg runtime.ContainerConfig, prog string) (wd, program string, err error) {
	wd, program = cfg.WorkingDir, prog
	project, app, n, ok := artifactRef(cfg.Image)
	if d.opts.ArtifactDir == "" || !ok {
		if wd == "" {
			wd = "/"
		}
		return wd, program, nil
	}
	art := filepath.Join(d.opts.ArtifactDir, project, app, strconv.FormatInt(n, 10))
	if fi, err := os.Stat(art); err != nil || !fi.IsDir() {
		return "", "", fmt.Errorf("%w: container %q: image %q: no build artifact at %s (build it with slipway build app/%s)", runtime.ErrInvalid, cfg.Name, cfg.Image, art, app)
	}
	switch {
	case wd == "":
		wd = art
	case !filepath.IsAbs(wd):
		wd = filepath.Join(art, wd)
	}
	if !strings.Contains(prog, "/") {
		p := filepath.Join(art, prog)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			program = p
		} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("%w: container %q: %v", runtime.ErrInvalid, cfg.Name, err)
		}
	}
	return wd, program, nil
}

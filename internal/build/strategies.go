package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build/archive"
)

// packagingDockerfile is the Dockerfile a binary build is packaged with.
// Its name cannot clash with a user's file that matters: it is written
// after the source is unpacked, replacing any file of that name.
const packagingDockerfile = ".slipway.Dockerfile"

// ArtifactPath is the directory of build n of an App on the process runtime.
func ArtifactPath(artifactDir, project, app string, n int64) string {
	return filepath.Join(artifactDir, project, app, strconv.FormatInt(n, 10))
}

// artifact builds on the process runtime: the work directory (with the
// compiled program for a Go build) becomes <artifacts>/<project>/<app>/<n>.
func (r *Runner) artifact(ctx context.Context, b *api.Build, strategy, work, exe string, log io.Writer) (string, error) {
	switch strategy {
	case api.BuildDocker:
		return "", errors.New("a Dockerfile build needs the Docker runtime (slipway up --runtime docker); this platform runs pods as processes: remove the Dockerfile (or leave it out with .dockerignore) for a binary build")
	case api.BuildGo:
		if err := r.goBuild(ctx, work, b.Spec.App, exe, log); err != nil {
			return "", err
		}
	}
	if err := checkExecutable(work, exe); err != nil {
		return "", err
	}
	dst := ArtifactPath(r.ArtifactDir, b.Metadata.Project, b.Spec.App, b.Spec.Number)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return "", err
	}
	if _, err := os.Lstat(dst); err == nil {
		return "", fmt.Errorf("the artifact %s already exists: build numbers are never reused", dst)
	}
	digest, err := treeDigest(work)
	if err != nil {
		return "", err
	}
	if err := os.Rename(work, dst); err != nil {
		return "", err
	}
	fmt.Fprintf(log, "artifact: %s\n", dst)
	return digest, nil
}

// dockerImage builds on Docker: the Dockerfile of the source, or the
// program packaged FROM scratch under /app (the working directory, and on
// PATH, so that "hello", "./hello" and "/app/hello" all run it).
func (r *Runner) dockerImage(ctx context.Context, b *api.Build, strategy, work, exe, tag string, log io.Writer) (string, error) {
	dockerfile := "Dockerfile"
	switch strategy {
	case api.BuildGo, api.BuildDirectory:
		if strategy == api.BuildGo {
			if err := r.goBuild(ctx, work, b.Spec.App, exe, log); err != nil {
				return "", err
			}
		}
		if err := checkExecutable(work, exe); err != nil {
			return "", err
		}
		df := fmt.Sprintf("FROM scratch\nCOPY . /app/\nWORKDIR /app\nENV PATH=/app\nENTRYPOINT [%q]\n", "/app/"+exe)
		if err := os.WriteFile(filepath.Join(work, packagingDockerfile), []byte(df), 0o600); err != nil {
			return "", err
		}
		dockerfile = packagingDockerfile
	}
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.Pack(pw, work, archive.PackOptions{Keep: []string{dockerfile, exe}})
		pw.CloseWithError(err)
	}()
	// One label (the classic builder adds a step, a container, per label),
	// and not the runtime's: containers inherit an image's labels.
	labels := map[string]string{"slipway.dev/build": b.Metadata.Project + "/" + b.Metadata.Name}
	id, err := r.Docker.Build(ctx, pr, dockerfile, tag, labels, log)
	pr.CloseWithError(errors.New("build ended"))
	return id, err
}

// goBuild compiles the Go module in work to work/exe with CGO_ENABLED=0 (a
// static program that runs FROM scratch). A directory of .go files without
// go.mod is made a module named after the App first.
func (r *Runner) goBuild(ctx context.Context, work, app, exe string, log io.Writer) error {
	env := append(append([]string{}, r.GoEnv...), "CGO_ENABLED=0", "GOTOOLCHAIN=local")
	goBin, err := lookGo(env)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(work, "go.mod")); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(log, "no go.mod: making the directory module %q\n", app)
		if err := runLogged(ctx, work, env, log, goBin, "mod", "init", app); err != nil {
			return fmt.Errorf("go mod init: %w", err)
		}
	}
	if fi, err := os.Lstat(filepath.Join(work, exe)); err == nil && fi.IsDir() {
		return fmt.Errorf("cannot write the program to %s: a directory of that name is in the source (the name comes from the app's container command)", exe)
	}
	if err := os.MkdirAll(filepath.Dir(filepath.Join(work, exe)), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(log, "go build -trimpath -o %s . (CGO_ENABLED=0)\n", exe)
	if err := runLogged(ctx, work, env, log, goBin, "build", "-trimpath", "-buildvcs=false", "-o", exe, "."); err != nil {
		return fmt.Errorf("go build: %w (the compiler's output is in the build log)", err)
	}
	return nil
}

func lookGo(env []string) (string, error) {
	for _, kv := range env {
		if p, ok := strings.CutPrefix(kv, "PATH="); ok {
			for _, dir := range filepath.SplitList(p) {
				c := filepath.Join(dir, "go")
				if fi, err := os.Stat(c); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
					return c, nil
				}
			}
		}
	}
	return "", errors.New("a Go build needs the go command on Slipway's PATH: install Go, or add a Dockerfile and run with --runtime docker")
}

// runLogged runs a command in its own process group (killed whole when ctx
// ends), its output going to the build log.
func runLogged(ctx context.Context, dir string, env []string, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = dir, env, log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd.Run()
}

// checkExecutable: a binary build must end with the program the App runs.
func checkExecutable(work, exe string) error {
	fi, err := os.Stat(filepath.Join(work, exe))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("the source has no %s: a directory build packages the source as is and must hold the executable the app's container command names (or add go.mod / .go files for a Go build, or a Dockerfile)", exe)
	case err != nil:
		return err
	case !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0:
		return fmt.Errorf("%s in the source is not an executable file (mode %s)", exe, fi.Mode())
	}
	return nil
}

// treeDigest is the sha256 of a directory tree: each entry's path, type,
// permission bits and content (or link target), in path order.
func treeDigest(dir string) (string, error) {
	type ent struct{ rel, line string }
	var ents []ent
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, dir+string(filepath.Separator)))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		var what string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(p)
			if err != nil {
				return err
			}
			what = "link " + t
		case fi.IsDir():
			what = "dir"
		default:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			what = "file " + hex.EncodeToString(h.Sum(nil))
		}
		ents = append(ents, ent{rel, fmt.Sprintf("%q %o %s\n", rel, fi.Mode().Perm(), what)})
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].rel < ents[j].rel })
	h := sha256.New()
	for _, e := range ents {
		io.WriteString(h, e.line)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

package build

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/build/archive"
)

// Files under Dir (<data-dir>/builds), every directory 0700 and every file
// 0600: a source may hold anything its author had in the directory.
const (
	uploadsDir = ".uploads"
	sourceFile = "source.tar"
	logFile    = "build.log"
	workDir    = "src"
)

// DefaultMaxSourceBytes bounds an uploaded source archive.
const DefaultMaxSourceBytes = 64 << 20

// Sources keeps uploaded source archives and build logs under Dir.
type Sources struct {
	Dir string
	// MaxBytes bounds an archive (DefaultMaxSourceBytes when 0); its files,
	// unpacked, are bounded by the same figure.
	MaxBytes int64
}

func (s *Sources) limit() int64 {
	if s.MaxBytes > 0 {
		return s.MaxBytes
	}
	return DefaultMaxSourceBytes
}

// Limit is the archive size Stage accepts.
func (s *Sources) Limit() int64 { return s.limit() }

func (s *Sources) buildDir(project, build string) string {
	return filepath.Join(s.Dir, project, build)
}

// Staged is an upload written to disk and checked, not yet a build's.
type Staged struct {
	s      *Sources
	path   string
	size   int64
	digest string
}

// Size is the archive's size in bytes.
func (st *Staged) Size() int64 { return st.size }

// Digest is the sha256 of the archive's bytes ("sha256:…").
func (st *Staged) Digest() string { return st.digest }

// Stage writes body (at most Limit bytes) to a private file while hashing
// it, then checks that it is a tar archive Extract accepts. A body over the
// limit is a RequestEntityTooLarge error, a bad archive a BadRequest one
// naming the entry; in both cases nothing is left behind.
func (s *Sources) Stage(ctx context.Context, body io.Reader) (*Staged, error) {
	dir := filepath.Join(s.Dir, uploadsDir)
	if err := os.MkdirAll(dir, 0o700); isNoSpace(err) {
		return nil, noSpace()
	} else if err != nil {
		return nil, err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	p := filepath.Join(dir, hex.EncodeToString(rnd[:])+".tar")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if isNoSpace(err) {
		return nil, noSpace()
	} else if err != nil {
		return nil, err
	}
	st := &Staged{s: s, path: p}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(p)
		}
	}()
	h := sha256.New()
	limit := s.limit()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(body, limit+1))
	switch {
	case n > limit:
		return nil, tooLarge(limit)
	case isNoSpace(err):
		return nil, noSpace()
	case err != nil:
		return nil, api.Errorf(api.ReasonBadRequest, "reading the build source: %v", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := f.Close(); isNoSpace(err) {
		return nil, noSpace()
	} else if err != nil {
		return nil, err
	}
	st.size, st.digest = n, "sha256:"+hex.EncodeToString(h.Sum(nil))
	rf, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	_, err = archive.Check(rf, archive.Limits{MaxBytes: limit})
	rf.Close()
	if errors.Is(err, archive.ErrTooLarge) {
		return nil, api.Errorf(api.ReasonTooLarge, "build source: %v", err)
	}
	if err != nil {
		return nil, api.Errorf(api.ReasonBadRequest, "build source: %v", err)
	}
	ok = true
	return st, nil
}

// isNoSpace tells whether err is the disk refusing a write for want of
// space or quota: the upload is then the server's trouble, not the
// client's (507, not 400).
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

func noSpace() error {
	return api.Errorf(api.ReasonInsufficientStorage, "the build source was not stored: no space left on device: the disk holding Slipway's data dir is full; free space on it and retry")
}

func tooLarge(limit int64) error {
	return api.Errorf(api.ReasonTooLarge, "the build source is larger than the limit of %d bytes: leave files out with %s", limit, archive.IgnoreFile)
}

// Claim makes the staged source the source of build (project/name). The
// build's directory is created with Mkdir, so two uploads can never claim
// one name: the loser gets an AlreadyExists error and may try the next
// number.
func (st *Staged) Claim(project, name string) error {
	pdir := filepath.Join(st.s.Dir, project)
	if err := os.MkdirAll(pdir, 0o700); err != nil {
		return err
	}
	dir := filepath.Join(pdir, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return api.Errorf(api.ReasonAlreadyExists, "build %s/%s already has a source", project, name)
		}
		return err
	}
	if err := os.Rename(st.path, filepath.Join(dir, sourceFile)); err != nil {
		os.Remove(dir)
		return err
	}
	st.path = ""
	return nil
}

// Release gives up a claimed build directory (its Build could not be
// written).
func (s *Sources) Release(project, name string) {
	os.RemoveAll(s.buildDir(project, name))
}

// Discard removes a staged upload that was not claimed.
func (st *Staged) Discard() {
	if st.path != "" {
		os.Remove(st.path)
		st.path = ""
	}
}

// SourcePath is where a build's archive is kept until it has run.
func (s *Sources) SourcePath(project, name string) string {
	return filepath.Join(s.buildDir(project, name), sourceFile)
}

// LogPath is a build's log file.
func (s *Sources) LogPath(project, name string) string {
	return filepath.Join(s.buildDir(project, name), logFile)
}

func (s *Sources) workPath(project, name string) string {
	return filepath.Join(s.buildDir(project, name), workDir)
}

// String describes a build's source for the image stream.
func describeSource(src api.BuildSource) string {
	switch src.Type {
	case api.BuildSourceDockerfile:
		return "Dockerfile (inline)"
	default:
		return fmt.Sprintf("%s %s (%d bytes)", src.Type, src.ArchiveDigest, src.ArchiveBytes)
	}
}

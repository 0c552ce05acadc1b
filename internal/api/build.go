package api

import (
	"strconv"
	"time"
)

// Build turns source into a versioned image of an App. It is created by
// `slipway build` (POST .../apps/{app}/builds with the source archive) and
// named <app>-<number>; the build runner writes its status.
type Build struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     BuildSpec   `json:"spec"`
	Status   BuildStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Build) GetMeta() *ObjectMeta { return &o.Metadata }

// BuildSpec says what to build. It never changes once written.
type BuildSpec struct {
	App string `json:"app"`
	// Number counts the App's builds from 1; the image is tagged with it.
	Number   int64         `json:"number"`
	Source   BuildSource   `json:"source"`
	Strategy BuildStrategy `json:"strategy,omitzero"`
}

// Build source types.
const (
	// BuildSourceDir: a directory uploaded as a tar archive.
	BuildSourceDir = "Dir"
	// BuildSourceDockerfile: a Dockerfile given inline, with no context
	// (Docker only; FROM scratch or an image Slipway built).
	BuildSourceDockerfile = "Dockerfile"
	// BuildSourceBinary: an archive holding a ready executable, packaged as
	// is (the executable the App's container command names).
	BuildSourceBinary = "Binary"
)

// BuildSource is where the build's input comes from.
type BuildSource struct {
	Type string `json:"type"`
	// Dockerfile is the inline Dockerfile of a Dockerfile source.
	Dockerfile string `json:"dockerfile,omitempty"`
	// ArchiveBytes and ArchiveDigest describe the uploaded archive (Dir and
	// Binary sources): its size and the sha256 of its bytes.
	ArchiveBytes  int64  `json:"archiveBytes,omitempty"`
	ArchiveDigest string `json:"archiveDigest,omitempty"`
}

// Build strategy types.
const (
	// BuildDocker: a Docker build of the source's Dockerfile.
	BuildDocker = "Docker"
	// BuildGo: a Go module compiled on the host with CGO_ENABLED=0 and
	// packaged FROM scratch (or as a directory artifact on the process
	// runtime).
	BuildGo = "Go"
	// BuildDirectory: the source packaged as is; it must hold the
	// executable the App's container command names.
	BuildDirectory = "Directory"
)

// BuildStrategy picks how the source is built. An empty type means: detect
// it from the source (a Dockerfile → Docker; go.mod or .go files → Go;
// anything else → Directory).
type BuildStrategy struct {
	Type string `json:"type,omitempty"`
}

// Build phases.
const (
	BuildNew       = "New"
	BuildRunning   = "Running"
	BuildComplete  = "Complete"
	BuildFailed    = "Failed"
	BuildCancelled = "Cancelled"
)

// BuildStatus is written by the build runner only.
type BuildStatus struct {
	Phase string `json:"phase,omitempty"`
	// Strategy is the strategy the build ran with (detected when the spec
	// names none).
	Strategy       string    `json:"strategy,omitempty"`
	StartTime      time.Time `json:"startTime,omitzero"`
	CompletionTime time.Time `json:"completionTime,omitzero"`
	// Duration is CompletionTime - StartTime, e.g. "4.2s".
	Duration string `json:"duration,omitempty"`
	// Image is the reference the build produced: <project>/<app>:<number>.
	// On Docker it is a local image tag; on the process runtime it names
	// the directory <data-dir>/artifacts/<project>/<app>/<number>.
	Image string `json:"image,omitempty"`
	// ImageDigest is the image ID (Docker) or the sha256 of the artifact
	// tree (process runtime).
	ImageDigest string `json:"imageDigest,omitempty"`
	Message     string `json:"message,omitempty"`
	// LogRef is the API path of the build's log.
	LogRef string `json:"logRef,omitempty"`
}

// AnnotationCancelBuild, set on a Build (by `slipway build cancel`), asks
// the build runner to stop it: a build not yet started never starts, a
// running one has its tools killed; either ends Cancelled.
const AnnotationCancelBuild = "slipway.dev/cancel"

// Finished reports whether the build reached a final phase.
func (s BuildStatus) Finished() bool {
	return s.Phase == BuildComplete || s.Phase == BuildFailed || s.Phase == BuildCancelled
}

// BuildName is the name of an App's build number n.
func BuildName(app string, n int64) string { return app + "-" + strconv.FormatInt(n, 10) }

// ImageReference is the reference of build n of an App: <project>/<app>:<n>.
func ImageReference(project, app string, n int64) string {
	return project + "/" + app + ":" + strconv.FormatInt(n, 10)
}

// DefaultImageHistoryLimit is how many images an ImageStream keeps.
const DefaultImageHistoryLimit int32 = 10

// MaxImageHistoryLimit bounds spec.historyLimit.
const MaxImageHistoryLimit = 1000

// ImageStream is an App's history of built images (OpenShift's image
// stream), named after the App. The build runner creates it at the App's
// first build and records each image in its status, newest first.
type ImageStream struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta        `json:"metadata"`
	Spec     ImageStreamSpec   `json:"spec,omitzero"`
	Status   ImageStreamStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *ImageStream) GetMeta() *ObjectMeta { return &o.Metadata }

// ImageStreamSpec is written by users.
type ImageStreamSpec struct {
	// HistoryLimit is how many images are kept; older ones are pruned,
	// except those a Revision of the App still runs (default 10).
	HistoryLimit *int32 `json:"historyLimit,omitempty"`
}

// ImageStreamStatus is written by the build runner.
type ImageStreamStatus struct {
	// Images are the built images, newest first.
	Images []ImageRecord `json:"images,omitempty"`
}

// ImageRecord is one built image.
type ImageRecord struct {
	Image   string    `json:"image"`
	Digest  string    `json:"digest,omitempty"`
	Build   string    `json:"build"`
	Number  int64     `json:"number"`
	Source  string    `json:"source,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

func defaultBuild(b *Build) {
	defaultProject(&b.Metadata)
	if b.Spec.Source.Type == "" {
		b.Spec.Source.Type = BuildSourceDir
	}
}

func defaultImageStream(s *ImageStream) {
	defaultProject(&s.Metadata)
	if s.Spec.HistoryLimit == nil {
		s.Spec.HistoryLimit = valuePtr(DefaultImageHistoryLimit)
	}
}

// MaxInlineDockerfileBytes bounds an inline Dockerfile.
const MaxInlineDockerfileBytes = 64 << 10

package api

// Bounds enforced by validation.Validate (package api/validation). Each one
// is there so that a mistake or an abuse fails at apply time with a clear
// message instead of failing later inside a controller, the runtime or the
// kernel.
const (
	// MaxNameLength: names are DNS labels (RFC 1123).
	MaxNameLength = 63
	// MaxAppNameLength: pod names are <app>-<revision>-<5 chars> and must
	// still be a DNS label; 40 leaves 16 digits for the revision number.
	MaxAppNameLength = 40
	// MaxAnnotationsBytes bounds the total size of an object's annotations
	// (Kubernetes' figure).
	MaxAnnotationsBytes = 256 << 10
	// MaxReplicas bounds spec.replicas of an App or a Revision: every pod is
	// a process on this machine.
	MaxReplicas = 1000
	// MaxEnvStringBytes bounds one NAME=value (and one command or args
	// element): Linux refuses to exec with a single string over
	// MAX_ARG_STRLEN (128 KiB).
	MaxEnvStringBytes = 128 << 10
	// MaxContainerArgBytes bounds command+args+env of one container, well
	// inside the kernel's ARG_MAX budget.
	MaxContainerArgBytes = 1 << 20
	// MaxSecretBytes bounds the keys and values of a Secret.
	MaxSecretBytes = 1 << 20
	// MaxEventMessageBytes bounds Event.message; writers should truncate.
	MaxEventMessageBytes = 4096
	// MaxAlternateBackends is OpenShift's limit on a route's alternateBackends.
	MaxAlternateBackends = 3
	// MaxRetryAttempts bounds a route's retries.attempts.
	MaxRetryAttempts = 5
	// MinMemoryLimit is the smallest memory limit a process can start under.
	MinMemoryLimit = 4 << 20
	// MaxPortNameLength is IANA's limit on a service name (port name).
	MaxPortNameLength = 15
	// MaxRegexLength bounds a route match's regular expression.
	MaxRegexLength = 1024
	// MaxWebhookTimeoutSeconds bounds an analysis webhook's timeout.
	MaxWebhookTimeoutSeconds = 300
)

// MaxVolumes bounds the volumes of one pod.
const MaxVolumes = 64

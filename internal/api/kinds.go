package api

import (
	"strings"
	"time"
)

// Revision is an immutable snapshot of an App's template. Its spec.replicas
// is the desired pod count, which the App's strategy sets.
type Revision struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta     `json:"metadata"`
	Spec     RevisionSpec   `json:"spec"`
	Status   RevisionStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Revision) GetMeta() *ObjectMeta { return &o.Metadata }

// RevisionSpec holds the template snapshot and the desired size.
type RevisionSpec struct {
	App          string      `json:"app"`
	Number       int64       `json:"number"`
	TemplateHash string      `json:"templateHash,omitempty"`
	Template     PodTemplate `json:"template"`
	Replicas     int32       `json:"replicas"`
}

// RevisionStatus is observed by the replication controller.
type RevisionStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	Replicas           int32 `json:"replicas,omitempty"`
	ReadyReplicas      int32 `json:"readyReplicas,omitempty"`
	AvailableReplicas  int32 `json:"availableReplicas,omitempty"`
}

// Pod is one or more containers sharing an IP.
type Pod struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     PodSpec    `json:"spec"`
	Status   PodStatus  `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Pod) GetMeta() *ObjectMeta { return &o.Metadata }

// PodSpec is the template a pod was made from plus its owner.
type PodSpec struct {
	App                           string      `json:"app,omitempty"`
	Revision                      int64       `json:"revision,omitempty"`
	Containers                    []Container `json:"containers"`
	Volumes                       []Volume    `json:"volumes,omitempty"`
	TerminationGracePeriodSeconds *int64      `json:"terminationGracePeriodSeconds,omitempty"`
	// RestartPolicy says whether the node restarts a container that exits:
	// Always (default, the pods of an App), OnFailure (only after a
	// non-zero exit) or Never (one-off pods such as rollout hooks). A pod
	// whose containers have all ended for good is Succeeded or Failed.
	RestartPolicy string `json:"restartPolicy,omitempty"`
	// ActiveDeadlineSeconds bounds how long a pod that is not restarted
	// forever (OnFailure, Never) may run, counted from its start (from its
	// creation while it has none); past it
	// the node stops its containers and the pod is Failed with reason
	// DeadlineExceeded. Zero or unset: no bound.
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
}

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// LabelHook marks a rollout hook's one-off pod; its value is the hook
// (pre, mid, post). Such a pod belongs to no revision's replica count and
// is never a Service endpoint, whatever else its labels say.
const LabelHook = "slipway.dev/hook"

// IsHookPod reports whether p is a rollout hook's pod.
func IsHookPod(p *Pod) bool {
	_, ok := p.Metadata.Labels[LabelHook]
	return ok
}

// Restarts returns the pod's restart policy, Always when unset (a record
// written before the field existed).
func (s *PodSpec) Restarts() string {
	if s.RestartPolicy == "" {
		return RestartAlways
	}
	return s.RestartPolicy
}

// Pod phases.
const (
	PodPending   = "Pending"
	PodRunning   = "Running"
	PodSucceeded = "Succeeded"
	PodFailed    = "Failed"
)

// Pod condition types.
const (
	PodReady       = "Ready"
	PodScheduled   = "PodScheduled"
	PodInitialized = "Initialized"
)

// PodStatus is observed by the node agent.
type PodStatus struct {
	Phase             string            `json:"phase,omitempty"`
	Reason            string            `json:"reason,omitempty"`
	Message           string            `json:"message,omitempty"`
	PodIP             string            `json:"podIP,omitempty"`
	StartTime         time.Time         `json:"startTime,omitzero"`
	Conditions        []Condition       `json:"conditions,omitempty"`
	ContainerStatuses []ContainerStatus `json:"containerStatuses,omitempty"`
}

// ContainerStatus is what is known of one container.
type ContainerStatus struct {
	Name         string         `json:"name"`
	Ready        bool           `json:"ready"`
	Started      bool           `json:"started,omitempty"`
	RestartCount int32          `json:"restartCount"`
	State        ContainerState `json:"state,omitzero"`
	LastState    ContainerState `json:"lastState,omitzero"`
	// ProbeResults are the most recent probe outcomes, newest last.
	ProbeResults []ProbeResult `json:"probeResults,omitempty"`
}

// ContainerState is exactly one of waiting, running, terminated.
type ContainerState struct {
	Waiting    *ContainerStateWaiting    `json:"waiting,omitempty"`
	Running    *ContainerStateRunning    `json:"running,omitempty"`
	Terminated *ContainerStateTerminated `json:"terminated,omitempty"`
}

// ContainerStateWaiting says why a container is not running (e.g. CrashLoopBackOff).
type ContainerStateWaiting struct {
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// ContainerStateRunning says since when a container runs.
type ContainerStateRunning struct {
	StartedAt time.Time `json:"startedAt,omitzero"`
}

// ContainerStateTerminated says how a container ended.
type ContainerStateTerminated struct {
	ExitCode   int32     `json:"exitCode"`
	Signal     int32     `json:"signal,omitempty"`
	Reason     string    `json:"reason,omitempty"` // Error, OOMKilled, Completed
	Message    string    `json:"message,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// LogTail is the end of the run's log (at most LogTailLines lines and
	// LogTailBytes bytes), kept by the node when the run failed, and for a
	// one-off pod when it ended for good, whatever its exit code: what
	// Kubernetes' terminationMessagePolicy FallbackToLogsOnError keeps, so
	// that a reader of the Pod sees why without reading its logs.
	LogTail string `json:"logTail,omitempty"`
}

// Bounds of ContainerStateTerminated.LogTail.
const (
	LogTailLines = 10
	LogTailBytes = 2048
)

// ProbeResult explains one probe attempt.
type ProbeResult struct {
	Probe      string    `json:"probe"` // startup, readiness, liveness
	Time       time.Time `json:"time"`
	Success    bool      `json:"success"`
	StatusCode int       `json:"statusCode,omitempty"`
	Error      string    `json:"error,omitempty"`
	Body       string    `json:"body,omitempty"`
	DurationMS float64   `json:"durationMs"`
}

// Service is a stable internal IP:port balancing the ready pods it selects.
type Service struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ServiceSpec   `json:"spec"`
	Status   ServiceStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Service) GetMeta() *ObjectMeta { return &o.Metadata }

// ServiceSpec selects pods by label and names the ports it serves.
type ServiceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []ServicePort     `json:"ports"`
}

// ServicePort maps a service port to a container port, by number or name.
type ServicePort struct {
	Name       string      `json:"name,omitempty"`
	Port       int32       `json:"port"`
	TargetPort IntOrString `json:"targetPort,omitzero"`
	Protocol   string      `json:"protocol,omitempty"`
}

// ServiceStatus is written by the service controller (clusterIP) and the
// data plane (conditions).
type ServiceStatus struct {
	ClusterIP string `json:"clusterIP,omitempty"`
	// Conditions: VIPBound (False), written by the data plane while the
	// service proxy cannot listen on a TCP port of the clusterIP.
	Conditions []Condition `json:"conditions,omitempty"`
}

// Route brings public traffic for a host and path to services.
type Route struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta  `json:"metadata"`
	Spec     RouteSpec   `json:"spec"`
	Status   RouteStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Route) GetMeta() *ObjectMeta { return &o.Metadata }

// RouteSpec is what the router serves.
type RouteSpec struct {
	Host              string           `json:"host,omitempty"`
	Path              string           `json:"path,omitempty"` // prefix, default "/"
	To                RouteBackend     `json:"to"`
	AlternateBackends []RouteBackend   `json:"alternateBackends,omitempty"`
	Match             []RouteMatch     `json:"match,omitempty"`
	SessionAffinity   *SessionAffinity `json:"sessionAffinity,omitempty"`
	Timeouts          *RouteTimeouts   `json:"timeouts,omitempty"`
	Retries           *RouteRetries    `json:"retries,omitempty"`
	Mirror            *RouteMirror     `json:"mirror,omitempty"`
	TLS               *RouteTLS        `json:"tls,omitempty"`
	// MaxBodyBytes caps request bodies on this route (router default when 0).
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
}

// RouteBackend is a service and its weight (0-256).
type RouteBackend struct {
	Service string `json:"service"`
	Weight  *int32 `json:"weight,omitempty"`
}

// RouteMatch sends matching requests to Service (or, on a canary, to the new
// revision) ahead of the weights. Exactly one of header, cookie, query is set.
type RouteMatch struct {
	Header  *KeyMatch `json:"header,omitempty"`
	Cookie  *KeyMatch `json:"cookie,omitempty"`
	Query   *KeyMatch `json:"query,omitempty"`
	Service string    `json:"service,omitempty"`
}

// KeyMatch matches a named value exactly (or by regular expression when Regex).
type KeyMatch struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	Regex bool   `json:"regex,omitempty"`
}

// SessionAffinity keeps a client on its backend and revision.
type SessionAffinity struct {
	Type       string   `json:"type"` // Cookie
	CookieName string   `json:"cookieName,omitempty"`
	TTL        Duration `json:"ttl,omitempty"`
}

// RouteTimeouts bound each phase of a proxied request.
type RouteTimeouts struct {
	Connect  Duration `json:"connect,omitempty"`
	Response Duration `json:"response,omitempty"`
	Idle     Duration `json:"idle,omitempty"`
}

// RouteRetries retries failed requests on another endpoint.
type RouteRetries struct {
	Attempts int32   `json:"attempts"`
	OnStatus []int32 `json:"onStatus,omitempty"`
}

// RouteMirror sends shadow copies of a share of requests; responses are dropped.
type RouteMirror struct {
	Service string `json:"service"`
	Percent int32  `json:"percent"`
}

// TLS terminations and policies.
const (
	TLSEdge                  = "edge"
	InsecureRedirect         = "Redirect"
	InsecureAllow            = "Allow"
	InsecureNone             = "None"
	AffinityCookie           = "Cookie"
	DefaultRouteWeight int32 = 100
	MaxRouteWeight     int32 = 256
)

// RouteTLS terminates TLS at the router with a certificate from a Secret
// (keys tls.crt and tls.key).
type RouteTLS struct {
	Termination                   string `json:"termination"`
	SecretName                    string `json:"secretName"`
	InsecureEdgeTerminationPolicy string `json:"insecureEdgeTerminationPolicy,omitempty"`
}

// RouteStatus says whether the router admitted the route.
type RouteStatus struct {
	Host       string      `json:"host,omitempty"`
	Conditions []Condition `json:"conditions,omitempty"`
}

// Secret holds sensitive strings. It is never printed in plain text.
type Secret struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta        `json:"metadata"`
	Type     string            `json:"type,omitempty"`
	Data     map[string]string `json:"data,omitempty"`
}

// GetMeta implements Object.
func (o *Secret) GetMeta() *ObjectMeta { return &o.Metadata }

// Project groups objects; every other kind lives in one.
type Project struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta    `json:"metadata"`
	Spec     ProjectSpec   `json:"spec,omitzero"`
	Status   ProjectStatus `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *Project) GetMeta() *ObjectMeta { return &o.Metadata }

// ProjectSpec describes a project.
type ProjectSpec struct {
	DisplayName string `json:"displayName,omitempty"`
	Description string `json:"description,omitempty"`
}

// ProjectStatus is written by controllers.
type ProjectStatus struct {
	Phase string `json:"phase,omitempty"`
}

// Event types.
const (
	EventNormal  = "Normal"
	EventWarning = "Warning"
)

// Event records something that happened to an object.
type Event struct {
	TypeMeta       `json:",inline"`
	Metadata       ObjectMeta      `json:"metadata"`
	InvolvedObject ObjectReference `json:"involvedObject"`
	Type           string          `json:"type,omitempty"`
	Reason         string          `json:"reason,omitempty"`
	Message        string          `json:"message,omitempty"`
	Source         string          `json:"source,omitempty"`
	Count          int32           `json:"count,omitempty"`
	FirstTimestamp time.Time       `json:"firstTimestamp,omitzero"`
	LastTimestamp  time.Time       `json:"lastTimestamp,omitzero"`
}

// GetMeta implements Object.
func (o *Event) GetMeta() *ObjectMeta { return &o.Metadata }

// ObjectReference names another object.
type ObjectReference struct {
	Kind    string `json:"kind"`
	Project string `json:"project,omitempty"`
	Name    string `json:"name"`
	UID     string `json:"uid,omitempty"`
}

// KindInfo describes a kind: its names and whether it lives in a project.
type KindInfo struct {
	Kind     string   // App
	Plural   string   // apps: the path segment in the API
	Short    []string // short names accepted by the CLI
	Projects bool     // false for Project itself
	Status   bool     // has a status written separately
	New      func() Object
}

// Kinds lists every kind, in the order `apply` writes them.
var Kinds = []KindInfo{
	{Kind: "Project", Plural: "projects", Short: []string{"proj"}, Status: true, New: func() Object { return &Project{} }},
	{Kind: "Secret", Plural: "secrets", Projects: true, New: func() Object { return &Secret{} }},
	{Kind: "ConfigMap", Plural: "configmaps", Short: []string{"cm"}, Projects: true, New: func() Object { return &ConfigMap{} }},
	{Kind: "PersistentVolumeClaim", Plural: "persistentvolumeclaims", Short: []string{"pvc"}, Projects: true, Status: true, New: func() Object { return &PersistentVolumeClaim{} }},
	{Kind: "Service", Plural: "services", Short: []string{"svc"}, Projects: true, Status: true, New: func() Object { return &Service{} }},
	{Kind: "App", Plural: "apps", Short: []string{"application"}, Projects: true, Status: true, New: func() Object { return &App{} }},
	{Kind: "Revision", Plural: "revisions", Short: []string{"rev"}, Projects: true, Status: true, New: func() Object { return &Revision{} }},
	{Kind: "Pod", Plural: "pods", Short: []string{"po"}, Projects: true, Status: true, New: func() Object { return &Pod{} }},
	{Kind: "Endpoints", Plural: "endpoints", Short: []string{"ep"}, Projects: true, New: func() Object { return &Endpoints{} }},
	{Kind: "Route", Plural: "routes", Short: []string{"rt"}, Projects: true, Status: true, New: func() Object { return &Route{} }},
	{Kind: "Event", Plural: "events", Short: []string{"ev"}, Projects: true, New: func() Object { return &Event{} }},
	{Kind: "ImageStream", Plural: "imagestreams", Short: []string{"is", "images"}, Projects: true, Status: true, New: func() Object { return &ImageStream{} }},
	{Kind: "Build", Plural: "builds", Projects: true, Status: true, New: func() Object { return &Build{} }},
	{Kind: "Template", Plural: "templates", Projects: true, New: func() Object { return &Template{} }},
	{Kind: "TemplateInstance", Plural: "templateinstances", Projects: true, Status: true, New: func() Object { return &TemplateInstance{} }},
}

// LookupKind resolves a kind by its name, plural or short form, in any case.
func LookupKind(name string) (KindInfo, bool) {
	n := strings.ToLower(name)
	for _, k := range Kinds {
		if n == strings.ToLower(k.Kind) || n == k.Plural {
			return k, true
		}
		for _, s := range k.Short {
			if n == s {
				return k, true
			}
		}
	}
	return KindInfo{}, false
}

// New returns an empty object of the kind with its TypeMeta set.
func (k KindInfo) NewObject() Object {
	o := k.New()
	*o.GetTypeMeta() = TypeMeta{APIVersion: Version, Kind: k.Kind}
	return o
}

// KindNames lists the names of every kind, in the order of Kinds (the
// supported values validation reports for an unknown kind).
func KindNames() []string {
	names := make([]string, len(Kinds))
	for i, k := range Kinds {
		names[i] = k.Kind
	}
	return names
}

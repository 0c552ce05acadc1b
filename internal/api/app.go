package api

import "time"

// App is a user's application: a pod template, a replica count and a
// strategy that moves traffic from one Revision of the template to the next.
type App struct {
	TypeMeta `json:",inline"`
	Metadata ObjectMeta `json:"metadata"`
	Spec     AppSpec    `json:"spec"`
	Status   AppStatus  `json:"status,omitzero"`
}

// GetMeta implements Object.
func (o *App) GetMeta() *ObjectMeta { return &o.Metadata }

// AppSpec is written by users.
type AppSpec struct {
	// Replicas is the number of pods of the stable revision (default 1).
	Replicas *int32      `json:"replicas,omitempty"`
	Template PodTemplate `json:"template"`
	Strategy Strategy    `json:"strategy,omitzero"`
	// RevisionHistoryLimit is how many old revisions are kept, scaled to 0 (default 10).
	RevisionHistoryLimit *int32 `json:"revisionHistoryLimit,omitempty"`
	// ProgressDeadlineSeconds bounds a rollout that makes no progress (default 600).
	ProgressDeadlineSeconds *int32 `json:"progressDeadlineSeconds,omitempty"`
	// MinReadySeconds is how long a new pod must be ready to count as available.
	MinReadySeconds int32 `json:"minReadySeconds,omitempty"`
	// Paused holds template changes without rolling them out.
	Paused   bool      `json:"paused,omitempty"`
	Triggers []Trigger `json:"triggers,omitempty"`
	// Autoscaling makes the autoscaler own Replicas (docs/autoscaling.md).
	Autoscaling *Autoscaling `json:"autoscaling,omitempty"`
}

// PodTemplate is what every pod of a revision is made from.
type PodTemplate struct {
	Metadata                      TemplateMeta `json:"metadata,omitzero"`
	Containers                    []Container  `json:"containers"`
	Volumes                       []Volume     `json:"volumes,omitempty"`
	TerminationGracePeriodSeconds *int64       `json:"terminationGracePeriodSeconds,omitempty"`
}

// TemplateMeta carries the labels and annotations copied onto each pod.
type TemplateMeta struct {
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Container is one process (process runtime) or container (Docker runtime) of a pod.
type Container struct {
	Name           string               `json:"name"`
	Image          string               `json:"image,omitempty"`
	Command        []string             `json:"command,omitempty"`
	Args           []string             `json:"args,omitempty"`
	WorkingDir     string               `json:"workingDir,omitempty"`
	Env            []EnvVar             `json:"env,omitempty"`
	Ports          []ContainerPort      `json:"ports,omitempty"`
	ReadinessProbe *Probe               `json:"readinessProbe,omitempty"`
	LivenessProbe  *Probe               `json:"livenessProbe,omitempty"`
	StartupProbe   *Probe               `json:"startupProbe,omitempty"`
	Resources      ResourceRequirements `json:"resources,omitzero"`
	VolumeMounts   []VolumeMount        `json:"volumeMounts,omitempty"`
}

// EnvVar is a variable set in a container's environment, from a literal value
// or from a key of a Secret.
type EnvVar struct {
	Name      string        `json:"name"`
	Value     string        `json:"value,omitempty"`
	ValueFrom *EnvVarSource `json:"valueFrom,omitempty"`
}

// EnvVarSource selects where a variable's value comes from.
type EnvVarSource struct {
	SecretKeyRef *SecretKeySelector `json:"secretKeyRef,omitempty"`
}

// SecretKeySelector names one key of a Secret in the same project.
type SecretKeySelector struct {
	Name string `json:"name"`
	Key  string `json:"key"`
}

// Protocols a port may declare.
const (
	ProtocolTCP = "TCP"
	ProtocolUDP = "UDP"
)

// ContainerPort is a port a container listens on at the pod's IP.
type ContainerPort struct {
	Name     string `json:"name,omitempty"`
	Port     int32  `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

// Probe is a health check, with Kubernetes' semantics and defaults.
type Probe struct {
	HTTPGet             *HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket           *TCPSocketAction `json:"tcpSocket,omitempty"`
	Exec                *ExecAction      `json:"exec,omitempty"`
	InitialDelaySeconds int32            `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int32            `json:"periodSeconds,omitempty"`    // default 10
	TimeoutSeconds      int32            `json:"timeoutSeconds,omitempty"`   // default 1
	SuccessThreshold    int32            `json:"successThreshold,omitempty"` // default 1
	FailureThreshold    int32            `json:"failureThreshold,omitempty"` // default 3
}

// HTTPGetAction probes with an HTTP GET to the pod's own address.
type HTTPGetAction struct {
	Path string      `json:"path,omitempty"`
	Port IntOrString `json:"port"`
	// Host is the Host header sent; the pod IP when empty.
	Host        string       `json:"host,omitempty"`
	Scheme      string       `json:"scheme,omitempty"` // HTTP (default) or HTTPS
	HTTPHeaders []HTTPHeader `json:"httpHeaders,omitempty"`
}

// HTTPHeader is a header a probe sends.
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TCPSocketAction probes by opening a TCP connection to the pod's own address.
type TCPSocketAction struct {
	Port IntOrString `json:"port"`
}

// ExecAction probes by running a command in the container's environment.
type ExecAction struct {
	Command []string `json:"command"`
}

// ResourceRequirements holds the limits enforced on a container.
type ResourceRequirements struct {
	Limits ResourceList `json:"limits,omitempty"`
}

// ResourceList maps a resource name ("cpu", "memory") to a quantity.
type ResourceList map[string]Quantity

// Resource names.
const (
	ResourceCPU    = "cpu"
	ResourceMemory = "memory"
)

// Strategy types.
const (
	StrategyRolling   = "Rolling"
	StrategyRecreate  = "Recreate"
	StrategyBlueGreen = "BlueGreen"
	StrategyCanary    = "Canary"
)

// Strategy says how a new revision is moved into service. Only the
// sub-object matching Type may be set.
type Strategy struct {
	Type      string             `json:"type,omitempty"`
	Rolling   *RollingStrategy   `json:"rolling,omitempty"`
	Recreate  *RecreateStrategy  `json:"recreate,omitempty"`
	BlueGreen *BlueGreenStrategy `json:"blueGreen,omitempty"`
	Canary    *CanaryStrategy    `json:"canary,omitempty"`
	Hooks     *Hooks             `json:"hooks,omitempty"`
}

// RollingStrategy replaces pods in surges.
type RollingStrategy struct {
	MaxSurge        *IntOrString `json:"maxSurge,omitempty"`       // default 25%
	MaxUnavailable  *IntOrString `json:"maxUnavailable,omitempty"` // default 0
	MinReadySeconds int32        `json:"minReadySeconds,omitempty"`
}

// RecreateStrategy stops every old pod before starting new ones.
type RecreateStrategy struct{}

// BlueGreenStrategy brings the new revision up at full size beside the stable
// one and switches all traffic at once on promotion.
type BlueGreenStrategy struct {
	AutoPromote             bool      `json:"autoPromote,omitempty"`
	AutoPromoteAfterSeconds int32     `json:"autoPromoteAfterSeconds,omitempty"`
	PreviewHost             string    `json:"previewHost,omitempty"`
	ScaleDownDelaySeconds   *int32    `json:"scaleDownDelaySeconds,omitempty"` // default 30
	PrePromotionAnalysis    *Analysis `json:"prePromotionAnalysis,omitempty"`
	PostPromotionAnalysis   *Analysis `json:"postPromotionAnalysis,omitempty"`
}

// CanaryStrategy moves traffic to the new revision in steps.
type CanaryStrategy struct {
	Steps              []CanaryStep `json:"steps,omitempty"`
	Analysis           *Analysis    `json:"analysis,omitempty"`
	MaxSurge           *IntOrString `json:"maxSurge,omitempty"`
	MaxUnavailable     *IntOrString `json:"maxUnavailable,omitempty"`
	DynamicStableScale bool         `json:"dynamicStableScale,omitempty"`
	Match              []RouteMatch `json:"match,omitempty"`
}

// CanaryStep is exactly one of setWeight, pause or analysis.
type CanaryStep struct {
	SetWeight *int32     `json:"setWeight,omitempty"`
	Pause     *PauseStep `json:"pause,omitempty"`
	Analysis  *Analysis  `json:"analysis,omitempty"`
}

// PauseStep waits for Duration, or until `rollout promote` when Duration is empty.
type PauseStep struct {
	Duration Duration `json:"duration,omitempty"`
}

// Analysis checks the new revision with metrics the router measures.
type Analysis struct {
	Metrics []AnalysisMetric `json:"metrics"`
	// Interval between measurements (default 10s).
	Interval     Duration `json:"interval,omitempty"`
	FailureLimit int32    `json:"failureLimit,omitempty"`
	MinRequests  int64    `json:"minRequests,omitempty"`
	// InconclusivePolicy is Wait (default) or Fail.
	InconclusivePolicy string `json:"inconclusivePolicy,omitempty"`
}

// AnalysisMetric is one check: a router metric against a bound, or a webhook.
type AnalysisMetric struct {
	Name string `json:"name"`
	// Type is one of successRate, errorRate, latencyP50, latencyP90, latencyP99, webhook.
	Type    string         `json:"type"`
	Min     *float64       `json:"min,omitempty"`
	Max     *float64       `json:"max,omitempty"`
	Webhook *WebhookMetric `json:"webhook,omitempty"`
}

// WebhookMetric passes when the URL answers 2xx within the timeout.
type WebhookMetric struct {
	URL            string `json:"url"`
	TimeoutSeconds int32  `json:"timeoutSeconds,omitempty"`
}

// Hooks run as one-off pods from the new revision's template.
type Hooks struct {
	Pre  *Hook `json:"pre,omitempty"`
	Mid  *Hook `json:"mid,omitempty"` // Recreate only
	Post *Hook `json:"post,omitempty"`
}

// Hook failure policies.
const (
	HookAbort  = "Abort"
	HookRetry  = "Retry"
	HookIgnore = "Ignore"
)

// Hook is a command run once per rollout.
type Hook struct {
	Command        []string `json:"command"`
	Env            []EnvVar `json:"env,omitempty"`
	TimeoutSeconds int32    `json:"timeoutSeconds,omitempty"`
	FailurePolicy  string   `json:"failurePolicy,omitempty"`
}

// Trigger types.
const (
	TriggerConfigChange = "ConfigChange"
	TriggerImageChange  = "ImageChange"
)

// Trigger starts a rollout.
type Trigger struct {
	Type        string              `json:"type"`
	ImageChange *ImageChangeTrigger `json:"imageChange,omitempty"`
}

// ImageChangeTrigger rolls out when a new image of the App is built.
type ImageChangeTrigger struct {
	ContainerNames []string `json:"containerNames,omitempty"`
}

// App phases.
const (
	AppPending     = "Pending"
	AppProgressing = "Progressing"
	AppPaused      = "Paused"
	AppHealthy     = "Healthy"
	AppDegraded    = "Degraded"
)

// AppStatus is written by controllers only.
type AppStatus struct {
	ObservedGeneration int64  `json:"observedGeneration,omitempty"`
	Phase              string `json:"phase,omitempty"`
	Message            string `json:"message,omitempty"`
	// LatestRevision is the number of the newest revision; StableRevision the
	// one fully in service.
	LatestRevision    int64 `json:"latestRevision,omitempty"`
	StableRevision    int64 `json:"stableRevision,omitempty"`
	Replicas          int32 `json:"replicas,omitempty"`
	ReadyReplicas     int32 `json:"readyReplicas,omitempty"`
	AvailableReplicas int32 `json:"availableReplicas,omitempty"`
	// Traffic is the split between revisions the router applies.
	Traffic     []TrafficTarget `json:"traffic,omitempty"`
	CurrentStep *int32          `json:"currentStep,omitempty"`
	Conditions  []Condition     `json:"conditions,omitempty"`
	// Revisions are the revisions with pods or traffic: what the strategy
	// wants of each and what it has.
	Revisions []RevisionState `json:"revisions,omitempty"`
	// PreviewRevision is the revision reached, whatever the weights, through
	// a BlueGreen previewHost, the header X-Slipway-Revision: preview and a
	// canary's match rules (0: none).
	PreviewRevision int64 `json:"previewRevision,omitempty"`
	// Rollout is the current rollout, or the last one once it ended.
	Rollout *RolloutStatus `json:"rollout,omitempty"`
	// ObservedRequest is the value of the last RolloutRequestAnnotation the
	// controller acted on: a client that wrote a request waits for it here.
	ObservedRequest string `json:"observedRequest,omitempty"`
	// RequestRefused says why the observed request was not acted on ("" when it was).
	RequestRefused string `json:"requestRefused,omitempty"`
	// Autoscaling is the autoscaler's account (nil when spec.autoscaling is unset).
	Autoscaling *AutoscalingStatus `json:"autoscaling,omitempty"`
}

// RolloutRequestAnnotation carries a control verb for the current rollout:
// "<verb> <nonce>", verb one of the Request* constants. The deploy
// controller acts on a value once and echoes it in status.observedRequest.
// Annotations are not spec: writing one changes no generation and makes
// no revision.
const RolloutRequestAnnotation = "slipway.dev/rollout-request"

// Rollout request verbs.
const (
	RequestPromote     = "promote"      // leave a pause, or promote a BlueGreen preview
	RequestPromoteFull = "promote-full" // skip the remaining steps and analyses
	RequestAbort       = "abort"        // all traffic back to stable; phase Degraded
	RequestRollback    = "rollback"     // all traffic to the previous revision, from any state
	RequestRetry       = "retry"        // start an aborted or rolled-back rollout again
)

// RevisionState is one revision as the App's strategy sees it.
type RevisionState struct {
	Revision  int64 `json:"revision"`
	Desired   int32 `json:"desired"`
	Replicas  int32 `json:"replicas"`
	Ready     int32 `json:"ready"`
	Available int32 `json:"available"`
	Weight    int32 `json:"weight"`
}

// Rollout states.
const (
	RolloutProgressing = "Progressing"
	RolloutPaused      = "Paused"
	RolloutCompleted   = "Completed"
	RolloutAborted     = "Aborted"
	RolloutRolledBack  = "RolledBack"
)

// RolloutStatus is everything a rollout decided, so that a restarted
// controller resumes it: every timer is a timestamp here.
type RolloutStatus struct {
	// Revision is the revision being rolled out; From the stable one when
	// it started (0 for an App's first revision).
	Revision int64  `json:"revision"`
	From     int64  `json:"from,omitempty"`
	State    string `json:"state"`
	// Strategy is the strategy type the rollout runs (ran, once ended)
	// under, which a later change of spec.strategy does not rewrite.
	Strategy string `json:"strategy,omitempty"`
	// Reason and Message say why the rollout is paused, aborted or rolled back.
	Reason    string    `json:"reason,omitempty"`
	Message   string    `json:"message,omitempty"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	EndedAt   time.Time `json:"endedAt,omitzero"`
	// StepStartedAt is when the current canary step (or BlueGreen phase)
	// began; LastProgressAt when the rollout last moved (for
	// progressDeadlineSeconds).
	StepStartedAt  time.Time `json:"stepStartedAt,omitzero"`
	LastProgressAt time.Time `json:"lastProgressAt,omitzero"`
	// NewReady is the new revision's ready pods at the last decision.
	NewReady int32 `json:"newReady,omitempty"`
	// ReadyAt is when the new revision first had all its pods available
	// (BlueGreen's autoPromoteAfterSeconds counts from it).
	ReadyAt    time.Time `json:"readyAt,omitzero"`
	PromotedAt time.Time `json:"promotedAt,omitzero"`
	// CanaryWeight is the share of traffic the new revision has been given.
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
	// PromoteFull skips the remaining steps (rollout promote --full).
	PromoteFull bool `json:"promoteFull,omitempty"`
	// ScaleDownAt is when From, kept warm after a BlueGreen promotion, goes to 0.
	ScaleDownAt time.Time     `json:"scaleDownAt,omitzero"`
	Analysis    []AnalysisRun `json:"analysis,omitempty"`
	// Baseline holds the router's counters per revision when the rollout
	// started; the report is the difference at its end.
	Baseline []RequestCounts `json:"baseline,omitempty"`
	// NoReadySince is set while no pod of the App is ready;
	// LongestNoReadyMillis is the longest such gap so far.
	NoReadySince         time.Time `json:"noReadySince,omitzero"`
	LongestNoReadyMillis int64     `json:"longestNoReadyMillis,omitempty"`
	Report               *Report   `json:"report,omitempty"`
	// DrainedAt is when the revisions an ended rollout left were first
	// seen without pods; the report is final a little later.
	DrainedAt time.Time `json:"drainedAt,omitzero"`
	// Hooks are the rollout's hook runs (pre, mid, post), one entry per
	// hook with its current attempt: a run's pod is named after the
	// revision, hook and attempt, so it runs once per attempt however
	// often the controller restarts.
	Hooks []HookState `json:"hooks,omitempty"`
}

// HookState is the current run of one of a rollout's hooks.
type HookState struct {
	Hook    string `json:"hook"`
	Attempt int32  `json:"attempt"`
	// Phase is Pending, Running, Succeeded or Failed; Done is set once the
	// rollout may go on past it (Succeeded, or Failed under Ignore).
	Phase   string `json:"phase"`
	Done    bool   `json:"done,omitempty"`
	Pod     string `json:"pod,omitempty"`
	Message string `json:"message,omitempty"`
}

// RequestCounts are cumulative router counters of one revision.
type RequestCounts struct {
	Revision int64 `json:"revision"`
	// Requests by status class: [0] got no answer, [5] 5xx.
	Requests       [6]int64 `json:"requests"`
	UpstreamErrors int64    `json:"upstreamErrors,omitempty"`
	// Latency counts requests per histogram bucket (the router's bounds).
	Latency []int64 `json:"latency,omitempty"`
}

// Analysis run phases.
const (
	AnalysisRunning      = "Running"
	AnalysisSuccessful   = "Successful"
	AnalysisFailed       = "Failed"
	AnalysisInconclusive = "Inconclusive"
)

// AnalysisRun is one analysis of a rollout: "background", "step-N",
// "prePromotion" or "postPromotion".
type AnalysisRun struct {
	Name           string    `json:"name"`
	Phase          string    `json:"phase"`
	StartedAt      time.Time `json:"startedAt,omitzero"`
	LastMeasuredAt time.Time `json:"lastMeasuredAt,omitzero"`
	Measurements   int32     `json:"measurements,omitempty"`
	Failures       int32     `json:"failures,omitempty"`
	Inconclusives  int32     `json:"inconclusives,omitempty"`
	// Last is the measured revision's counters at the last measurement:
	// the next one judges the requests since.
	Last    RequestCounts  `json:"last"`
	Results []MetricResult `json:"results,omitempty"`
	Message string         `json:"message,omitempty"`
}

// MetricResult is one metric's verdict at the last measurement.
type MetricResult struct {
	Name     string  `json:"name"`
	Type     string  `json:"type"`
	Value    float64 `json:"value"`
	Verdict  string  `json:"verdict"` // Successful, Failed, Inconclusive
	Requests int64   `json:"requests"`
	Message  string  `json:"message,omitempty"`
}

// Report is a rollout's zero-downtime report, counted by the router.
type Report struct {
	DurationMillis int64 `json:"durationMillis"`
	// Revisions are the requests each revision served during the rollout.
	Revisions []RevisionReport `json:"revisions,omitempty"`
	// Failed counts every request of the rollout that failed: a
	// revision's requests answered 5xx (the router's own 502/504
	// included) or not answered at all, plus NoReadyPod; UpstreamErrors
	// counts failed attempts (some retried).
	Failed         int64 `json:"failed"`
	UpstreamErrors int64 `json:"upstreamErrors"`
	// NoReadyPod counts the failed requests on the App's routes that no
	// revision could take: the router answered 503 for want of a ready
	// pod (Recreate's gap).
	NoReadyPod int64 `json:"noReadyPod"`
	// LongestNoReadyMillis is the longest time no pod of the App was ready.
	LongestNoReadyMillis int64 `json:"longestNoReadyMillis"`
	// Measured is false when the router's counters were not available.
	Measured bool `json:"measured"`
	// Final is set once the revisions the rollout left have no pod: no
	// request can reach them any more, so the counts are complete.
	Final bool `json:"final,omitempty"`
}

// RevisionReport is one revision's share of a rollout's requests.
type RevisionReport struct {
	Revision       int64 `json:"revision"`
	Requests       int64 `json:"requests"`
	ServerErrors   int64 `json:"serverErrors"`
	Resets         int64 `json:"resets"`
	UpstreamErrors int64 `json:"upstreamErrors"`
}

// TrafficTarget is one revision's share of an App's traffic.
type TrafficTarget struct {
	Revision int64 `json:"revision"`
	Weight   int32 `json:"weight"`
}

// Duration is a Go duration string such as "30s" or "5m".
type Duration string

// Parse returns the duration, or an error naming the rule.
func (d Duration) Parse() (time.Duration, error) {
	return time.ParseDuration(string(d))
}

// Analysis metric types. Latency bounds (max) are in milliseconds; success
// and error rates are shares in [0, 1].
const (
	MetricSuccessRate = "successRate"
	MetricErrorRate   = "errorRate"
	MetricLatencyP50  = "latencyP50"
	MetricLatencyP90  = "latencyP90"
	MetricLatencyP99  = "latencyP99"
	MetricWebhook     = "webhook"
)

// Labels Slipway itself puts on every pod; a template may not set them, or
// services selecting app=<name> would pick up pods of another App.
const (
	LabelApp      = "app"
	LabelRevision = "revision"
)

package api

// Default values filled by SetDefaults. They are exported so that
// controllers reading an object that was never defaulted (an old record, a
// hand-built test object) can fall back to the same numbers.
const (
	DefaultReplicas                      int32 = 1
	DefaultRevisionHistoryLimit          int32 = 10
	DefaultProgressDeadlineSeconds       int32 = 600
	DefaultTerminationGracePeriodSeconds int64 = 30
	DefaultMaxSurge                            = "25%"
	DefaultScaleDownDelaySeconds         int32 = 30
	DefaultProbePeriodSeconds            int32 = 10
	DefaultProbeTimeoutSeconds           int32 = 1
	DefaultProbeSuccessThreshold         int32 = 1
	DefaultProbeFailureThreshold         int32 = 3
	DefaultAnalysisInterval                    = Duration("10s")
	DefaultWebhookTimeoutSeconds         int32 = 10
	DefaultAffinityCookie                      = "slipway-affinity"
	DefaultSecretType                          = "Opaque"

	InconclusiveWait = "Wait"
	InconclusiveFail = "Fail"
	SchemeHTTP       = "HTTP"
	SchemeHTTPS      = "HTTPS"
)

// SetDefaults fills the defaults of obj in place. It only ever fills what is
// unset, so applying it twice changes nothing the second time; the API
// server and the manifest decoder both call it before validation.Validate, and an
// apply that compares a stored object with a defaulted manifest relies on
// that idempotence to report "unchanged".
func SetDefaults(obj Object) {
	if obj == nil {
		return
	}
	tm := obj.GetTypeMeta()
	if tm.APIVersion == "" {
		tm.APIVersion = Version
	}
	if tm.Kind == "" {
		tm.Kind = KindOf(obj)
	}
	switch o := obj.(type) {
	case *Project:
		// A project lives in no project: nothing to default in metadata.
	case *App:
		defaultProject(&o.Metadata)
		defaultAppSpec(&o.Spec)
	case *Revision:
		defaultProject(&o.Metadata)
		defaultPodTemplate(&o.Spec.Template)
	case *Pod:
		defaultProject(&o.Metadata)
		defaultContainers(o.Spec.Containers)
		defaultVolumes(o.Spec.Volumes)
		if o.Spec.TerminationGracePeriodSeconds == nil {
			o.Spec.TerminationGracePeriodSeconds = valuePtr(DefaultTerminationGracePeriodSeconds)
		}
		if o.Spec.RestartPolicy == "" {
			o.Spec.RestartPolicy = RestartAlways
		}
	case *Service:
		defaultProject(&o.Metadata)
		defaultServiceSpec(&o.Spec)
	case *Endpoints:
		defaultEndpoints(o)
	case *Route:
		defaultProject(&o.Metadata)
		defaultRouteSpec(&o.Spec)
	case *ConfigMap:
		defaultProject(&o.Metadata)
	case *PersistentVolumeClaim:
		defaultProject(&o.Metadata)
	case *Secret:
		defaultProject(&o.Metadata)
		if o.Type == "" {
			o.Type = DefaultSecretType
		}
	case *Event:
		defaultProject(&o.Metadata)
		if o.Type == "" {
			o.Type = EventNormal
		}
		if o.InvolvedObject.Project == "" && o.InvolvedObject.Kind != "Project" {
			o.InvolvedObject.Project = o.Metadata.Project
		}
	case *Template:
		defaultProject(&o.Metadata)
	case *TemplateInstance:
		defaultProject(&o.Metadata)
	case *Build:
		defaultBuild(o)
	case *ImageStream:
		defaultImageStream(o)
	}
}

func valuePtr[T any](v T) *T { return &v }

func defaultProject(m *ObjectMeta) {
	if m.Project == "" {
		m.Project = DefaultProject
	}
}

func defaultAppSpec(s *AppSpec) {
	if s.Replicas == nil {
		s.Replicas = valuePtr(DefaultReplicas)
	}
	if s.RevisionHistoryLimit == nil {
		s.RevisionHistoryLimit = valuePtr(DefaultRevisionHistoryLimit)
	}
	if s.ProgressDeadlineSeconds == nil {
		s.ProgressDeadlineSeconds = valuePtr(DefaultProgressDeadlineSeconds)
	}
	defaultPodTemplate(&s.Template)
	defaultStrategy(&s.Strategy)
	defaultAutoscaling(s.Autoscaling)
	if len(s.Triggers) == 0 {
		// An empty list and an absent one are the same once serialised
		// (omitempty), so both mean "default": holding rollouts is what
		// spec.paused is for.
		s.Triggers = []Trigger{{Type: TriggerConfigChange}}
	}
}

func defaultPodTemplate(t *PodTemplate) {
	defaultContainers(t.Containers)
	defaultVolumes(t.Volumes)
	if t.TerminationGracePeriodSeconds == nil {
		t.TerminationGracePeriodSeconds = valuePtr(DefaultTerminationGracePeriodSeconds)
	}
}

func defaultContainers(cs []Container) {
	for i := range cs {
		c := &cs[i]
		for j := range c.Ports {
			if c.Ports[j].Protocol == "" {
				c.Ports[j].Protocol = ProtocolTCP
			}
		}
		defaultProbe(c.ReadinessProbe)
		defaultProbe(c.LivenessProbe)
		defaultProbe(c.StartupProbe)
	}
}

func defaultProbe(p *Probe) {
	if p == nil {
		return
	}
	if p.PeriodSeconds == 0 {
		p.PeriodSeconds = DefaultProbePeriodSeconds
	}
	if p.TimeoutSeconds == 0 {
		p.TimeoutSeconds = DefaultProbeTimeoutSeconds
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = DefaultProbeSuccessThreshold
	}
	if p.FailureThreshold == 0 {
		p.FailureThreshold = DefaultProbeFailureThreshold
	}
	if h := p.HTTPGet; h != nil {
		if h.Path == "" {
			h.Path = "/"
		}
		if h.Scheme == "" {
			h.Scheme = SchemeHTTP
		}
	}
}

func defaultStrategy(s *Strategy) {
	if s.Type == "" {
		s.Type = StrategyRolling
	}
	if s.Type == StrategyRolling {
		if s.Rolling == nil {
			s.Rolling = &RollingStrategy{}
		}
		if s.Rolling.MaxSurge == nil {
			s.Rolling.MaxSurge = valuePtr(FromString(DefaultMaxSurge))
		}
		if s.Rolling.MaxUnavailable == nil {
			s.Rolling.MaxUnavailable = valuePtr(FromInt(0))
		}
	}
	if bg := s.BlueGreen; bg != nil {
		if bg.ScaleDownDelaySeconds == nil {
			bg.ScaleDownDelaySeconds = valuePtr(DefaultScaleDownDelaySeconds)
		}
		defaultAnalysis(bg.PrePromotionAnalysis)
		defaultAnalysis(bg.PostPromotionAnalysis)
	}
	if c := s.Canary; c != nil {
		defaultAnalysis(c.Analysis)
		for i := range c.Steps {
			defaultAnalysis(c.Steps[i].Analysis)
		}
	}
	if h := s.Hooks; h != nil {
		for _, hook := range []*Hook{h.Pre, h.Mid, h.Post} {
			if hook != nil && hook.FailurePolicy == "" {
				hook.FailurePolicy = HookAbort
			}
		}
	}
}

func defaultAnalysis(a *Analysis) {
	if a == nil {
		return
	}
	if a.Interval == "" {
		a.Interval = DefaultAnalysisInterval
	}
	if a.InconclusivePolicy == "" {
		a.InconclusivePolicy = InconclusiveWait
	}
	for i := range a.Metrics {
		if w := a.Metrics[i].Webhook; w != nil && w.TimeoutSeconds == 0 {
			w.TimeoutSeconds = DefaultWebhookTimeoutSeconds
		}
	}
}

func defaultServiceSpec(s *ServiceSpec) {
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = ProtocolTCP
		}
		if p.TargetPort.IsZero() {
			p.TargetPort = FromInt(p.Port)
		}
	}
}

func defaultRouteSpec(s *RouteSpec) {
	if s.Path == "" {
		s.Path = "/"
	}
	if s.To.Weight == nil {
		s.To.Weight = valuePtr(DefaultRouteWeight)
	}
	for i := range s.AlternateBackends {
		if s.AlternateBackends[i].Weight == nil {
			s.AlternateBackends[i].Weight = valuePtr(DefaultRouteWeight)
		}
	}
	if a := s.SessionAffinity; a != nil && a.CookieName == "" {
		a.CookieName = DefaultAffinityCookie
	}
	if t := s.TLS; t != nil && t.InsecureEdgeTerminationPolicy == "" {
		t.InsecureEdgeTerminationPolicy = InsecureNone
	}
}

// KindOf returns the kind name of obj's Go type ("App" for *App), or "" for
// a type that is not a Slipway kind.
func KindOf(obj Object) string {
	switch obj.(type) {
	case *Project:
		return "Project"
	case *App:
		return "App"
	case *Revision:
		return "Revision"
	case *Pod:
		return "Pod"
	case *Service:
		return "Service"
	case *Endpoints:
		return "Endpoints"
	case *Route:
		return "Route"
	case *Secret:
		return "Secret"
	case *ConfigMap:
		return "ConfigMap"
	case *PersistentVolumeClaim:
		return "PersistentVolumeClaim"
	case *Event:
		return "Event"
	case *Build:
		return "Build"
	case *Template:
		return "Template"
	case *TemplateInstance:
		return "TemplateInstance"
	case *ImageStream:
		return "ImageStream"
	}
	return ""
}

func defaultVolumes(vs []Volume) {
	for i := range vs {
		if s := vs[i].Secret; s != nil && s.DefaultMode == nil {
			s.DefaultMode = valuePtr(DefaultVolumeMode)
		}
		if c := vs[i].ConfigMap; c != nil && c.DefaultMode == nil {
			c.DefaultMode = valuePtr(DefaultVolumeMode)
		}
	}
}

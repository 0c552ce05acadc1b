package validation

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) appSpec(p string, s *api.AppSpec) {
	if s.Replicas != nil {
		v.min(child(p, "replicas"), int64(*s.Replicas), 0)
		v.max(child(p, "replicas"), int64(*s.Replicas), api.MaxReplicas)
	}
	v.podTemplate(child(p, "template"), &s.Template)
	v.strategy(child(p, "strategy"), &s.Strategy)
	if s.RevisionHistoryLimit != nil {
		v.min(child(p, "revisionHistoryLimit"), int64(*s.RevisionHistoryLimit), 0)
	}
	if s.ProgressDeadlineSeconds != nil {
		v.min(child(p, "progressDeadlineSeconds"), int64(*s.ProgressDeadlineSeconds), 1)
	}
	v.min(child(p, "minReadySeconds"), int64(s.MinReadySeconds), 0)
	v.triggers(child(p, "triggers"), s.Triggers, s.Template.Containers)
	v.autoscaling(child(p, "autoscaling"), s.Autoscaling)
}

func (v *validator) revisionSpec(p string, s *api.RevisionSpec) {
	v.label(child(p, "app"), s.App, api.MaxAppNameLength, "")
	v.min(child(p, "number"), s.Number, 1)
	v.min(child(p, "replicas"), int64(s.Replicas), 0)
	v.max(child(p, "replicas"), int64(s.Replicas), api.MaxReplicas)
	v.podTemplate(child(p, "template"), &s.Template)
}

func (v *validator) podSpec(p string, s *api.PodSpec) {
	if s.App != "" {
		v.label(child(p, "app"), s.App, api.MaxAppNameLength, "")
	}
	v.min(child(p, "revision"), s.Revision, 0)
	v.containers(child(p, "containers"), s.Containers, v.volumes(child(p, "volumes"), s.Volumes))
	if s.TerminationGracePeriodSeconds != nil {
		v.min(child(p, "terminationGracePeriodSeconds"), *s.TerminationGracePeriodSeconds, 0)
	}
	if s.RestartPolicy != "" {
		v.oneOf(child(p, "restartPolicy"), s.RestartPolicy, api.RestartAlways, api.RestartOnFailure, api.RestartNever)
	}
	if d := s.ActiveDeadlineSeconds; d != nil {
		v.min(child(p, "activeDeadlineSeconds"), *d, 1)
		if s.Restarts() == api.RestartAlways {
			v.forbidden(child(p, "activeDeadlineSeconds"), `may only be set when restartPolicy is "OnFailure" or "Never": a pod restarted forever has no end to bound`)
		}
	}
}

func (v *validator) podTemplate(p string, t *api.PodTemplate) {
	mp := child(p, "metadata")
	v.labels(child(mp, "labels"), t.Metadata.Labels)
	for _, k := range []string{api.LabelApp, api.LabelRevision} {
		if _, ok := t.Metadata.Labels[k]; ok {
			v.forbidden(key(child(mp, "labels"), k), "set by Slipway on every pod (app: <app name>, revision: <number>)")
		}
	}
	if _, ok := t.Metadata.Labels[api.LabelHook]; ok {
		v.forbidden(key(child(mp, "labels"), api.LabelHook), "reserved for the one-off pods of rollout hooks, which no service selects")
	}
	v.annotations(child(mp, "annotations"), t.Metadata.Annotations)
	v.containers(child(p, "containers"), t.Containers, v.volumes(child(p, "volumes"), t.Volumes))
	if t.TerminationGracePeriodSeconds != nil {
		v.min(child(p, "terminationGracePeriodSeconds"), *t.TerminationGracePeriodSeconds, 0)
	}
}

// containers validates the containers of one pod. Port names and numbers
// are checked across the whole pod: its containers share one IP.
func (v *validator) containers(p string, cs []api.Container, vols map[string]*api.Volume) {
	if len(cs) == 0 {
		v.required(p, "at least one container is required")
		return
	}
	names := map[string]bool{}
	portNames := map[string]bool{}
	portNumbers := map[string]bool{}
	for i := range cs {
		c := &cs[i]
		cp := index(p, i)
		if v.label(child(cp, "name"), c.Name, api.MaxNameLength, "") {
			if names[c.Name] {
				v.duplicate(child(cp, "name"), c.Name)
			}
			names[c.Name] = true
		}
		if len(c.Command) == 0 && c.Image == "" {
			v.required(child(cp, "command"), "command is required by the process runtime (or image, by the Docker runtime)")
		}
		budget := v.argBudget(cp)
		v.execStrings(child(cp, "command"), c.Command, true, budget)
		v.execStrings(child(cp, "args"), c.Args, false, budget)
		if c.Image != "" && (len(c.Image) > 4096 || strings.ContainsAny(c.Image, " \t\r\n\x00")) {
			v.invalid(child(cp, "image"), c.Image, "must be an image reference without whitespace, such as registry.example.com/app:1.2")
		}
		if strings.ContainsRune(c.WorkingDir, 0) || len(c.WorkingDir) > 4096 {
			v.invalid(child(cp, "workingDir"), c.WorkingDir, "must be a path of at most 4096 bytes without NUL")
		}
		v.env(child(cp, "env"), c.Env, budget)
		budget.check()

		own := map[string]bool{}
		for j, port := range c.Ports {
			pp := index(child(cp, "ports"), j)
			if port.Name != "" && v.portName(child(pp, "name"), port.Name) {
				if portNames[port.Name] {
					v.duplicate(child(pp, "name"), port.Name)
				}
				portNames[port.Name] = true
				own[port.Name] = true
			}
			v.rangeOf(child(pp, "port"), int64(port.Port), 1, 65535)
			if v.oneOf(child(pp, "protocol"), port.Protocol, api.ProtocolTCP, api.ProtocolUDP) {
				k := port.Protocol + "/" + strconv.Itoa(int(port.Port))
				if portNumbers[k] {
					v.add(api.FieldDuplicate, child(pp, "port"), port.Port, "the containers of a pod share one IP: a port may be declared once per protocol")
				}
				portNumbers[k] = true
			}
		}
		v.probe(child(cp, "readinessProbe"), c.ReadinessProbe, false, own)
		v.probe(child(cp, "livenessProbe"), c.LivenessProbe, true, own)
		v.probe(child(cp, "startupProbe"), c.StartupProbe, true, own)
		v.resources(child(cp, "resources", "limits"), c.Resources.Limits)
		v.volumeMounts(child(cp, "volumeMounts"), c.VolumeMounts, vols)
	}
}

// argBudget tracks the bytes a container hands to exec: a single string
// over MaxEnvStringBytes is refused on its own, the sum over
// MaxContainerArgBytes once for the container.
type argBudget struct {
	v     *validator
	field string
	total int
}

func (v *validator) argBudget(field string) *argBudget { return &argBudget{v: v, field: field} }

// fits reports whether s (one exec string) is within the per-string bound,
// counting it towards the total when it is.
func (b *argBudget) fits(field string, n int, what string) bool {
	if n > api.MaxEnvStringBytes {
		b.v.tooLong(field, api.MaxEnvStringBytes, "bytes; Linux refuses to start a process with "+what+" over 128 KiB")
		return false
	}
	b.total += n
	return true
}

func (b *argBudget) check() {
	if b.total > api.MaxContainerArgBytes {
		b.v.add(api.FieldTooLong, b.field, nil, fmt.Sprintf("command, args and env together may not be longer than %d bytes", api.MaxContainerArgBytes))
	}
}

// execStrings validates command or args. A command's first element is the
// program and may not be empty.
func (v *validator) execStrings(p string, ss []string, isCommand bool, budget *argBudget) {
	for i, s := range ss {
		f := index(p, i)
		switch {
		case isCommand && i == 0 && s == "":
			v.required(f, "the program to run")
		case strings.ContainsRune(s, 0):
			v.invalid(f, s, "must not contain a NUL byte")
		default:
			budget.fits(f, len(s), "a single argument")
		}
	}
}

func (v *validator) env(p string, env []api.EnvVar, budget *argBudget) {
	seen := map[string]bool{}
	for i, e := range env {
		ep := index(p, i)
		switch {
		case e.Name == "":
			v.required(child(ep, "name"), "")
		case !envVarNameRe.MatchString(e.Name):
			v.invalid(child(ep, "name"), e.Name, envVarNameMsg)
		case seen[e.Name]:
			v.duplicate(child(ep, "name"), e.Name)
		default:
			seen[e.Name] = true
		}
		if e.ValueFrom != nil {
			if e.Value != "" {
				v.invalid(child(ep, "valueFrom"), "", "may not be set when value is not empty")
			}
			ref := e.ValueFrom.SecretKeyRef
			if ref == nil {
				v.required(child(ep, "valueFrom", "secretKeyRef"), "the only source of a value is secretKeyRef")
				continue
			}
			rp := child(ep, "valueFrom", "secretKeyRef")
			v.label(child(rp, "name"), ref.Name, api.MaxNameLength, "")
			switch {
			case ref.Key == "":
				v.required(child(rp, "key"), "")
			case !secretKeyRe.MatchString(ref.Key) || len(ref.Key) > 253:
				v.invalid(child(rp, "key"), ref.Key, secretKeyMsg)
			}
			continue
		}
		if strings.ContainsRune(e.Value, 0) {
			v.invalid(child(ep, "value"), e.Value, "must not contain a NUL byte")
			continue
		}
		budget.fits(child(ep, "value"), len(e.Name)+1+len(e.Value), "one NAME=value environment string")
	}
}

// portName checks an IANA_SVC_NAME: ports names also become PORT_<NAME>
// environment variables and service targetPorts.
func (v *validator) portName(field, s string) bool {
	var msg string
	switch {
	case len(s) > api.MaxPortNameLength:
		msg = fmt.Sprintf("must be no more than %d characters", api.MaxPortNameLength)
	case !ianaSvcNameCharsRe.MatchString(s):
		msg = "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
	case strings.Contains(s, "--"):
		msg = "must not contain consecutive hyphens"
	case !ianaSvcNameLetter.MatchString(s):
		msg = "must contain at least one letter (a-z)"
	case s[0] == '-' || s[len(s)-1] == '-':
		msg = "must not begin or end with a hyphen"
	default:
		return true
	}
	v.invalid(field, s, msg)
	return false
}

// portRef checks a port given by number or by name; names, when
// declared is not nil, must be among the declared ones.
func (v *validator) portRef(field string, port api.IntOrString, declared map[string]bool, where string) {
	if !port.IsString {
		v.rangeOf(field, int64(port.IntVal), 1, 65535)
		return
	}
	if port.StrVal == "" {
		v.required(field, "a port number or name")
		return
	}
	if v.portName(field, port.StrVal) && declared != nil && !declared[port.StrVal] {
		v.invalid(field, port.StrVal, "must be a port number or the name of a port declared by "+where)
	}
}

func (v *validator) probe(p string, pr *api.Probe, mustSucceedOnce bool, ports map[string]bool) {
	if pr == nil {
		return
	}
	handlers := 0
	if h := pr.HTTPGet; h != nil {
		handlers++
		hp := child(p, "httpGet")
		v.portRef(child(hp, "port"), h.Port, ports, "the container")
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \t\r\n#") {
			v.invalid(child(hp, "path"), h.Path, "must be an absolute path starting with '/', without spaces or '#'")
		}
		v.oneOf(child(hp, "scheme"), h.Scheme, api.SchemeHTTP, api.SchemeHTTPS)
		if h.Host != "" && !validHostHeader(h.Host) {
			v.invalid(child(hp, "host"), h.Host, "must be a host name or IP address, optionally with :port (the probe always connects to the pod's own address; this is only the Host header)")
		}
		for i, hd := range h.HTTPHeaders {
			f := index(child(hp, "httpHeaders"), i)
			if !httpTokenRe.MatchString(hd.Name) {
				v.invalid(child(f, "name"), hd.Name, httpTokenMsg)
			}
			if strings.ContainsAny(hd.Value, "\r\n\x00") {
				v.invalid(child(f, "value"), hd.Value, "must not contain CR, LF or NUL")
			}
		}
	}
	if t := pr.TCPSocket; t != nil {
		handlers++
		if handlers > 1 {
			v.forbidden(child(p, "tcpSocket"), "may not specify more than 1 handler type")
		} else {
			v.portRef(child(p, "tcpSocket", "port"), t.Port, ports, "the container")
		}
	}
	if e := pr.Exec; e != nil {
		handlers++
		if handlers > 1 {
			v.forbidden(child(p, "exec"), "may not specify more than 1 handler type")
		} else if len(e.Command) == 0 {
			v.required(child(p, "exec", "command"), "")
		} else {
			v.execStrings(child(p, "exec", "command"), e.Command, true, v.argBudget(p))
		}
	}
	if handlers == 0 {
		v.required(p, "must specify a handler: exactly one of httpGet, tcpSocket or exec")
	}
	v.min(child(p, "initialDelaySeconds"), int64(pr.InitialDelaySeconds), 0)
	v.min(child(p, "periodSeconds"), int64(pr.PeriodSeconds), 1)
	v.min(child(p, "timeoutSeconds"), int64(pr.TimeoutSeconds), 1)
	v.min(child(p, "failureThreshold"), int64(pr.FailureThreshold), 1)
	if mustSucceedOnce && pr.SuccessThreshold != 1 {
		v.invalid(child(p, "successThreshold"), pr.SuccessThreshold, "must be 1 for liveness and startup probes")
	} else {
		v.min(child(p, "successThreshold"), int64(pr.SuccessThreshold), 1)
	}
}

// validHostHeader accepts host, host:port, an IPv4 address or a bracketed
// IPv6 address.
func validHostHeader(h string) bool {
	host := h
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		port, err := strconv.Atoi(h[i+1:])
		if err != nil || port < 1 || port > 65535 {
			return false
		}
		host = h[:i]
	}
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		return len(host) > 2 && strings.Trim(host[1:len(host)-1], "0123456789abcdefABCDEF:.") == ""
	}
	return isDNS1123Subdomain(strings.ToLower(host))
}

func (v *validator) resources(p string, limits api.ResourceList) {
	for _, name := range sortedKeys(limits) {
		f := key(p, name)
		q := limits[name]
		switch name {
		case api.ResourceCPU:
			m, err := q.MilliValue()
			switch {
			case err != nil:
				v.invalid(f, string(q), err.Error())
			case m <= 0:
				v.invalid(f, string(q), "must be greater than 0")
			}
		case api.ResourceMemory:
			b, err := q.Value()
			switch {
			case err != nil:
				v.invalid(f, string(q), err.Error())
			case b < api.MinMemoryLimit:
				v.invalid(f, string(q), "must be at least 4Mi: no process starts in less")
			}
		default:
			v.unsupported(f, name, api.ResourceCPU, api.ResourceMemory)
		}
	}
}

func (v *validator) strategy(p string, s *api.Strategy) {
	v.oneOf(child(p, "type"), s.Type, api.StrategyRolling, api.StrategyRecreate, api.StrategyBlueGreen, api.StrategyCanary)
	sub := func(name string, set bool, typ string) bool {
		if set && s.Type != typ {
			v.forbidden(child(p, name), fmt.Sprintf("may not be set when type is %q", s.Type))
			return false
		}
		return set
	}
	if sub("rolling", s.Rolling != nil, api.StrategyRolling) {
		rp := child(p, "rolling")
		surge := v.intOrPercent(child(rp, "maxSurge"), s.Rolling.MaxSurge)
		unavail := v.intOrPercent(child(rp, "maxUnavailable"), s.Rolling.MaxUnavailable)
		if surge == 0 && unavail == 0 {
			v.invalid(child(rp, "maxUnavailable"), s.Rolling.MaxUnavailable.String(), "may not be 0 when maxSurge is 0: the rollout could never make progress")
		}
		v.min(child(rp, "minReadySeconds"), int64(s.Rolling.MinReadySeconds), 0)
	}
	sub("recreate", s.Recreate != nil, api.StrategyRecreate)
	if sub("blueGreen", s.BlueGreen != nil, api.StrategyBlueGreen) {
		bp, bg := child(p, "blueGreen"), s.BlueGreen
		v.min(child(bp, "autoPromoteAfterSeconds"), int64(bg.AutoPromoteAfterSeconds), 0)
		if bg.PreviewHost != "" {
			v.subdomain(child(bp, "previewHost"), bg.PreviewHost)
		}
		if bg.ScaleDownDelaySeconds != nil {
			v.min(child(bp, "scaleDownDelaySeconds"), int64(*bg.ScaleDownDelaySeconds), 0)
		}
		v.analysis(child(bp, "prePromotionAnalysis"), bg.PrePromotionAnalysis)
		v.analysis(child(bp, "postPromotionAnalysis"), bg.PostPromotionAnalysis)
	}
	if sub("canary", s.Canary != nil, api.StrategyCanary) {
		v.canary(child(p, "canary"), s.Canary)
	}
	if h := s.Hooks; h != nil {
		hp := child(p, "hooks")
		v.hook(child(hp, "pre"), h.Pre)
		if h.Mid != nil && s.Type != api.StrategyRecreate {
			v.forbidden(child(hp, "mid"), "a mid hook runs between stopping the old pods and starting the new ones: only with type Recreate")
		} else {
			v.hook(child(hp, "mid"), h.Mid)
		}
		v.hook(child(hp, "post"), h.Post)
	}
}

// intOrPercent checks a count (>= 0) or a percentage from 0% to 100%, and
// returns the number for the "not both zero" rules (-1 when invalid).
func (v *validator) intOrPercent(field string, x *api.IntOrString) int64 {
	if x == nil {
		return -1
	}
	if !x.IsString {
		v.min(field, int64(x.IntVal), 0)
		return int64(x.IntVal)
	}
	num, ok := strings.CutSuffix(x.StrVal, "%")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || num == "" || num[0] < '0' || num[0] > '9' || n > 100 {
		v.invalid(field, x.StrVal, "must be an integer or a percentage from 0% to 100% (e.g. 1 or 25%)")
		return -1
	}
	return int64(n)
}

func (v *validator) canary(p string, c *api.CanaryStrategy) {
	for i, st := range c.Steps {
		sp := index(child(p, "steps"), i)
		set := 0
		for _, f := range []struct {
			name string
			set  bool
		}{{"setWeight", st.SetWeight != nil}, {"pause", st.Pause != nil}, {"analysis", st.Analysis != nil}} {
			if !f.set {
				continue
			}
			set++
			if set > 1 {
				v.forbidden(child(sp, f.name), "a step is exactly one of setWeight, pause or analysis")
			}
		}
		switch {
		case set == 0:
			v.required(sp, "a step is exactly one of setWeight, pause or analysis")
		case st.SetWeight != nil:
			v.rangeOf(child(sp, "setWeight"), int64(*st.SetWeight), 0, 100)
		case st.Pause != nil:
			v.duration(child(sp, "pause", "duration"), st.Pause.Duration)
		case st.Analysis != nil:
			v.analysis(child(sp, "analysis"), st.Analysis)
		}
	}
	v.analysis(child(p, "analysis"), c.Analysis)
	surge := v.intOrPercent(child(p, "maxSurge"), c.MaxSurge)
	unavail := v.intOrPercent(child(p, "maxUnavailable"), c.MaxUnavailable)
	if surge == 0 && unavail == 0 {
		v.invalid(child(p, "maxUnavailable"), c.MaxUnavailable.String(), "may not be 0 when maxSurge is 0: the rollout could never make progress")
	}
	for i := range c.Match {
		v.routeMatch(index(child(p, "match"), i), &c.Match[i], nil)
	}
}

// duration checks an optional duration, which must be positive when set.
func (v *validator) duration(field string, d api.Duration) {
	if d == "" {
		return
	}
	t, err := d.Parse()
	switch {
	case err != nil:
		v.invalid(field, string(d), "must be a duration such as 500ms, 30s or 5m")
	case t <= 0:
		v.invalid(field, string(d), "must be greater than 0")
	}
}

func (v *validator) analysis(p string, a *api.Analysis) {
	if a == nil {
		return
	}
	mp := child(p, "metrics")
	if len(a.Metrics) == 0 {
		v.required(mp, "at least one metric is required")
	}
	names := map[string]bool{}
	for i := range a.Metrics {
		m := &a.Metrics[i]
		f := index(mp, i)
		if v.label(child(f, "name"), m.Name, api.MaxNameLength, "") {
			if names[m.Name] {
				v.duplicate(child(f, "name"), m.Name)
			}
			names[m.Name] = true
		}
		if !v.oneOf(child(f, "type"), m.Type, api.MetricSuccessRate, api.MetricErrorRate, api.MetricLatencyP50, api.MetricLatencyP90, api.MetricLatencyP99, api.MetricWebhook) {
			continue
		}
		bound := func(name string, b *float64, need bool, lo, hi float64, what string) {
			bf := child(f, name)
			switch {
			case b == nil && need:
				v.required(bf, what)
			case b != nil && !need:
				v.forbidden(bf, fmt.Sprintf("may not be set for type %s", m.Type))
			case b != nil && (*b < lo || *b > hi || *b != *b):
				v.invalid(bf, *b, what)
			}
		}
		switch m.Type {
		case api.MetricSuccessRate:
			bound("min", m.Min, true, 0, 1, "the lowest passing share of non-5xx responses, from 0 to 1 (e.g. 0.99)")
			bound("max", m.Max, false, 0, 0, "")
		case api.MetricErrorRate:
			bound("min", m.Min, false, 0, 0, "")
			bound("max", m.Max, true, 0, 1, "the highest passing share of 5xx responses, from 0 to 1 (e.g. 0.01)")
		case api.MetricLatencyP50, api.MetricLatencyP90, api.MetricLatencyP99:
			bound("min", m.Min, false, 0, 0, "")
			bound("max", m.Max, true, 1e-3, 3.6e6, "the highest passing latency in milliseconds, greater than 0 (e.g. 250)")
		case api.MetricWebhook:
			bound("min", m.Min, false, 0, 0, "")
			bound("max", m.Max, false, 0, 0, "")
		}
		wp := child(f, "webhook")
		switch {
		case m.Type == api.MetricWebhook && m.Webhook == nil:
			v.required(wp, "url and timeoutSeconds of the check")
		case m.Type != api.MetricWebhook && m.Webhook != nil:
			v.forbidden(wp, fmt.Sprintf("may not be set for type %s", m.Type))
		case m.Webhook != nil:
			u, err := url.Parse(m.Webhook.URL)
			switch {
			case m.Webhook.URL == "":
				v.required(child(wp, "url"), "")
			case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
				v.invalid(child(wp, "url"), m.Webhook.URL, "must be an absolute http or https URL")
			}
			v.rangeOf(child(wp, "timeoutSeconds"), int64(m.Webhook.TimeoutSeconds), 1, api.MaxWebhookTimeoutSeconds)
		}
	}
	v.duration(child(p, "interval"), a.Interval)
	v.min(child(p, "failureLimit"), int64(a.FailureLimit), 0)
	v.min(child(p, "minRequests"), a.MinRequests, 0)
	v.oneOf(child(p, "inconclusivePolicy"), a.InconclusivePolicy, api.InconclusiveWait, api.InconclusiveFail)
}

func (v *validator) hook(p string, h *api.Hook) {
	if h == nil {
		return
	}
	if len(h.Command) == 0 {
		v.required(child(p, "command"), "")
	}
	budget := v.argBudget(p)
	v.execStrings(child(p, "command"), h.Command, true, budget)
	v.env(child(p, "env"), h.Env, budget)
	budget.check()
	v.min(child(p, "timeoutSeconds"), int64(h.TimeoutSeconds), 0)
	v.oneOf(child(p, "failurePolicy"), h.FailurePolicy, api.HookAbort, api.HookRetry, api.HookIgnore)
}

func (v *validator) triggers(p string, ts []api.Trigger, containers []api.Container) {
	seen := map[string]bool{}
	for i, t := range ts {
		tp := index(p, i)
		if !v.oneOf(child(tp, "type"), t.Type, api.TriggerConfigChange, api.TriggerImageChange) {
			continue
		}
		if seen[t.Type] {
			v.duplicate(child(tp, "type"), t.Type)
		}
		seen[t.Type] = true
		if t.ImageChange != nil && t.Type != api.TriggerImageChange {
			v.forbidden(child(tp, "imageChange"), fmt.Sprintf("may not be set when type is %q", t.Type))
			continue
		}
		if t.ImageChange == nil {
			continue
		}
		for j, name := range t.ImageChange.ContainerNames {
			found := false
			for _, c := range containers {
				found = found || c.Name == name
			}
			if !found {
				v.invalid(index(child(tp, "imageChange", "containerNames"), j), name, "must name a container of spec.template.containers")
			}
		}
	}
}

package deploy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
)

// Observed is what the controller read for one App, besides the App.
type Observed struct {
	Revisions []*api.Revision
	// Pods of the App: crash loops and readiness gaps are read from them.
	Pods []*api.Pod
	// Metrics are the router's counters per revision number; nil when the
	// router is not available (no analysis can pass, the report says so).
	Metrics map[int64]Sample
	// Webhooks are the outcomes of DueWebhooks' calls, by key (true: 2xx).
	Webhooks map[string]bool
	// SecretHash identifies the content of the Secrets the template
	// references ("" when it references none): SecretHash.
	SecretHash string
}

// RevisionHash identifies what a revision runs: the template, and the
// content of the Secrets it references when it references any (so a
// changed Secret rolls out a new revision). Without Secrets it is
// TemplateHash, so revisions made before Secrets counted keep theirs.
func RevisionHash(t api.PodTemplate, secretHash string) string {
	h := TemplateHash(t)
	if secretHash == "" {
		return h
	}
	sum := sha256.Sum256([]byte(h + "/" + secretHash))
	return hex.EncodeToString(sum[:])[:16]
}

// SecretRefs lists the Secrets (by name) and keys a template reads.
func SecretRefs(t api.PodTemplate) map[string][]string {
	out := map[string][]string{}
	for _, c := range t.Containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				if !slices.Contains(out[r.Name], r.Key) {
					out[r.Name] = append(out[r.Name], r.Key)
				}
			}
		}
	}
	return out
}

// SecretHash digests the values of the referenced keys (data maps secret
// name to its data; a missing Secret or key digests as absent). Values
// never leave this function but as part of a SHA-256.
func SecretHash(refs map[string][]string, data map[string]map[string]string) string {
	if len(refs) == 0 {
		return ""
	}
	h := sha256.New()
	names := make([]string, 0, len(refs))
	for n := range refs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		keys := slices.Sorted(slices.Values(refs[n]))
		for _, k := range keys {
			v, ok := data[n][k]
			fmt.Fprintf(h, "%d:%s/%d:%s=%t:%d:%s;", len(n), n, len(k), k, ok, len(v), v)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// PlanApp is Decide without a clock, pods or metrics: enough for Rolling
// and Recreate, whose steps depend only on the revisions.
func PlanApp(app *api.App, revs []*api.Revision) Plan {
	return Decide(app, Observed{Revisions: revs}, time.Time{})
}

// decision is one Decide call's working state.
type decision struct {
	app      *api.App
	obs      Observed
	now      time.Time
	replicas int32
	st       api.AppStatus // the status being written
	ro       *api.RolloutStatus
	p        *Plan
	byNum    map[int64]*api.Revision
	active   *api.Revision
	want     map[string]int32
	traffic  []api.TrafficTarget
	preview  int64
	requeue  time.Duration
}

// Decide moves app toward its spec: which revision to create, how many
// pods each revision should have, the traffic split, and the rollout
// state, from the App (spec and last status), what is observed, and now.
//
// A template change (or a change of a referenced Secret's content) makes
// revision n+1 and starts a rollout from the stable revision, recorded in
// status.rollout; the strategy then takes one step per call, each from the
// recorded state and the observations. A change during a rollout
// supersedes it: the half-finished revision is just another old revision.
// Control requests (the RolloutRequestAnnotation) are acted on once.
func Decide(app *api.App, obs Observed, now time.Time) Plan {
	d := &decision{app: app, obs: obs, now: now, replicas: api.DefaultReplicas, st: cloneStatus(app.Status),
		p: &Plan{Scale: map[string]int32{}}, byNum: map[int64]*api.Revision{}, want: map[string]int32{}}
	if app.Spec.Replicas != nil {
		d.replicas = *app.Spec.Replicas
	}
	sorted := append([]*api.Revision(nil), obs.Revisions...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Spec.Number < sorted[j].Spec.Number })
	for _, r := range sorted {
		d.byNum[r.Spec.Number] = r
	}
	hash := RevisionHash(app.Spec.Template, obs.SecretHash)
	var latest *api.Revision
	if n := len(sorted); n > 0 {
		latest = sorted[n-1]
	}
	held := d.holdReason(latest, hash)
	switch {
	case latest != nil && (latest.Spec.TemplateHash == hash || held != ""):
		d.active = latest
	default:
		n := int64(1)
		if latest != nil {
			n = latest.Spec.Number + 1
		}
		// A template equal to an older revision's (an undo) still makes a
		// new revision, so history reads in order.
		d.active = &api.Revision{
			TypeMeta: api.TypeMeta{APIVersion: api.Version, Kind: "Revision"},
			Metadata: api.ObjectMeta{
				Name:    RevisionName(app.Metadata.Name, n),
				Project: app.Metadata.Project,
				Labels:  map[string]string{api.LabelApp: app.Metadata.Name, api.LabelRevision: strconv.FormatInt(n, 10)},
			},
			Spec: api.RevisionSpec{App: app.Metadata.Name, Number: n, TemplateHash: hash, Template: app.Spec.Template},
		}
		d.p.Create = d.active
		d.byNum[n] = d.active
		sorted = append(sorted, d.active)
		d.event(api.EventNormal, "RevisionCreated", fmt.Sprintf("created revision %d", n))
	}
	d.startRollout()
	d.request()
	d.failurePaths()
	d.strategy()

	// Apply the wants.
	if d.p.Create != nil {
		d.p.Create.Spec.Replicas = d.want[d.active.Metadata.Name]
	}
	for _, r := range sorted {
		if r == d.p.Create {
			continue
		}
		if w := d.want[r.Metadata.Name]; r.Spec.Replicas != w {
			d.p.Scale[r.Metadata.Name] = w
			d.event(api.EventNormal, "ScalingRevision", fmt.Sprintf("scaled revision %d from %d to %d", r.Spec.Number, r.Spec.Replicas, w))
		}
	}
	// History: keep the active revision and revisionHistoryLimit others,
	// deleting the oldest whose pods are gone.
	limit := int(api.DefaultRevisionHistoryLimit)
	if app.Spec.RevisionHistoryLimit != nil {
		limit = int(*app.Spec.RevisionHistoryLimit)
	}
	var old []*api.Revision
	for _, r := range sorted {
		if r != d.active {
			old = append(old, r)
		}
	}
	keep := map[int64]bool{d.st.StableRevision: true, d.ro.From: true}
	for i := 0; i < len(old)-limit; i++ {
		if o := old[i]; !keep[o.Spec.Number] && d.want[o.Metadata.Name] == 0 && o.Spec.Replicas == 0 && o.Status.Replicas == 0 && observed(o) {
			d.p.Delete = append(d.p.Delete, o.Metadata.Name)
		}
	}
	d.status(sorted, held)
	d.p.Status = d.st
	d.p.RequeueAfter = d.requeue
	return *d.p
}

func (d *decision) event(typ, reason, msg string) {
	d.p.Events = append(d.p.Events, Event{typ, reason, msg})
}

// wake asks for another decision after dt (the earliest asked wins).
func (d *decision) wake(dt time.Duration) {
	if dt > 0 && (d.requeue == 0 || dt < d.requeue) {
		d.requeue = dt
	}
}

// holdReason says why a template change is not rolled out ("" if it is):
// spec.paused, or an App triggered by image changes only whose change
// touches no image (OpenShift: config changes then wait for a new image).
func (d *decision) holdReason(latest *api.Revision, hash string) string {
	if latest == nil || latest.Spec.TemplateHash == hash {
		return ""
	}
	if d.app.Spec.Paused {
		return "template change held: spec.paused is true"
	}
	if len(d.app.Spec.Triggers) > 0 && !hasTrigger(d.app, api.TriggerConfigChange) && hasTrigger(d.app, api.TriggerImageChange) &&
		!imagesDiffer(latest.Spec.Template, d.app.Spec.Template) {
		return "template change held: the app has no ConfigChange trigger and no image changed"
	}
	return ""
}

func hasTrigger(a *api.App, typ string) bool {
	return slices.ContainsFunc(a.Spec.Triggers, func(t api.Trigger) bool { return t.Type == typ })
}

func imagesDiffer(a, b api.PodTemplate) bool {
	img := map[string]string{}
	for _, c := range a.Containers {
		img[c.Name] = c.Image
	}
	for _, c := range b.Containers {
		if img[c.Name] != c.Image {
			return true
		}
	}
	return false
}

// startRollout makes sure the rollout record is the active revision's,
// starting a new one from the stable revision when it is not.
func (d *decision) startRollout() {
	d.ro = d.st.Rollout
	if d.ro != nil && d.ro.Revision == d.active.Spec.Number {
		return
	}
	d.ro = &api.RolloutStatus{Revision: d.active.Spec.Number, State: api.RolloutProgressing,
		StartedAt: d.now, StepStartedAt: d.now, LastProgressAt: d.now, Baseline: d.baseline()}
	if s := d.byNum[d.st.StableRevision]; s != nil && s != d.active {
		d.ro.From = s.Spec.Number
	}
	if d.st.StableRevision == d.active.Spec.Number {
		d.ro.State = api.RolloutCompleted // an App from before rollout records
	}
	d.st.Rollout = d.ro
	d.st.CurrentStep = nil
	if d.ro.State == api.RolloutProgressing && d.ro.From != 0 {
		d.event(api.EventNormal, "RolloutStarted", fmt.Sprintf("rolling out revision %d from revision %d (%s)", d.ro.Revision, d.ro.From, d.strategyType()))
	}
}

func (d *decision) baseline() []api.RequestCounts {
	var out []api.RequestCounts
	for _, n := range slices.Sorted(mapsKeys(d.obs.Metrics)) {
		out = append(out, d.obs.Metrics[n].counts(n))
	}
	return out
}

func mapsKeys[V any](m map[int64]V) func(func(int64) bool) {
	return func(yield func(int64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (d *decision) strategyType() string {
	if t := d.app.Spec.Strategy.Type; t != "" {
		return t
	}
	return api.StrategyRolling
}

func (d *decision) inProgress() bool {
	return d.ro.State == api.RolloutProgressing || d.ro.State == api.RolloutPaused
}

// request acts on a new control request.
func (d *decision) request() {
	v := d.app.Metadata.Annotations[api.RolloutRequestAnnotation]
	if v == "" || v == d.st.ObservedRequest {
		return
	}
	d.st.ObservedRequest, d.st.RequestRefused = v, ""
	verb, _, _ := strings.Cut(v, " ")
	ro := d.ro
	refuse := func(why string) {
		d.st.RequestRefused = why
		d.event(api.EventWarning, "RequestRefused", fmt.Sprintf("rollout %s: %s", verb, why))
	}
	switch verb {
	case api.RequestAbort:
		if !d.inProgress() || ro.From == 0 {
			refuse("no rollout in progress")
			return
		}
		d.abort("RolloutAborted", "aborted by rollout abort")
	case api.RequestRollback:
		switch {
		case ro.From == 0 || d.byNum[ro.From] == nil:
			refuse("no previous revision to go back to")
		case ro.State == api.RolloutRolledBack:
			refuse(fmt.Sprintf("already rolled back to revision %d", ro.From))
		default:
			d.end(api.RolloutRolledBack, "RolledBack", fmt.Sprintf("rolled back to revision %d by rollout rollback; revision %d is held until the template changes or rollout retry", ro.From, ro.Revision))
			d.st.StableRevision = ro.From
			d.event(api.EventNormal, "RolledBack", ro.Message)
		}
	case api.RequestRetry:
		if ro.State != api.RolloutAborted && ro.State != api.RolloutRolledBack {
			refuse("only an aborted or rolled-back rollout can be retried")
			return
		}
		from := ro.From
		*ro = api.RolloutStatus{Revision: ro.Revision, From: from, State: api.RolloutProgressing,
			StartedAt: d.now, StepStartedAt: d.now, LastProgressAt: d.now, Baseline: d.baseline()}
		d.st.StableRevision = from
		d.st.CurrentStep = nil
		d.event(api.EventNormal, "RolloutRetried", fmt.Sprintf("rolling out revision %d again from revision %d", ro.Revision, from))
	case api.RequestPromote, api.RequestPromoteFull:
		if !d.inProgress() {
			refuse("no rollout in progress")
			return
		}
		full := verb == api.RequestPromoteFull
		switch d.strategyType() {
		case api.StrategyBlueGreen:
			ro.PromoteFull = ro.PromoteFull || full
			if ro.PromotedAt.IsZero() {
				ro.Reason = "PromoteRequested"
			}
		case api.StrategyCanary:
			if full {
				ro.PromoteFull = true
			} else {
				d.advanceStep()
			}
		default:
			refuse("only BlueGreen and Canary rollouts are promoted")
			return
		}
		if ro.State == api.RolloutPaused {
			ro.State = api.RolloutProgressing
		}
		ro.LastProgressAt = d.now
		d.event(api.EventNormal, "PromoteRequested", fmt.Sprintf("rollout %s of revision %d", verb, ro.Revision))
	default:
		refuse("unknown verb")
	}
}

// abort ends the rollout: all traffic back to the stable revision at once,
// the new revision scaled down, phase Degraded with the reason.
func (d *decision) abort(reason, msg string) {
	d.end(api.RolloutAborted, reason, msg)
	d.event(api.EventWarning, reason, fmt.Sprintf("rollout of revision %d aborted: %s; all traffic back to revision %d", d.ro.Revision, msg, d.ro.From))
}

func (d *decision) end(state, reason, msg string) {
	d.ro.State, d.ro.Reason, d.ro.Message, d.ro.EndedAt = state, reason, msg, d.now
	endRuns(d.ro)
	d.ro.Report = d.report()
}

// crashLoopRestarts is how many restarts of a new pod's container abort
// its rollout.
const crashLoopRestarts = 3

// failurePaths aborts a rollout whose new pods crash-loop or which has
// made no progress for progressDeadlineSeconds (a pause does not count).
func (d *decision) failurePaths() {
	if !d.inProgress() || d.ro.From == 0 || d.byNum[d.ro.From] == nil {
		return
	}
	for _, p := range d.obs.Pods {
		if p.Spec.Revision != d.ro.Revision {
			continue
		}
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount >= crashLoopRestarts {
				d.abort("CrashLoop", fmt.Sprintf("pod %s of revision %d: container %s restarted %d times (limit %d)", p.Metadata.Name, d.ro.Revision, c.Name, c.RestartCount, crashLoopRestarts))
				return
			}
		}
	}
	if r := d.active; r.Status.ReadyReplicas > d.ro.NewReady {
		d.ro.LastProgressAt = d.now
	}
	d.ro.NewReady = d.active.Status.ReadyReplicas
}

// deadline aborts a rollout that has waited on the new revision's pods for
// progressDeadlineSeconds since it last moved. Pauses and analyses do not
// count: only waiting for pods the strategy asked for.
func (d *decision) deadline() {
	n := d.active
	if d.now.IsZero() || d.ro.State != api.RolloutProgressing || d.ro.From == 0 || d.ro.LastProgressAt.IsZero() ||
		n.Status.AvailableReplicas >= d.want[n.Metadata.Name] {
		return
	}
	secs := api.DefaultProgressDeadlineSeconds
	if d.app.Spec.ProgressDeadlineSeconds != nil {
		secs = *d.app.Spec.ProgressDeadlineSeconds
	}
	at := d.ro.LastProgressAt.Add(time.Duration(secs) * time.Second)
	if d.now.Before(at) {
		d.wake(at.Sub(d.now))
		return
	}
	d.abort("ProgressDeadlineExceeded", fmt.Sprintf("revision %d made no progress for progressDeadlineSeconds %d (%d of %d pods available)", n.Spec.Number, secs, n.Status.AvailableReplicas, d.want[n.Metadata.Name]))
}

// strategy sets want, traffic and preview for the rollout's state.
func (d *decision) strategy() {
	for _, r := range d.byNum {
		d.want[r.Metadata.Name] = 0
	}
	ro := d.ro
	from := d.byNum[ro.From]
	switch {
	case (ro.State == api.RolloutAborted || ro.State == api.RolloutRolledBack) && from != nil:
		d.held(from)
	case ro.State == api.RolloutCompleted || from == nil:
		d.steady()
	default:
		switch d.strategyType() {
		case api.StrategyBlueGreen:
			d.blueGreen(from)
		case api.StrategyCanary:
			d.canary(from)
		default:
			d.steady()
		}
		d.deadline()
		if ro.State == api.RolloutAborted {
			for k := range d.want {
				d.want[k] = 0
			}
			d.traffic, d.preview = nil, 0
			d.held(from)
		}
	}
	d.trackReadiness()
	d.finalReport()
}

// finalReport recounts the report of an ended rollout once the revisions
// it left have no pod: requests in flight when it ended, or sent before
// the router applied the last split, are counted too.
func (d *decision) finalReport() {
	ro := d.ro
	if ro.Report == nil || ro.Report.Final || ro.From == 0 || d.inProgress() || d.now.IsZero() {
		return
	}
	serving := ro.From
	if ro.State == api.RolloutCompleted {
		serving = ro.Revision
	}
	for _, r := range d.byNum {
		if r.Spec.Number != serving && (d.want[r.Metadata.Name] != 0 || r.Spec.Replicas != 0 || r.Status.Replicas != 0 || !observed(r)) {
			return
		}
	}
	ro.Report = d.report()
	ro.Report.Final = true
}

// others lists the revisions other than those given.
func (d *decision) others(not ...*api.Revision) []*api.Revision {
	var out []*api.Revision
	for _, n := range slices.Sorted(mapsKeys(d.byNum)) {
		if r := d.byNum[n]; !slices.Contains(not, r) {
			out = append(out, r)
		}
	}
	return out
}

// steady is the Rolling and Recreate strategies, an App's first revision
// under any strategy, and a completed rollout: the active revision at full
// size, old ones retired by the strategy's bounds (BlueGreen's previous
// revision kept warm until its scale-down time); traffic by ready pods.
func (d *decision) steady() {
	olds := d.others(d.active)
	var warm *api.Revision
	if ro := d.ro; ro.State == api.RolloutCompleted && !ro.ScaleDownAt.IsZero() {
		if r := d.byNum[ro.From]; r != nil && d.now.Before(ro.ScaleDownAt) {
			warm = r
			olds = slices.DeleteFunc(olds, func(x *api.Revision) bool { return x == r })
			d.wake(ro.ScaleDownAt.Sub(d.now))
		}
	}
	d.rollTo(d.active, olds)
	if warm != nil {
		d.want[warm.Metadata.Name] = warm.Spec.Replicas
	}
	if d.ro.State == api.RolloutCompleted && d.active.Status.ReadyReplicas > 0 {
		// Old pods still draining get nothing once the rollout is over.
		d.traffic = weights(d.active.Spec.Number, 100)
	}
	if d.inProgress() && d.settled(d.active, olds) {
		d.complete()
	}
}

// rollTo plans Rolling or Recreate toward next; traffic follows ready pods.
func (d *decision) rollTo(next *api.Revision, olds []*api.Revision) {
	var want map[string]int32
	if d.strategyType() == api.StrategyRecreate {
		want = planRecreate(next, olds, d.replicas)
	} else {
		var rs *api.RollingStrategy
		if d.app.Spec.Strategy.Type == api.StrategyRolling || d.app.Spec.Strategy.Type == "" {
			rs = d.app.Spec.Strategy.Rolling
		}
		surge, unavailable := rollingBounds(rs, d.replicas)
		want = planRolling(next, olds, d.replicas, surge, unavailable, d.st.StableRevision != 0)
	}
	for k, v := range want {
		d.want[k] = v
	}
	d.traffic = trafficByReady(next, olds)
}

// settled reports whether r serves at full size and olds are gone.
func (d *decision) settled(r *api.Revision, olds []*api.Revision) bool {
	for _, o := range olds {
		if d.want[o.Metadata.Name] != 0 || o.Spec.Replicas != 0 || o.Status.Replicas != 0 || !observed(o) {
			return false
		}
	}
	return d.want[r.Metadata.Name] == d.replicas && r.Spec.Replicas == d.replicas && observed(r) &&
		r.Status.Replicas == d.replicas && r.Status.ReadyReplicas == d.replicas && r.Status.AvailableReplicas == d.replicas
}

func (d *decision) complete() {
	ro := d.ro
	d.end(api.RolloutCompleted, "", "")
	d.st.StableRevision = ro.Revision
	if ro.From != 0 {
		d.event(api.EventNormal, "RolloutCompleted", fmt.Sprintf("revision %d serves all traffic%s", ro.Revision, reportSummary(ro.Report)))
	}
}

// held is an aborted or rolled-back rollout: all traffic to from at once
// (where it has ready pods), from at full size, every other revision
// scaled down once from has its pods available. Rolling and Recreate go
// back by their own bounds.
func (d *decision) held(from *api.Revision) {
	olds := d.others(from)
	switch d.strategyType() {
	case api.StrategyBlueGreen, api.StrategyCanary:
		d.want[from.Metadata.Name] = d.replicas
		warm := from.Status.AvailableReplicas >= d.replicas && from.Spec.Replicas >= d.replicas
		for _, o := range olds {
			if !warm { // the from revision is coming back: keep serving capacity
				d.want[o.Metadata.Name] = o.Spec.Replicas
			}
		}
		d.traffic = weights(from.Spec.Number, 100)
	default:
		d.rollTo(from, olds)
	}
}

func weights(rev int64, w int32, more ...api.TrafficTarget) []api.TrafficTarget {
	return append([]api.TrafficTarget{{Revision: rev, Weight: w}}, more...)
}

// blueGreen: the new revision at full size beside the stable one, which
// keeps all traffic; the preview reaches the new one. Promotion (by
// request, or autoPromote after autoPromoteAfterSeconds) moves all traffic
// at once, after the pre-promotion analysis passes; the post-promotion
// analysis may still abort, back to the stable revision kept at full size.
func (d *decision) blueGreen(stable *api.Revision) {
	bg := d.app.Spec.Strategy.BlueGreen
	if bg == nil {
		bg = &api.BlueGreenStrategy{}
	}
	ro, n := d.ro, d.active
	d.want[stable.Metadata.Name] = d.replicas
	d.want[n.Metadata.Name] = d.replicas
	d.traffic = weights(stable.Spec.Number, 100)
	if ro.PromotedAt.IsZero() {
		d.preview = n.Spec.Number
		if !(observed(n) && n.Spec.Replicas == d.replicas && n.Status.AvailableReplicas >= d.replicas) {
			return
		}
		if ro.ReadyAt.IsZero() {
			ro.ReadyAt, ro.LastProgressAt = d.now, d.now
		}
		if a := bg.PrePromotionAnalysis; a != nil && !ro.PromoteFull {
			if !d.gate(runPrePromotion, a, n.Spec.Number) {
				return
			}
		}
		promote := ro.Reason == "PromoteRequested" || ro.PromoteFull
		if !promote && bg.AutoPromote {
			at := ro.ReadyAt.Add(time.Duration(bg.AutoPromoteAfterSeconds) * time.Second)
			if promote = !d.now.Before(at); !promote {
				d.wake(at.Sub(d.now))
			}
		}
		if !promote {
			if ro.State != api.RolloutPaused {
				ro.State, ro.Reason, ro.Message = api.RolloutPaused, "BlueGreenPause", fmt.Sprintf("revision %d is ready on the preview: waiting for rollout promote", n.Spec.Number)
				d.event(api.EventNormal, "PreviewReady", ro.Message)
			}
			return
		}
		ro.State, ro.Reason, ro.Message = api.RolloutProgressing, "", ""
		ro.PromotedAt, ro.LastProgressAt, ro.StepStartedAt = d.now, d.now, d.now
		d.event(api.EventNormal, "Promoted", fmt.Sprintf("all traffic to revision %d", n.Spec.Number))
	}
	d.traffic = weights(n.Spec.Number, 100)
	if a := bg.PostPromotionAnalysis; a != nil && !ro.PromoteFull {
		if !d.gate(runPostPromotion, a, n.Spec.Number) {
			return
		}
	}
	delay := api.DefaultScaleDownDelaySeconds
	if bg.ScaleDownDelaySeconds != nil {
		delay = *bg.ScaleDownDelaySeconds
	}
	ro.ScaleDownAt = d.now.Add(time.Duration(delay) * time.Second)
	d.complete()
	if delay > 0 {
		d.wake(time.Duration(delay) * time.Second)
	}
}

// gate runs the analysis named run of revision rev and reports whether it
// passed; a failed one aborts the rollout.
func (d *decision) gate(run string, a *api.Analysis, rev int64) bool {
	cur, have := d.obs.Metrics[rev]
	r := startRun(d.ro, run, cur.counts(rev), d.now)
	d.wake(measure(r, a, true, cur, have, d.obs.Webhooks, d.now))
	switch r.Phase {
	case api.AnalysisSuccessful:
		return true
	case api.AnalysisFailed:
		d.abort("AnalysisFailed", fmt.Sprintf("analysis %s of revision %d failed: %s", run, rev, r.Message))
	}
	return false
}

// podsFor is the canary pods for a weight: in proportion, at least 1.
func (d *decision) podsFor(w int32) int32 {
	return max(1, (d.replicas*w+99)/100)
}

// canary: the new revision gets traffic step by step, exactly by weight,
// with pods in proportion; pauses wait for a duration or a promote;
// analysis steps gate their step; the background analysis runs while the
// canary has traffic. After the last step the canary scales to full size,
// then takes all traffic.
func (d *decision) canary(stable *api.Revision) {
	c := d.app.Spec.Strategy.Canary
	if c == nil {
		c = &api.CanaryStrategy{}
	}
	ro, n := d.ro, d.active
	if len(c.Match) > 0 {
		d.preview = n.Spec.Number
	}
	steps := c.Steps
	i := d.step()
	if ro.PromoteFull {
		i = len(steps)
	}
	canaryPods := d.podsFor(ro.CanaryWeight)
	avail := func(want int32) bool {
		return observed(n) && n.Spec.Replicas >= want && n.Status.AvailableReplicas >= want
	}
loop:
	for i < len(steps) {
		s := steps[i]
		switch {
		case s.SetWeight != nil:
			canaryPods = max(canaryPods, d.podsFor(*s.SetWeight))
			if !avail(d.podsFor(*s.SetWeight)) {
				break loop
			}
			ro.CanaryWeight = *s.SetWeight
			d.event(api.EventNormal, "SetWeight", fmt.Sprintf("step %d: revision %d gets %d%% of traffic", i, n.Spec.Number, ro.CanaryWeight))
		case s.Pause != nil && s.Pause.Duration != "":
			dur, _ := s.Pause.Duration.Parse()
			if end := ro.StepStartedAt.Add(dur); d.now.Before(end) {
				d.wake(end.Sub(d.now))
				break loop
			}
		case s.Pause != nil:
			if ro.State != api.RolloutPaused {
				ro.State, ro.Reason, ro.Message = api.RolloutPaused, "CanaryPauseStep", fmt.Sprintf("step %d: paused until rollout promote", i)
				d.event(api.EventNormal, "Paused", ro.Message)
			}
			break loop
		case s.Analysis != nil:
			if !d.gate(stepRun(i), s.Analysis, n.Spec.Number) {
				break loop
			}
		}
		i = d.advanceStep()
	}
	if ro.State == api.RolloutAborted {
		return
	}
	if a := c.Analysis; a != nil && ro.CanaryWeight > 0 && !ro.PromoteFull {
		cur, have := d.obs.Metrics[n.Spec.Number]
		r := startRun(ro, runBackground, cur.counts(n.Spec.Number), d.now)
		d.wake(measure(r, a, false, cur, have, d.obs.Webhooks, d.now))
		if r.Phase == api.AnalysisFailed {
			d.abort("AnalysisFailed", fmt.Sprintf("analysis %s of revision %d failed: %s", runBackground, n.Spec.Number, r.Message))
			return
		}
	}
	w := ro.CanaryWeight
	final := i >= len(steps)
	if final {
		canaryPods = d.replicas
	}
	d.want[n.Metadata.Name] = min(max(canaryPods, n.Spec.Replicas), d.replicas)
	d.want[stable.Metadata.Name] = d.replicas
	if c.DynamicStableScale && w > 0 && avail(d.podsFor(w)) {
		// The stable revision shrinks with its share, once the canary
		// holds its weight.
		d.want[stable.Metadata.Name] = d.podsFor(100 - w)
		if w == 100 {
			d.want[stable.Metadata.Name] = 0
		}
	}
	d.traffic = weights(stable.Spec.Number, 100-w, api.TrafficTarget{Revision: n.Spec.Number, Weight: w})
	if final && avail(d.replicas) {
		ro.CanaryWeight = 100
		d.traffic = weights(n.Spec.Number, 100)
		d.want[stable.Metadata.Name] = 0
		d.preview = 0
		d.complete()
	}
}

// step is the current canary step (0 at the start).
func (d *decision) step() int {
	if d.st.CurrentStep == nil {
		return 0
	}
	return int(*d.st.CurrentStep)
}

// advanceStep moves the canary to its next step.
func (d *decision) advanceStep() int {
	i := d.step() + 1
	if c := d.app.Spec.Strategy.Canary; c == nil || i > len(c.Steps) {
		return i - 1
	}
	d.st.CurrentStep = new(int32(i))
	d.ro.StepStartedAt, d.ro.LastProgressAt = d.now, d.now
	if d.ro.State == api.RolloutPaused {
		d.ro.State, d.ro.Reason, d.ro.Message = api.RolloutProgressing, "", ""
	}
	return i
}

// trackReadiness keeps the longest time during a rollout when no pod of
// the App was ready (Recreate's gap): it opens when the revisions report
// no ready pod and closes at the first ready transition seen after it.
func (d *decision) trackReadiness() {
	ro := d.ro
	if ro.From == 0 || !ro.EndedAt.IsZero() && ro.NoReadySince.IsZero() || d.now.IsZero() {
		return
	}
	var ready int32
	for _, r := range d.byNum {
		ready += r.Status.ReadyReplicas
	}
	switch {
	case ready == 0 && ro.NoReadySince.IsZero():
		ro.NoReadySince = d.now
	case ready > 0 && !ro.NoReadySince.IsZero():
		end := d.now
		for _, p := range d.obs.Pods {
			if c := api.FindCondition(p.Status.Conditions, api.PodReady); c != nil && c.Status == api.ConditionTrue &&
				!c.LastTransitionTime.Before(ro.NoReadySince) && c.LastTransitionTime.Before(end) {
				end = c.LastTransitionTime
			}
		}
		ro.LongestNoReadyMillis = max(ro.LongestNoReadyMillis, end.Sub(ro.NoReadySince).Milliseconds())
		ro.NoReadySince = time.Time{}
		if ro.Report != nil {
			ro.Report.LongestNoReadyMillis = ro.LongestNoReadyMillis
		}
	}
}

// report is the zero-downtime report of the rollout at now: the router's
// counters since the baseline, per revision that served.
func (d *decision) report() *api.Report {
	ro := d.ro
	rep := &api.Report{Measured: d.obs.Metrics != nil, LongestNoReadyMillis: ro.LongestNoReadyMillis}
	if !ro.StartedAt.IsZero() && !ro.EndedAt.IsZero() {
		rep.DurationMillis = ro.EndedAt.Sub(ro.StartedAt).Milliseconds()
	}
	if !ro.NoReadySince.IsZero() {
		rep.LongestNoReadyMillis = max(rep.LongestNoReadyMillis, d.now.Sub(ro.NoReadySince).Milliseconds())
	}
	base := map[int64]api.RequestCounts{}
	for _, b := range ro.Baseline {
		base[b.Revision] = b
	}
	for _, n := range slices.Sorted(mapsKeys(d.obs.Metrics)) {
		w := d.obs.Metrics[n].since(base[n])
		if w.total() == 0 && w.UpstreamErrors == 0 {
			continue
		}
		rr := api.RevisionReport{Revision: n, Requests: w.total(), ServerErrors: w.Requests[5], Resets: w.Requests[0], UpstreamErrors: w.UpstreamErrors}
		rep.Revisions = append(rep.Revisions, rr)
		rep.Failed += rr.ServerErrors + rr.Resets
		rep.UpstreamErrors += rr.UpstreamErrors
	}
	return rep
}

func reportSummary(r *api.Report) string {
	if r == nil || !r.Measured {
		return ""
	}
	var served int64
	for _, rr := range r.Revisions {
		served += rr.Requests
	}
	return fmt.Sprintf(" (rollout took %s: %d requests, %d failed, longest time without a ready pod %s)",
		time.Duration(r.DurationMillis)*time.Millisecond, served, r.Failed, time.Duration(r.LongestNoReadyMillis)*time.Millisecond)
}

// status writes the App status from the decision.
func (d *decision) status(sorted []*api.Revision, held string) {
	st, ro, app := &d.st, d.ro, d.app
	st.ObservedGeneration = app.Metadata.Generation
	st.LatestRevision = d.active.Spec.Number
	st.Replicas, st.ReadyReplicas, st.AvailableReplicas = 0, 0, 0
	st.Revisions = nil
	st.Traffic = d.safeTraffic()
	weight := map[int64]int32{}
	for _, t := range st.Traffic {
		weight[t.Revision] = t.Weight
	}
	for _, r := range sorted {
		st.Replicas += r.Status.Replicas
		st.ReadyReplicas += r.Status.ReadyReplicas
		st.AvailableReplicas += r.Status.AvailableReplicas
		if w := d.want[r.Metadata.Name]; w > 0 || r.Status.Replicas > 0 || weight[r.Spec.Number] > 0 {
			st.Revisions = append(st.Revisions, api.RevisionState{Revision: r.Spec.Number, Desired: w, Replicas: r.Status.Replicas,
				Ready: r.Status.ReadyReplicas, Available: r.Status.AvailableReplicas, Weight: weight[r.Spec.Number]})
		}
	}
	st.PreviewRevision = 0
	if d.inProgress() {
		st.PreviewRevision = d.preview
	}
	progressing := api.Condition{Type: "Progressing", Status: api.ConditionTrue, Message: fmt.Sprintf("revision %d", d.active.Spec.Number)}
	cleanOthers := true
	for _, r := range sorted {
		if r != d.active && (d.want[r.Metadata.Name] != 0 || r.Status.Replicas != 0 || !observed(r)) {
			cleanOthers = false
		}
	}
	switch {
	case held != "":
		st.Phase, st.Message = api.AppPaused, held
		progressing.Status, progressing.Reason = api.ConditionUnknown, "RolloutPaused"
	case ro.State == api.RolloutAborted:
		st.Phase, st.Message = api.AppDegraded, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionFalse, ro.Reason, ro.Message
	case ro.State == api.RolloutRolledBack:
		st.Phase, st.Message = api.AppHealthy, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionFalse, "RolledBack", ro.Message
	case ro.State == api.RolloutCompleted && d.want[d.active.Metadata.Name] == d.replicas && d.active.Spec.Replicas == d.replicas &&
		observed(d.active) && d.active.Status.AvailableReplicas >= d.replicas && (cleanOthers || ro.From != 0):
		// Old pods still draining after a rollout carry no traffic.
		st.Phase, st.Message = api.AppHealthy, ""
		progressing.Reason = "NewRevisionAvailable"
	case ro.State == api.RolloutPaused:
		st.Phase, st.Message = api.AppPaused, ro.Message
		progressing.Status, progressing.Reason, progressing.Message = api.ConditionUnknown, ro.Reason, ro.Message
	default:
		st.Phase = api.AppProgressing
		st.Message = fmt.Sprintf("revision %d: %d of %d pods ready", d.active.Spec.Number, d.active.Status.ReadyReplicas, d.replicas)
		if d.strategyType() == api.StrategyCanary && ro.From != 0 && ro.State == api.RolloutProgressing {
			st.Message += fmt.Sprintf(", step %d, canary weight %d%%", d.step(), ro.CanaryWeight)
		}
		progressing.Reason = "RevisionProgressing"
		if d.p.Create != nil {
			progressing.Reason = "NewRevisionCreated"
		}
	}
	st.Conditions = setConditionAt(st.Conditions, progressing, d.now)
}

// safeTraffic drops weight given to a revision without a ready pod,
// spreading it over the others in proportion; with nothing left, traffic
// follows ready pods (the active revision's when none is ready).
func (d *decision) safeTraffic() []api.TrafficTarget {
	var out []api.TrafficTarget
	var kept int32
	for _, t := range d.traffic {
		if r := d.byNum[t.Revision]; r != nil && r.Status.ReadyReplicas > 0 && t.Weight > 0 {
			out = append(out, t)
			kept += t.Weight
		}
	}
	if kept == 0 {
		// Ready pods of the revisions kept first; those on their way
		// out only when nothing else is ready.
		var keep []*api.Revision
		for _, r := range d.others() {
			if d.want[r.Metadata.Name] > 0 {
				keep = append(keep, r)
			}
		}
		if out := byReady(keep); out != nil {
			return out
		}
		return byReady(d.others())
	}
	if kept != 100 {
		left := int32(100)
		for i := range out {
			out[i].Weight = out[i].Weight * 100 / kept
			left -= out[i].Weight
		}
		out[0].Weight += left
	}
	return out
}

// setConditionAt is setCondition stamping a changed condition with now.
func setConditionAt(conds []api.Condition, c api.Condition, now time.Time) []api.Condition {
	if old := api.FindCondition(conds, c.Type); old == nil || old.Status != c.Status {
		c.LastTransitionTime = now
	}
	return setCondition(conds, c)
}

// cloneStatus deep-copies a status, so a decision never mutates the App
// it was given.
func cloneStatus(s api.AppStatus) api.AppStatus {
	b, _ := json.Marshal(s) // plain fields cannot fail to encode
	var out api.AppStatus
	_ = json.Unmarshal(b, &out)
	return out
}

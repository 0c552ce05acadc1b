package deploy

import (
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
	// Routes is the total of the App's routes (nil when unknown): the
	// report's failures include what no revision answered.
	Routes *Sample
	// Webhooks are the outcomes of DueWebhooks' calls, by key (true: 2xx).
	Webhooks map[string]bool
	// SecretHash identifies the content of the Secrets the template
	// references ("" when it references none): SecretHash.
	SecretHash string
	// Hooks are the runs of the rollout's hooks recorded in its status,
	// by kind; nil when there is no hook runner (hooks are then not run).
	Hooks map[string]HookRun
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
	heldPlan bool // want and traffic already go back (or stand still)
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
	if d.inProgress() && d.ro.From != 0 {
		d.ro.Strategy = d.strategyType() // what the view names the rollout by, after it ends too
	}
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
	if prev := d.ro; prev != nil && (prev.State == api.RolloutProgressing || prev.State == api.RolloutPaused) && prev.From != 0 {
		d.event(api.EventNormal, "RolloutSuperseded", fmt.Sprintf("the rollout of revision %d is superseded by revision %d; revision %d stays stable", prev.Revision, d.active.Spec.Number, prev.From))
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
	if r := d.obs.Routes; r != nil {
		out = append(out, r.counts(0)) // revision 0: the routes' total
	}
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
		// Hooks that passed stay passed; the others start a new attempt
		// (a new pod: an attempt's pod runs once).
		var hooks []api.HookState
		for _, h := range ro.Hooks {
			if !h.Done {
				h = api.HookState{Hook: h.Hook, Attempt: h.Attempt + 1, Phase: api.PodPending}
			}
			hooks = append(hooks, h)
		}
		*ro = api.RolloutStatus{Revision: ro.Revision, From: from, State: api.RolloutProgressing,
			StartedAt: d.now, StepStartedAt: d.now, LastProgressAt: d.now, Baseline: d.baseline(), Hooks: hooks}
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
	ro := d.ro
	from := d.byNum[ro.From]
	if d.pausedBySpec(from) {
		d.trackReadiness()
		d.finalReport()
		return
	}
	d.plan(from)
	if d.inProgress() {
		d.deadline()
	}
	if ro.State == api.RolloutAborted && !d.heldPlan {
		// Aborted in this decision: plan again, going back.
		d.traffic, d.preview = nil, 0
		d.plan(from)
	}
	d.trackReadiness()
	d.finalReport()
}

// ReasonPausedBySpec marks a rollout held where it stood by spec.paused
// (`slipway rollout pause`).
const ReasonPausedBySpec = "PausedBySpec"

// pausedBySpec holds a rollout in progress exactly where it stands while
// spec.paused is true, as `kubectl rollout pause` does: every revision
// keeps its size and the split its weights (the router still sends
// nothing to a revision without a ready pod), no step advances and the
// progress deadline does not run. Unpausing resumes from the same step,
// with the deadline and a timed pause step counted afresh. It reports whether the rollout is
// held.
func (d *decision) pausedBySpec(from *api.Revision) bool {
	ro := d.ro
	if ro.Reason == ReasonPausedBySpec && (!d.app.Spec.Paused || !d.inProgress()) {
		if d.inProgress() {
			ro.State, ro.Reason, ro.Message = api.RolloutProgressing, "Resumed", fmt.Sprintf("rollout of revision %d resumed", ro.Revision)
			ro.LastProgressAt, ro.StepStartedAt = d.now, d.now
			d.event(api.EventNormal, "Resumed", ro.Message)
		}
		return false
	}
	if !d.app.Spec.Paused || !d.inProgress() || from == nil || d.p.Create != nil {
		return false
	}
	if ro.Reason != ReasonPausedBySpec {
		ro.State, ro.Reason, ro.Message = api.RolloutPaused, ReasonPausedBySpec,
			fmt.Sprintf("rollout of revision %d paused where it stood: spec.paused is true (rollout resume continues it)", ro.Revision)
		d.event(api.EventNormal, "Paused", ro.Message)
	}
	d.heldPlan = true
	for _, r := range d.byNum {
		d.want[r.Metadata.Name] = r.Spec.Replicas
	}
	d.traffic = slices.Clone(d.st.Traffic)
	d.preview = d.st.PreviewRevision
	return true
}

// plan sets want, traffic and preview for the rollout's state.
func (d *decision) plan(from *api.Revision) {
	for _, r := range d.byNum {
		d.want[r.Metadata.Name] = 0
	}
	ro := d.ro
	switch {
	case (ro.State == api.RolloutAborted || ro.State == api.RolloutRolledBack) && from != nil:
		d.held(from)
	case ro.State == api.RolloutAborted:
		d.frozen() // nothing to go back to
	case ro.State == api.RolloutCompleted:
		d.steady()
	case !d.hook(HookPre):
		d.frozen()
	case from == nil:
		d.steady()
	case d.strategyType() == api.StrategyBlueGreen:
		d.blueGreen(from)
	case d.strategyType() == api.StrategyCanary:
		d.canary(from)
	default:
		d.steady()
	}
}

// frozen keeps every revision as it is: after an abort with nothing to go
// back to (an App's first rollout), and, the new revision without pods,
// before the pre hook passed.
func (d *decision) frozen() {
	d.heldPlan = true
	for _, r := range d.byNum {
		d.want[r.Metadata.Name] = r.Spec.Replicas
	}
	if d.inProgress() {
		d.want[d.active.Metadata.Name] = 0
	}
	d.traffic = trafficByReady(d.active, d.others(d.active))
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
	if d.inProgress() && d.strategyType() == api.StrategyRecreate && d.ro.From != 0 &&
		d.want[d.active.Metadata.Name] > 0 && d.active.Spec.Replicas == 0 && !d.hook(HookMid) {
		d.want[d.active.Metadata.Name] = 0 // the old pods are gone; the mid hook runs first
	}
	if d.inProgress() && d.settled(d.active, olds) && d.hook(HookPost) {
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
	d.heldPlan = true
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

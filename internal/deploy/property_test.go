package deploy

import (
	"fmt"
	"math/rand"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
)

// TestBlueGreenAndCanaryUnderRandomInterleavings drives BlueGreen and
// Canary rollouts through random interleavings of decisions, pod
// creation, readiness, crashes, time, promote/abort/rollback/retry
// requests, new template changes, and pre/post hooks that run, fail
// (under Abort, Retry or Ignore) or succeed. After every decision:
//   - traffic weights sum to 100 and none goes to a revision whose
//     reported ready pods are 0;
//   - the stable revision keeps full size while a rollout is in progress
//     (with dynamicStableScale, its share of the pods), and once the App
//     has a stable revision, a revision never loses pods in the decision
//     that gives it weight (unless no revision kept has a ready pod);
//
// and once the chaos stops (and a first rollout that aborted is retried),
// the App always ends serving one revision at full size with every other
// revision at 0 pods.
func TestBlueGreenAndCanaryUnderRandomInterleavings(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for run := range 500 {
		replicas := int32(1 + rng.Intn(6))
		bg := rng.Intn(2) == 0
		var steps []api.CanaryStep
		for range rng.Intn(5) {
			switch rng.Intn(3) {
			case 0:
				steps = append(steps, setWeight(int32(rng.Intn(101))))
			case 1:
				steps = append(steps, pause(api.Duration(fmt.Sprintf("%ds", 1+rng.Intn(40)))))
			default:
				steps = append(steps, pause(""))
			}
		}
		dynamic := rng.Intn(3) == 0
		var hooks *api.Hooks
		if rng.Intn(2) == 0 {
			policies := []string{api.HookAbort, api.HookRetry, api.HookIgnore}
			hooks = &api.Hooks{Pre: &api.Hook{Command: []string{"x"}, FailurePolicy: policies[rng.Intn(3)]},
				Post: &api.Hook{Command: []string{"y"}, FailurePolicy: policies[rng.Intn(3)]}}
		}
		autoPromote := rng.Intn(2) == 0
		delay := int32(rng.Intn(2) * 30)
		mk := func(version int) *api.App {
			a := app(replicas, fmt.Sprint("v", version))
			a.Metadata.Generation = int64(version)
			if bg {
				blueGreen(a, api.BlueGreenStrategy{AutoPromote: autoPromote, AutoPromoteAfterSeconds: 5, ScaleDownDelaySeconds: &delay})
			} else {
				canary(a, api.CanaryStrategy{Steps: steps, DynamicStableScale: dynamic})
			}
			a.Spec.ProgressDeadlineSeconds = ptr(int32(300))
			a.Spec.Strategy.Hooks = hooks
			return a
		}
		desc := fmt.Sprintf("run %d: replicas %d blueGreen %v (auto %v delay %d) canary steps %d dynamic %v", run, replicas, bg, autoPromote, delay, len(steps), dynamic)
		s := newSim(t, mk(1))
		if hooks != nil {
			s.runs = map[string]HookRun{}
		}
		version, changes := 1, 1+rng.Intn(3)
		check := func(step int, before map[int64]int32, hadStable bool) {
			var sum int32
			for _, tt := range s.app.Status.Traffic {
				sum += tt.Weight
				r := s.rev(tt.Revision)
				if tt.Weight > 0 && (r == nil || r.Status.ReadyReplicas == 0) {
					t.Fatalf("%s, step %d: weight %d to revision %d without a ready pod; status %+v", desc, step, tt.Weight, tt.Revision, s.app.Status)
				}
				if !hadStable || tt.Weight == 0 || r == nil {
					continue
				}
				// With dynamicStableScale the stable revision shrinks to its
				// share of the pods, never below it.
				share := max(1, (replicas*tt.Weight+99)/100)
				if dynamic && !bg && r.Spec.Replicas >= share {
					continue
				}
				if r.Spec.Replicas < before[tt.Revision] && r.Spec.Replicas < replicas && s.keptReady() {
					t.Fatalf("%s, step %d: revision %d given weight %d while scaled down from %d to %d; traffic %v rollout %+v specs %v", desc, step, tt.Revision, tt.Weight, before[tt.Revision], r.Spec.Replicas, s.app.Status.Traffic, *s.app.Status.Rollout, s.specs())
				}
			}
			// The stable revision keeps full size while a rollout is in
			// progress (with dynamicStableScale, its share of the pods).
			if ro := s.app.Status.Rollout; ro != nil && ro.From != 0 && (ro.State == api.RolloutProgressing || ro.State == api.RolloutPaused) {
				want := replicas
				if dynamic && !bg {
					want = max(1, (replicas*(100-ro.CanaryWeight)+99)/100)
					if ro.CanaryWeight == 100 {
						want = 0
					}
				}
				if r := s.rev(ro.From); r != nil && r.Spec.Replicas < want {
					t.Fatalf("%s, step %d: stable revision %d sized %d during the rollout, want at least %d; rollout %+v", desc, step, ro.From, r.Spec.Replicas, want, *ro)
				}
			}
			if sum != 100 && len(s.app.Status.Traffic) > 0 {
				t.Fatalf("%s, step %d: weights sum to %d: %+v", desc, step, sum, s.app.Status.Traffic)
			}
		}
		decide := func(step int) {
			before, hadStable := s.specs(), s.app.Status.StableRevision != 0
			s.decide()
			check(step, before, hadStable)
		}
		for step := range 400 {
			switch x := rng.Intn(100); {
			case x < 3 && changes > 0:
				changes--
				version++
				s.app = withStatus(mk(version), s.app)
			case x < 30:
				decide(step)
			case x < 55:
				if len(s.revs) > 0 {
					r := s.revs[rng.Intn(len(s.revs))]
					s.replicateOne(r)
				}
			case x < 75:
				s.randomPod(rng, func(p *livePod) {
					if !p.ready {
						p.ready, p.since = true, s.now
					}
				})
			case x < 78:
				s.randomPod(rng, func(p *livePod) { p.ready = false; p.restarts++ })
			case x < 84:
				s.advance(time.Duration(rng.Intn(20)) * time.Second)
			case x < 88 && hooks != nil:
				s.hookOutcome(rng, false)
			default:
				verbs := []string{api.RequestPromote, api.RequestPromoteFull, api.RequestAbort, api.RequestRollback, api.RequestRetry}
				s.request(verbs[rng.Intn(len(verbs))])
			}
		}
		// The chaos stops: pods start and become ready, time passes, a
		// paused rollout is promoted and an aborted one left as it is.
		done := false
		for step := 0; step < 300 && !done; step++ {
			if st := s.app.Status; st.Phase == api.AppPaused && step%3 == 0 {
				s.request(api.RequestPromote)
			}
			// A first rollout that aborted has nothing to go back to: the
			// user retries it.
			if st := s.app.Status; st.Phase == api.AppDegraded && st.Rollout.From == 0 && step%3 == 0 {
				s.request(api.RequestRetry)
			}
			s.hookOutcome(rng, true)
			decide(1000 + step)
			s.replicate()
			s.readyAll()
			s.advance(7 * time.Second)
			done = s.quiet(replicas)
		}
		if !done {
			t.Fatalf("%s: no stable state; specs %v status %+v rollout %+v", desc, s.specs(), s.app.Status, s.app.Status.Rollout)
		}
	}
}

// withStatus is a user's apply: a new spec with the status controllers wrote.
func withStatus(a, old *api.App) *api.App {
	a.Status = old.Status
	a.Metadata.Annotations = old.Metadata.Annotations
	return a
}

func (s *sim) replicateOne(r *api.Revision) {
	keep := s.revs
	s.revs = []*api.Revision{r}
	s.replicate()
	s.revs = keep
}

func (s *sim) randomPod(rng *rand.Rand, f func(*livePod)) {
	if len(s.revs) == 0 {
		return
	}
	r := s.revs[rng.Intn(len(s.revs))]
	if ps := s.pods[r.Spec.Number]; len(ps) > 0 {
		f(ps[rng.Intn(len(ps))])
	}
}

// quiet: Healthy (or Degraded after an abort, serving the stable
// revision), one revision at full size with all traffic, all others gone.
func (s *sim) quiet(replicas int32) bool {
	st := s.app.Status
	if st.Phase != api.AppHealthy && st.Phase != api.AppDegraded {
		return false
	}
	if len(st.Traffic) != 1 || st.Traffic[0].Weight != 100 {
		return false
	}
	serving := st.Traffic[0].Revision
	if serving != st.StableRevision {
		return false
	}
	for _, r := range s.revs {
		n := int32(len(s.pods[r.Spec.Number]))
		want := int32(0)
		if r.Spec.Number == serving {
			want = replicas
		}
		if r.Spec.Replicas != want || n != want || r.Status.ReadyReplicas != want {
			return false
		}
	}
	return true
}

// keptReady reports whether a revision the strategy keeps (spec > 0) has a
// ready pod.
func (s *sim) keptReady() bool {
	for _, r := range s.revs {
		if r.Spec.Replicas > 0 && r.Status.ReadyReplicas > 0 {
			return true
		}
	}
	return false
}

// hookOutcome reports a random outcome (or, when settle, success) for each
// hook run the rollout's status asks for, as the hook runner would.
func (s *sim) hookOutcome(rng *rand.Rand, settle bool) {
	for _, h := range HooksToRun(s.app.Status) {
		spec := hookSpec(s.app, h.Hook)
		run := HookRun{Attempt: h.Attempt, Phase: api.PodSucceeded, Action: HookProceed, Pod: fmt.Sprintf("%s-%d", h.Hook, h.Attempt)}
		switch x := rng.Intn(3); {
		case settle:
		case x == 0:
			run.Phase, run.Action = api.PodRunning, HookWait
		case x == 1:
			run.Phase, run.RetryAt = api.PodFailed, s.now.Add(5*time.Second)
			run.Action = map[string]string{api.HookAbort: HookAbort, api.HookRetry: HookRetry, api.HookIgnore: HookProceed}[spec.FailurePolicy]
		}
		s.runs[h.Hook] = run
	}
}

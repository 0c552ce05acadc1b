package deploy

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
)

// sim is a world for Decide: revisions, their pods (which become ready or
// crash when a test says so), a clock and router counters. Unlike the
// rolling tests' world, it runs the full Decide with pods, time and
// metrics.
type sim struct {
	t       *testing.T
	app     *api.App
	revs    []*api.Revision
	pods    map[int64][]*livePod
	now     time.Time
	metrics map[int64]Sample
	hooks   map[string]bool
	runs    map[string]HookRun // nil: no hook runner
	routes  *Sample            // the routes' totals; nil: unknown
	secret  string
	seq     int
	last    Plan
	nonce   int
	events  []Event
}

type livePod struct {
	name     string
	ready    bool
	since    time.Time
	restarts int32
}

func newSim(t *testing.T, a *api.App) *sim {
	return &sim{t: t, app: a, pods: map[int64][]*livePod{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (s *sim) rev(n int64) *api.Revision {
	for _, r := range s.revs {
		if r.Spec.Number == n {
			return r
		}
	}
	return nil
}

func (s *sim) observed() Observed {
	var pods []*api.Pod
	for _, n := range slices.Sorted(mapsKeys(s.pods)) {
		for _, p := range s.pods[n] {
			pod := &api.Pod{Metadata: api.ObjectMeta{Name: p.name}, Spec: api.PodSpec{App: "hello", Revision: n}}
			st := api.ConditionFalse
			if p.ready {
				st = api.ConditionTrue
			}
			pod.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: st, LastTransitionTime: p.since}}
			pod.Status.ContainerStatuses = []api.ContainerStatus{{Name: "web", Ready: p.ready, RestartCount: p.restarts}}
			if p.restarts > 0 { // what the node reports of a run that ended
				pod.Status.ContainerStatuses[0].LastState.Terminated = &api.ContainerStateTerminated{ExitCode: 1, Reason: "Error", LogTail: "starting\ncannot open the database\n"}
			}
			pods = append(pods, pod)
		}
	}
	return Observed{Revisions: s.revs, Pods: pods, Metrics: s.metrics, Webhooks: s.hooks, SecretHash: s.secret, Hooks: s.runs, Routes: s.routes}
}

// decide runs one reconcile of the deploy controller.
func (s *sim) decide() Plan {
	p := Decide(s.app, s.observed(), s.now)
	if p.Create != nil {
		r := *p.Create
		r.Metadata.Generation = 1
		s.revs = append(s.revs, &r)
	}
	for name, n := range p.Scale {
		for _, r := range s.revs {
			if r.Metadata.Name == name && r.Spec.Replicas != n {
				r.Spec.Replicas = n
				r.Metadata.Generation++
			}
		}
	}
	for _, name := range p.Delete {
		s.revs = slices.DeleteFunc(s.revs, func(r *api.Revision) bool { return r.Metadata.Name == name })
	}
	s.app.Status = p.Status
	s.events = append(s.events, p.Events...)
	s.last = p
	return p
}

// replicate makes each revision's pods match its spec (not-ready pods go
// first, then the newest) and reports.
func (s *sim) replicate() {
	for _, r := range s.revs {
		n := r.Spec.Number
		pods := s.pods[n]
		for len(pods) < int(r.Spec.Replicas) {
			s.seq++
			pods = append(pods, &livePod{name: fmt.Sprintf("%s-%d", r.Metadata.Name, s.seq), since: s.now})
		}
		for len(pods) > int(r.Spec.Replicas) {
			victim := len(pods) - 1
			for i := len(pods) - 1; i >= 0; i-- {
				if !pods[i].ready {
					victim = i
					break
				}
			}
			pods = slices.Delete(pods, victim, victim+1)
		}
		s.pods[n] = pods
		s.report(r)
	}
}

func (s *sim) report(r *api.Revision) {
	r.Status = api.RevisionStatus{ObservedGeneration: r.Metadata.Generation, Replicas: int32(len(s.pods[r.Spec.Number]))}
	for _, p := range s.pods[r.Spec.Number] {
		if p.ready {
			r.Status.ReadyReplicas++
		}
	}
	r.Status.AvailableReplicas = r.Status.ReadyReplicas
}

func (s *sim) readyAll() {
	for _, ps := range s.pods {
		for _, p := range ps {
			if !p.ready {
				p.ready, p.since = true, s.now
			}
		}
	}
	for _, r := range s.revs {
		s.report(r)
	}
}

// settle runs deploy, replicate and ready until nothing changes.
func (s *sim) settle() {
	for range 50 {
		p := s.decide()
		s.replicate()
		s.readyAll()
		if p.Create == nil && len(p.Scale) == 0 && len(p.Delete) == 0 {
			s.decide()
			return
		}
	}
	s.t.Fatalf("no settled state; status %+v", s.app.Status)
}

func (s *sim) change(version string) {
	a := *s.app
	a.Spec.Template.Containers = slices.Clone(a.Spec.Template.Containers)
	a.Spec.Template.Containers[0].Env = []api.EnvVar{{Name: "VERSION", Value: version}}
	a.Metadata.Generation++
	s.app = &a
}

func (s *sim) request(verb string) {
	s.nonce++
	a := *s.app
	a.Metadata.Annotations = map[string]string{api.RolloutRequestAnnotation: fmt.Sprintf("%s %d", verb, s.nonce)}
	s.app = &a
}

func (s *sim) advance(d time.Duration) { s.now = s.now.Add(d) }

// serve adds n requests to rev's counters, failed of them answered 500,
// each taking lat.
func (s *sim) serve(rev int64, n, failed int64, lat time.Duration) {
	if s.metrics == nil {
		s.metrics = map[int64]Sample{}
	}
	m := s.metrics[rev]
	if m.Bounds == nil {
		m.Bounds = []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second}
		m.Latency = make([]int64, len(m.Bounds)+1)
	} else {
		m.Latency = slices.Clone(m.Latency)
	}
	m.Requests[2] += n - failed
	m.Requests[5] += failed
	i, _ := slices.BinarySearch(m.Bounds, lat)
	m.Latency[i] += n
	s.metrics[rev] = m
	if s.routes != nil {
		s.routes.Requests[2] += n - failed
		s.routes.Requests[5] += failed
	}
}

// noPod counts n requests the router answered 503 itself: no pod ready.
func (s *sim) noPod(n int64) { s.routes.Requests[5] += n }

func (s *sim) traffic() map[int64]int32 {
	out := map[int64]int32{}
	for _, t := range s.app.Status.Traffic {
		out[t.Revision] = t.Weight
	}
	return out
}

func (s *sim) specs() map[int64]int32 {
	out := map[int64]int32{}
	for _, r := range s.revs {
		out[r.Spec.Number] = r.Spec.Replicas
	}
	return out
}

func (s *sim) hasEvent(reason string) bool {
	return slices.ContainsFunc(s.events, func(e Event) bool { return e.Reason == reason })
}

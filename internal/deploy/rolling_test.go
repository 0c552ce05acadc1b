package deploy

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/api"
)

// world simulates what PlanApp's decisions act on: the store's revisions
// (generation bumped on every spec change, as the registry does) and the
// replication controller, which acts on one revision at a time and only
// then reports, while pods become ready whenever they like.
type world struct {
	app  *api.App
	revs []*api.Revision
	pods map[string][]simPod // by revision name, oldest first
	seq  int
}

type simPod struct {
	ready bool
	seq   int
}

func newWorld(a *api.App) *world { return &world{app: a, pods: map[string][]simPod{}} }

func (w *world) rev(name string) *api.Revision {
	for _, r := range w.revs {
		if r.Metadata.Name == name {
			return r
		}
	}
	return nil
}

// change is a user's apply: a new spec, the status controllers wrote.
func (w *world) change(a *api.App) {
	a.Status = w.app.Status
	w.app = a
}

// deploy runs one reconcile of the deploy controller.
func (w *world) deploy() Plan {
	p := PlanApp(w.app, w.revs)
	if p.Create != nil {
		r := *p.Create
		r.Metadata.Generation = 1
		w.revs = append(w.revs, &r)
	}
	for name, n := range p.Scale {
		if r := w.rev(name); r != nil && r.Spec.Replicas != n {
			r.Spec.Replicas = n
			r.Metadata.Generation++
		}
	}
	for _, name := range p.Delete {
		w.revs = slices.DeleteFunc(w.revs, func(r *api.Revision) bool { return r.Metadata.Name == name })
		delete(w.pods, name)
	}
	w.app.Status = p.Status
	return p
}

// replicate runs one reconcile of the replication controller for r:
// pods that are not ready go first on scale-down, then the newest.
func (w *world) replicate(r *api.Revision) { w.reconcileRevision(r, true) }

// reconcileRevision is replicate whose status write may be lost, as when
// the spec changed while the replication controller created or deleted pods
// (its write then conflicts).
func (w *world) reconcileRevision(r *api.Revision, report bool) {
	pods := w.pods[r.Metadata.Name]
	for len(pods) < int(r.Spec.Replicas) {
		w.seq++
		pods = append(pods, simPod{seq: w.seq})
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
	w.pods[r.Metadata.Name] = pods
	if !report {
		return
	}
	r.Status = api.RevisionStatus{ObservedGeneration: r.Metadata.Generation, Replicas: int32(len(pods))}
	for _, p := range pods {
		if p.ready {
			r.Status.ReadyReplicas++
		}
	}
	r.Status.AvailableReplicas = r.Status.ReadyReplicas
}

func (w *world) replicateAll() {
	for _, r := range w.revs {
		w.replicate(r)
	}
}

// readyAll makes every pod of the revision named ready.
func (w *world) readyAll(name string) {
	for i := range w.pods[name] {
		w.pods[name][i].ready = true
	}
}

// readyOne makes one not-ready pod of the revision named ready.
func (w *world) readyOne(name string) {
	for i := range w.pods[name] {
		if !w.pods[name][i].ready {
			w.pods[name][i].ready = true
			return
		}
	}
}

func (w *world) counts() (pods, ready, revsWithPods int) {
	for _, ps := range w.pods {
		pods += len(ps)
		if len(ps) > 0 {
			revsWithPods++
		}
		for _, p := range ps {
			if p.ready {
				ready++
			}
		}
	}
	return pods, ready, revsWithPods
}

// specs is the spec.replicas of every revision, oldest first.
func (w *world) specs() []int32 {
	var out []int32
	for _, r := range w.revs {
		out = append(out, r.Spec.Replicas)
	}
	return out
}

// settle brings revision 1 of a up to full size, all ready, and Healthy.
func settle(t *testing.T, a *api.App) *world {
	t.Helper()
	w := newWorld(a)
	w.deploy()
	w.replicateAll()
	w.readyAll(RevisionName("hello", 1))
	w.replicateAll()
	if p := w.deploy(); p.Status.Phase != api.AppHealthy {
		t.Fatalf("revision 1 did not settle: %+v", p.Status)
	}
	return w
}

func rolling(a *api.App, surge, unavailable api.IntOrString) *api.App {
	a.Spec.Strategy = api.Strategy{Type: api.StrategyRolling, Rolling: &api.RollingStrategy{MaxSurge: &surge, MaxUnavailable: &unavailable}}
	return a
}

// TestRollingSteps walks rollouts one decision at a time: after each
// decision the replication controller acts and reports, then `ready` new
// pods become ready before the next decision.
func TestRollingSteps(t *testing.T) {
	type step struct {
		ready int     // pods of the newest revision that become ready first
		specs []int32 // spec.replicas of revisions 1 and 2 after the decision
	}
	for _, tc := range []struct {
		name               string
		replicas           int32
		surge, unavailable api.IntOrString
		steps              []step
	}{{
		name: "3 replicas surge 1 unavailable 0", replicas: 3, surge: api.FromInt(1), unavailable: api.FromInt(0),
		steps: []step{
			{0, []int32{3, 1}}, // surge one new pod
			{0, []int32{3, 1}}, // it is not ready: nothing moves
			{1, []int32{2, 1}}, // ready: one old pod goes
			{0, []int32{2, 2}}, // its going is reported: the next surge
			{1, []int32{1, 2}},
			{0, []int32{1, 3}},
			{1, []int32{0, 3}},
			{0, []int32{0, 3}},
		},
	}, {
		name: "4 replicas 25%/25%", replicas: 4, surge: api.FromString("25%"), unavailable: api.FromString("25%"),
		steps: []step{
			{0, []int32{3, 1}}, // 1 surge and 1 unavailable at once
			{0, []int32{3, 2}}, // room for one more new pod once the old one is gone
			{2, []int32{1, 2}}, // two ready: old may drop to 4-1-2 = 1
			{0, []int32{1, 4}}, // 3 pods now: surge to 5
			{0, []int32{1, 4}},
			{1, []int32{0, 4}},
			{0, []int32{0, 4}},
		},
	}, {
		name: "10 replicas 25%/25%", replicas: 10, surge: api.FromString("25%"), unavailable: api.FromString("25%"),
		steps: []step{
			{0, []int32{8, 3}}, // surge 3 (2.5 up), unavailable 2 (2.5 down)
			{0, []int32{8, 5}}, // 13 pods at most
			{5, []int32{3, 5}}, // 5 new ready: 8 must stay available
			{0, []int32{3, 10}},
			{2, []int32{1, 10}},
			{3, []int32{0, 10}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			w := settle(t, rolling(app(tc.replicas, "v1"), tc.surge, tc.unavailable))
			w.change(rolling(app(tc.replicas, "v2"), tc.surge, tc.unavailable))
			for i, s := range tc.steps {
				for range s.ready {
					w.readyOne(RevisionName("hello", 2))
				}
				w.replicateAll()
				w.deploy()
				if diff := cmp.Diff(s.specs, w.specs()); diff != "" {
					t.Fatalf("step %d: specs (-want +got):\n%s", i, diff)
				}
				w.replicateAll()
			}
			w.readyAll(RevisionName("hello", 2))
			w.replicateAll()
			p := w.deploy()
			if p.Status.Phase != api.AppHealthy || p.Status.StableRevision != 2 || p.Status.ReadyReplicas != tc.replicas {
				t.Errorf("final status %+v", p.Status)
			}
		})
	}
}

func TestRollingTrafficFollowsReadyPods(t *testing.T) {
	w := settle(t, rolling(app(3, "v1"), api.FromInt(1), api.FromInt(0)))
	w.change(rolling(app(3, "v2"), api.FromInt(1), api.FromInt(0)))
	w.deploy()
	w.replicateAll()
	w.readyAll("hello-2")
	w.replicateAll()
	p := w.deploy() // 3 old + 1 new ready; scales old to 2
	want := []api.TrafficTarget{{Revision: 1, Weight: 75}, {Revision: 2, Weight: 25}}
	if diff := cmp.Diff(want, p.Status.Traffic); diff != "" {
		t.Errorf("traffic (-want +got):\n%s", diff)
	}
	if c := api.FindCondition(p.Status.Conditions, "Progressing"); p.Status.Phase != api.AppProgressing || p.Status.StableRevision != 1 ||
		p.Status.LatestRevision != 2 || p.Status.ReadyReplicas != 4 || c == nil || c.Reason != "RevisionProgressing" {
		t.Errorf("status %+v", p.Status)
	}
	w.replicateAll() // 2 old + 1 new
	p = w.deploy()
	want = []api.TrafficTarget{{Revision: 1, Weight: 67}, {Revision: 2, Weight: 33}}
	if diff := cmp.Diff(want, p.Status.Traffic); diff != "" {
		t.Errorf("traffic (-want +got):\n%s", diff)
	}
}

// TestRollingWaitsForUnreportedRevisions holds the surge while a revision's
// status predates its spec: pods it does not show may exist.
func TestRollingWaitsForUnreportedRevisions(t *testing.T) {
	w := settle(t, rolling(app(3, "v1"), api.FromInt(1), api.FromInt(0)))
	w.change(rolling(app(3, "v2"), api.FromInt(1), api.FromInt(0)))
	w.deploy()
	w.replicateAll()
	w.readyAll("hello-2")
	w.replicate(w.rev("hello-2"))
	w.deploy() // old 3 -> 2, not yet reported
	p := w.deploy()
	if len(p.Scale) != 0 {
		t.Fatalf("scaled %v before revision 1 reported its scale-down", p.Scale)
	}
}

func TestChangeDuringRolloutSupersedesOldestFirst(t *testing.T) {
	w := settle(t, rolling(app(3, "v1"), api.FromInt(1), api.FromInt(0)))
	w.change(rolling(app(3, "v2"), api.FromInt(1), api.FromInt(0)))
	w.deploy()
	w.replicateAll()
	w.readyAll("hello-2")
	w.replicateAll()
	w.deploy()
	w.replicateAll() // revisions 1 and 2 at 2+1, all ready
	w.change(rolling(app(3, "v3"), api.FromInt(1), api.FromInt(0)))
	p := w.deploy()
	if p.Create == nil || p.Create.Spec.Number != 3 || p.Create.Spec.Replicas != 1 {
		t.Fatalf("Create = %+v", p.Create)
	}
	w.replicateAll()
	w.readyAll("hello-3")
	w.replicateAll()
	w.deploy() // one new ready: the oldest revision gives up a pod
	if diff := cmp.Diff([]int32{1, 1, 1}, w.specs()); diff != "" {
		t.Errorf("specs (-want +got):\n%s", diff)
	}
}

func TestRecreateWaitsForOldPodsToGo(t *testing.T) {
	recreate := func(a *api.App) *api.App {
		a.Spec.Strategy = api.Strategy{Type: api.StrategyRecreate, Recreate: &api.RecreateStrategy{}}
		return a
	}
	w := settle(t, recreate(app(3, "v1")))
	w.change(recreate(app(3, "v2")))
	p := w.deploy()
	if p.Create == nil || p.Create.Spec.Replicas != 0 {
		t.Fatalf("Create = %+v, want revision 2 at 0", p.Create)
	}
	if diff := cmp.Diff([]int32{0, 0}, w.specs()); diff != "" {
		t.Fatalf("specs (-want +got):\n%s", diff)
	}
	if p = w.deploy(); len(p.Scale) != 0 {
		t.Fatalf("scaled %v while revision 1 still reports pods", p.Scale)
	}
	w.replicateAll()
	w.deploy()
	if diff := cmp.Diff([]int32{0, 3}, w.specs()); diff != "" {
		t.Fatalf("specs once old pods are gone (-want +got):\n%s", diff)
	}
	w.replicateAll()
	w.readyAll("hello-2")
	w.replicateAll()
	if p = w.deploy(); p.Status.Phase != api.AppHealthy || p.Status.StableRevision != 2 {
		t.Errorf("final status %+v", p.Status)
	}
}

func TestRollingBounds(t *testing.T) {
	for _, tc := range []struct {
		surge, unavailable api.IntOrString
		replicas           int32
		want               [2]int32
	}{
		{api.FromString("25%"), api.FromInt(0), 10, [2]int32{3, 0}},
		{api.FromString("25%"), api.FromString("25%"), 10, [2]int32{3, 2}},
		{api.FromString("25%"), api.FromString("25%"), 1, [2]int32{1, 0}},
		{api.FromInt(0), api.FromString("25%"), 1, [2]int32{0, 1}}, // both 0: one may go
		{api.FromInt(5), api.FromInt(5), 3, [2]int32{5, 3}},
	} {
		s, u := rollingBounds(&api.RollingStrategy{MaxSurge: &tc.surge, MaxUnavailable: &tc.unavailable}, tc.replicas)
		if got := [2]int32{s, u}; got != tc.want {
			t.Errorf("rollingBounds(%v, %v, %d) = %v, want %v", tc.surge, tc.unavailable, tc.replicas, got, tc.want)
		}
	}
	if s, u := rollingBounds(nil, 4); s != 1 || u != 0 {
		t.Errorf("defaults for 4 replicas: surge %d unavailable %d, want 1 and 0", s, u)
	}
}

// TestStrategiesHoldTheirBoundsUnderRandomInterleavings runs 2,000 random
// rollouts: revisions, replication and pod readiness interleave at random,
// and template changes arrive at random times, also mid-rollout. At every
// step pods never exceed replicas+maxSurge, ready pods never drop below
// replicas-maxUnavailable once the App was first Healthy (Rolling), and
// Recreate never runs two revisions' pods at once. Every run ends Healthy
// with exactly `replicas` ready pods, all of the latest revision.
func TestStrategiesHoldTheirBoundsUnderRandomInterleavings(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	values := []api.IntOrString{api.FromInt(0), api.FromInt(1), api.FromInt(2), api.FromInt(3),
		api.FromString("0%"), api.FromString("10%"), api.FromString("25%"), api.FromString("50%"), api.FromString("100%")}
	for run := range 800 {
		replicas := int32(1 + rng.Intn(10))
		recreate := rng.Intn(4) == 0
		surge, unavailable := values[rng.Intn(len(values))], values[rng.Intn(len(values))]
		for surge.IntVal == 0 && unavailable.IntVal == 0 && surge.StrVal[:min(len(surge.StrVal), 1)] <= "0" && unavailable.StrVal[:min(len(unavailable.StrVal), 1)] <= "0" {
			unavailable = values[rng.Intn(len(values))] // validation refuses both 0
		}
		maxSurge := resolve(surge, replicas, true)
		maxUnavailable := resolve(unavailable, replicas, false)
		if maxSurge == 0 && maxUnavailable == 0 {
			maxUnavailable = 1
		}
		mk := func(version int) *api.App {
			a := app(replicas, fmt.Sprint("v", version))
			if recreate {
				a.Spec.Strategy = api.Strategy{Type: api.StrategyRecreate, Recreate: &api.RecreateStrategy{}}
			} else {
				rolling(a, surge, unavailable)
			}
			return a
		}
		desc := fmt.Sprintf("run %d: replicas %d recreate %v surge %v unavailable %v", run, replicas, recreate, surge, unavailable)
		version, changes := 1, 1+rng.Intn(3)
		w := newWorld(mk(version))
		done := false
		for step := 0; step < 20000 && !done; step++ {
			switch x := rng.Intn(100); {
			case x < 2 && changes > 0:
				changes--
				version++
				w.change(mk(version))
			case x < 35:
				w.deploy()
			case x < 70:
				if len(w.revs) > 0 {
					w.reconcileRevision(w.revs[rng.Intn(len(w.revs))], rng.Intn(5) != 0)
				}
			default:
				if len(w.revs) > 0 {
					r := w.revs[rng.Intn(len(w.revs))]
					if ps := w.pods[r.Metadata.Name]; len(ps) > 0 {
						ps[rng.Intn(len(ps))].ready = true
					}
				}
			}
			pods, ready, withPods := w.counts()
			if !recreate && int32(pods) > replicas+maxSurge {
				t.Fatalf("%s, step %d: %d pods, more than %d+%d; specs %v", desc, step, pods, replicas, maxSurge, w.specs())
			}
			if recreate && withPods > 1 {
				t.Fatalf("%s, step %d: %d revisions have pods at once under Recreate; specs %v", desc, step, withPods, w.specs())
			}
			// The bound holds from the first Healthy report on: before it
			// there is no capacity to protect.
			if !recreate && w.app.Status.StableRevision != 0 && int32(ready) < replicas-maxUnavailable {
				t.Fatalf("%s, step %d: %d ready pods, fewer than %d-%d; specs %v", desc, step, ready, replicas, maxUnavailable, w.specs())
			}
			done = changes == 0 && w.quiet()
		}
		if !done {
			t.Fatalf("%s: no stable state after 20000 steps; specs %v, status %+v", desc, w.specs(), w.app.Status)
		}
		latest := w.revs[len(w.revs)-1]
		if latest.Spec.TemplateHash != TemplateHash(mk(version).Spec.Template) {
			t.Fatalf("%s: latest revision %d is not of v%d", desc, latest.Spec.Number, version)
		}
		for _, r := range w.revs {
			want := 0
			if r == latest {
				want = int(replicas)
			}
			n := 0
			for _, p := range w.pods[r.Metadata.Name] {
				if !p.ready {
					t.Fatalf("%s: revision %d has a pod not ready at the end", desc, r.Spec.Number)
				}
				n++
			}
			if n != want {
				t.Fatalf("%s: revision %d ends with %d pods, want %d", desc, r.Spec.Number, n, want)
			}
		}
		if st := w.app.Status; st.Phase != api.AppHealthy || st.StableRevision != latest.Spec.Number || st.ReadyReplicas != replicas ||
			!cmp.Equal(st.Traffic, []api.TrafficTarget{{Revision: latest.Spec.Number, Weight: 100}}) {
			t.Fatalf("%s: final status %+v", desc, st)
		}
	}
}

// quiet reports whether nothing would change any more: every revision has
// reported its spec with all pods ready, and a decision changes nothing.
func (w *world) quiet() bool {
	for _, r := range w.revs {
		ps := w.pods[r.Metadata.Name]
		if !observed(r) || len(ps) != int(r.Spec.Replicas) || r.Status.ReadyReplicas != r.Spec.Replicas {
			return false
		}
	}
	p := w.deploy()
	return p.Create == nil && len(p.Scale) == 0 && len(p.Delete) == 0
}

// resolve is the rule the API documents, written out apart from the code
// under test.
func resolve(v api.IntOrString, total int32, up bool) int32 {
	if !v.IsString {
		return v.IntVal
	}
	var pct int32
	fmt.Sscanf(v.StrVal, "%d%%", &pct)
	if up {
		return (pct*total + 99) / 100
	}
	return pct * total / 100
}

func readyPod(rev int64, since time.Time) *api.Pod {
	p := &api.Pod{Spec: api.PodSpec{App: "hello", Revision: rev}}
	p.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: since}}
	return p
}

func TestAvailablePodsCountsMinReadySeconds(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	notReady := &api.Pod{Spec: api.PodSpec{App: "hello", Revision: 2}}
	notReady.Status.Conditions = []api.Condition{{Type: api.PodReady, Status: api.ConditionFalse, LastTransitionTime: now.Add(-time.Hour)}}
	pods := []*api.Pod{
		readyPod(1, now.Add(-time.Hour)),
		readyPod(1, time.Time{}),             // no time: not new
		readyPod(2, now.Add(-5*time.Second)), // ready exactly minReady ago
		readyPod(2, now.Add(-2*time.Second)), // 3s to go
		readyPod(2, now.Add(-500*time.Millisecond)),
		notReady,
	}
	avail, wait := AvailablePods(pods, 5*time.Second, now)
	if diff := cmp.Diff(map[int64]int32{1: 2, 2: 1}, avail); diff != "" {
		t.Errorf("available (-want +got):\n%s", diff)
	}
	if wait != 3*time.Second {
		t.Errorf("wait %v, want 3s", wait)
	}
}

// TestRollingWaitsForMinReadySeconds: a new pod ready but not yet
// available lets no old pod go, and the App is not Healthy before its pods
// are available.
func TestRollingWaitsForMinReadySeconds(t *testing.T) {
	w := settle(t, rolling(app(3, "v1"), api.FromInt(1), api.FromInt(0)))
	w.change(rolling(app(3, "v2"), api.FromInt(1), api.FromInt(0)))
	w.deploy()
	w.replicateAll()
	w.readyAll("hello-2")
	w.replicateAll()
	p := PlanApp(w.app, withAvailable(w.revs, map[int64]int32{1: 3, 2: 0}))
	if len(p.Scale) != 0 {
		t.Errorf("scaled %v while the new pod is not available", p.Scale)
	}
	p = PlanApp(w.app, withAvailable(w.revs, map[int64]int32{1: 3, 2: 1}))
	if diff := cmp.Diff(map[string]int32{"hello-1": 2}, p.Scale); diff != "" {
		t.Errorf("Scale once available (-want +got):\n%s", diff)
	}

	v1 := app(2, "v1")
	r1 := revisionOf(v1, 1, 2, 2)
	if p := PlanApp(v1, withAvailable([]*api.Revision{r1}, map[int64]int32{1: 1})); p.Status.Phase != api.AppProgressing || p.Status.AvailableReplicas != 1 {
		t.Errorf("status with 1 of 2 pods available: %+v", p.Status)
	}
}

// TestRollingKeepsUnreportedReadyPods: reports lag readiness. Revision 1
// reports 4 of 7 pods ready (more may be ready by now) and revision 2 none
// of 4. Removing "not ready" old pods on the strength of pods that might
// still become ready could take ready capacity below 7 once pods the
// reports missed are removed, so nothing goes until the reports show
// enough ready pods.
func TestRollingKeepsUnreportedReadyPods(t *testing.T) {
	a := rolling(app(7, "v3"), api.FromString("50%"), api.FromInt(0))
	a.Status.StableRevision = 1
	r1 := revisionOf(app(7, "v1"), 1, 7, 4)
	r2 := revisionOf(app(7, "v2"), 2, 4, 0)
	p := PlanApp(a, []*api.Revision{r1, r2})
	if p.Create == nil || p.Create.Spec.Replicas != 0 || len(p.Scale) != 0 {
		t.Fatalf("Create %+v, Scale %v; want revision 3 at 0 and no scaling", p.Create, p.Scale)
	}
	// Before any revision was stable there is no capacity to protect: the
	// pods that are not ready make room, as in Kubernetes.
	a.Status.StableRevision = 0
	p = PlanApp(a, []*api.Revision{r1, r2})
	if diff := cmp.Diff(map[string]int32{"hello-1": 4, "hello-2": 3}, p.Scale); diff != "" {
		t.Errorf("Scale without a stable revision (-want +got):\n%s", diff)
	}
}

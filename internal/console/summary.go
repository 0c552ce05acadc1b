package console

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
)

// Pod states the ring colours, in the order its segments are drawn.
const (
	stateReady       = "ready"
	stateStarting    = "starting"
	stateFailing     = "failing"
	stateTerminating = "terminating"
	stateDone        = "done"
)

var stateOrder = []string{stateReady, stateStarting, stateFailing, stateTerminating, stateDone}

// podState is what a pod looks like on the ring.
func podState(p *api.Pod) string {
	if p.Metadata.DeletionTimestamp != nil {
		return stateTerminating
	}
	switch p.Status.Phase {
	case api.PodSucceeded:
		return stateDone
	case api.PodFailed:
		return stateFailing
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && (w.Reason == "CrashLoopBackOff" || strings.Contains(w.Reason, "Err")) {
			return stateFailing
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return stateFailing
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == api.PodReady && c.Status == "True" {
			return stateReady
		}
	}
	return stateStarting
}

// ringSeg is one arc of a pod ring: an SVG circle's dash pattern.
type ringSeg struct {
	State          string
	Dash, Gap, Off float64
}

// ringRadius and ringCirc are the ring's geometry (viewBox 0 0 42 42).
const ringRadius = 15.915

var ringCirc = 2 * math.Pi * ringRadius

// ring draws one arc per pod (grouped by state, a small gap between
// pods while there are few enough to count).
func ring(states []string) []ringSeg {
	n := len(states)
	if n == 0 {
		return nil
	}
	sorted := slices.Clone(states)
	slices.SortStableFunc(sorted, func(a, b string) int {
		return cmp.Compare(slices.Index(stateOrder, a), slices.Index(stateOrder, b))
	})
	per := ringCirc / float64(n)
	gap := 0.0
	if n > 1 && n <= 40 {
		gap = min(1.0, per/4)
	}
	var segs []ringSeg
	if gap == 0 { // one arc per state
		for i := 0; i < n; {
			j := i
			for j < n && sorted[j] == sorted[i] {
				j++
			}
			segs = append(segs, ringSeg{State: sorted[i], Dash: per * float64(j-i), Gap: ringCirc - per*float64(j-i), Off: -per * float64(i)})
			i = j
		}
		return segs
	}
	for i, s := range sorted {
		segs = append(segs, ringSeg{State: s, Dash: per - gap, Gap: ringCirc - per + gap, Off: -per * float64(i)})
	}
	return segs
}

// split is one revision's share of an App's traffic.
type split struct {
	Revision int64
	Weight   int32
	Ready    int32
	Desired  int32
	Canary   bool
}

// card is an App as the overview shows it.
type card struct {
	ID, Project, Name, Phase, Message string
	// Attention says why the App is listed first: it waits for a person,
	// or is degraded; "" otherwise.
	Attention        string
	Ready, Replicas  int32
	Pods             int
	Counts           map[string]int
	Ring             []ringSeg
	Split            []split
	Rollout          string
	LatestRevision   int64
	StableRevision   int64
	RolloutStrategy  string
	RolloutStartedAt string
}

func cardID(project, name string) string { return "app-" + project + "-" + name }

// summarise makes an App's card from the App and its pods.
func summarise(a *api.App, pods []*api.Pod) card {
	c := card{ID: cardID(a.Metadata.Project, a.Metadata.Name), Project: a.Metadata.Project, Name: a.Metadata.Name,
		Phase: a.Status.Phase, Message: a.Status.Message, Ready: a.Status.ReadyReplicas,
		LatestRevision: a.Status.LatestRevision, StableRevision: a.Status.StableRevision, Counts: map[string]int{}}
	if a.Spec.Replicas != nil {
		c.Replicas = *a.Spec.Replicas
	} else {
		c.Replicas = 1
	}
	states := make([]string, 0, len(pods))
	for _, p := range pods {
		s := podState(p)
		states = append(states, s)
		c.Counts[s]++
	}
	c.Pods = len(pods)
	c.Ring = ring(states)
	c.Attention = attention(a)
	if ro := a.Status.Rollout; ro != nil {
		c.RolloutStrategy = ro.Strategy
		if ro.State == api.RolloutProgressing || ro.State == api.RolloutPaused {
			c.Rollout = fmt.Sprintf("%s of revision %d: %s", cmp.Or(ro.Strategy, "rollout"), ro.Revision, ro.State)
		}
	}
	weights := map[int64]int32{}
	for _, t := range a.Status.Traffic {
		weights[t.Revision] = t.Weight
	}
	for _, r := range a.Status.Revisions {
		if r.Replicas == 0 && r.Weight == 0 && weights[r.Revision] == 0 {
			continue
		}
		w := r.Weight
		if x, ok := weights[r.Revision]; ok {
			w = x
		}
		c.Split = append(c.Split, split{Revision: r.Revision, Weight: w, Ready: r.Ready, Desired: r.Desired,
			Canary: r.Revision == a.Status.LatestRevision && r.Revision != a.Status.StableRevision})
	}
	return c
}

// attention is why an App needs a person: a rollout waiting for
// promotion, or a degraded App.
func attention(a *api.App) string {
	if w := view.WaitingFor(a); w != "" {
		return "waits for a person: " + w
	}
	if a.Status.Phase == api.AppDegraded {
		return "degraded: " + cmp.Or(a.Status.Message, "see the app's events")
	}
	return ""
}

// sortCards puts Apps that need a person first, then by project and name.
func sortCards(cs []card) {
	slices.SortFunc(cs, func(a, b card) int {
		if (a.Attention == "") != (b.Attention == "") {
			if a.Attention != "" {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(a.Name, b.Name))
	})
}

// podsByApp groups pods by the App that owns them.
func podsByApp(pods []api.Object) map[string][]*api.Pod {
	m := map[string][]*api.Pod{}
	for _, o := range pods {
		p := o.(*api.Pod)
		if p.Spec.App == "" {
			continue
		}
		k := p.Metadata.Project + "/" + p.Spec.App
		m[k] = append(m[k], p)
	}
	return m
}

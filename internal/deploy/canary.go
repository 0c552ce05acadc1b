package deploy

import (
	"fmt"

	"slipway.dev/slipway/internal/api"
)

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
	d.preview = n.Spec.Number // the preview header and c.Match reach it whatever its weight
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
		d.preview = 0
		if d.hook(HookPost) { // until it passes, stable stays to go back to
			d.want[stable.Metadata.Name] = 0
			d.complete()
		}
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

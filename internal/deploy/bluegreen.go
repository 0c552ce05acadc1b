package deploy

import (
	"fmt"
	"time"

	"slipway.dev/slipway/internal/api"
)

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
	if !d.hook(HookPost) {
		return
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

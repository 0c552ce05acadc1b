package deploy

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/histogram"
)

// Sample is a revision's cumulative request counters as the router counts
// them: requests by status class ([0]: no answer, the client left; [5]:
// 5xx, the router's own 502/503/504 included), failed attempts to reach an
// endpoint, and a latency histogram whose bucket i counts requests up to
// Bounds[i] (the last bucket the rest).
type Sample struct {
	Requests       [6]int64
	UpstreamErrors int64
	Latency        []int64
	Bounds         []time.Duration
	// InFlight is the requests being served now (not cumulative).
	InFlight int64
}

// Metrics reads the router's counters of an App's revision, summed over
// every route and backend serving it; false when the router never served
// it. The server implements it over the router, so deploy imports no
// data-path package.
type Metrics interface {
	Revision(project, app string, rev int64) (Sample, bool)
	// Routes is the total of the routes serving the App, which also
	// counts requests no revision answered (no ready pod anywhere).
	Routes(project, app string) (Sample, bool)
}

// counts is s as stored in status; trailing empty latency buckets are
// left out (since reads missing ones as 0).
func (s Sample) counts(rev int64) api.RequestCounts {
	n := len(s.Latency)
	for n > 0 && s.Latency[n-1] == 0 {
		n--
	}
	return api.RequestCounts{Revision: rev, Requests: s.Requests, UpstreamErrors: s.UpstreamErrors, Latency: slices.Clone(s.Latency[:n])}
}

// endRuns closes the analyses still running when a rollout ends:
// Successful if they judged traffic and never failed, else Inconclusive.
func endRuns(ro *api.RolloutStatus) {
	for i := range ro.Analysis {
		r := &ro.Analysis[i]
		if r.Phase != api.AnalysisRunning {
			continue
		}
		r.Phase = api.AnalysisInconclusive
		if r.Failures == 0 && r.Measurements > r.Inconclusives {
			r.Phase = api.AnalysisSuccessful
		}
	}
}

// since is s minus the counters c held earlier.
func (s Sample) since(c api.RequestCounts) Sample {
	out := s
	for i := range out.Requests {
		out.Requests[i] -= c.Requests[i]
	}
	out.UpstreamErrors -= c.UpstreamErrors
	out.Latency = slices.Clone(s.Latency)
	for i := range out.Latency {
		if i < len(c.Latency) {
			out.Latency[i] -= c.Latency[i]
		}
	}
	return out
}

func (s Sample) total() int64 {
	var n int64
	for _, c := range s.Requests {
		n += c
	}
	return n
}

// answered counts requests that got a response.
func (s Sample) answered() int64 { return s.total() - s.Requests[0] }

// quantile is the latency under which a share q of the counted requests
// fell, interpolated within its bucket (the last, unbounded bucket reports
// its lower bound).
func (s Sample) quantile(q float64) time.Duration {
	return histogram.Quantile(s.Bounds, s.Latency, q)
}

// Analysis run names.
const (
	runBackground    = "background"
	runPrePromotion  = "prePromotion"
	runPostPromotion = "postPromotion"
)

func stepRun(i int) string { return fmt.Sprintf("step-%d", i) }

// analysisSpec finds the analysis a run of app executes.
func analysisSpec(app *api.App, run string) *api.Analysis {
	s := app.Spec.Strategy
	switch {
	case run == runBackground && s.Canary != nil:
		return s.Canary.Analysis
	case run == runPrePromotion && s.BlueGreen != nil:
		return s.BlueGreen.PrePromotionAnalysis
	case run == runPostPromotion && s.BlueGreen != nil:
		return s.BlueGreen.PostPromotionAnalysis
	case strings.HasPrefix(run, "step-") && s.Canary != nil:
		var i int
		if _, err := fmt.Sscanf(run, "step-%d", &i); err == nil && i >= 0 && i < len(s.Canary.Steps) {
			return s.Canary.Steps[i].Analysis
		}
	}
	return nil
}

func interval(a *api.Analysis) time.Duration {
	d, err := a.Interval.Parse()
	if err != nil || d <= 0 {
		d, _ = api.DefaultAnalysisInterval.Parse()
	}
	return d
}

// WebhookCall is a webhook metric due to be measured.
type WebhookCall struct {
	Key     string // run/metric: the key of Observed.Webhooks
	URL     string
	Timeout time.Duration
}

// DueWebhooks lists the webhook metrics of app's running analyses whose
// next measurement is due at now: the controller calls them before
// deciding and passes the outcomes in Observed.Webhooks.
func DueWebhooks(app *api.App, now time.Time) []WebhookCall {
	ro := app.Status.Rollout
	if ro == nil || (ro.State != api.RolloutProgressing && ro.State != api.RolloutPaused) {
		return nil
	}
	var out []WebhookCall
	for _, run := range ro.Analysis {
		a := analysisSpec(app, run.Name)
		if a == nil || run.Phase != api.AnalysisRunning || now.Before(run.LastMeasuredAt.Add(interval(a))) {
			continue
		}
		for _, m := range a.Metrics {
			if m.Type == api.MetricWebhook && m.Webhook != nil {
				t := time.Duration(m.Webhook.TimeoutSeconds) * time.Second
				if t <= 0 {
					t = time.Duration(api.DefaultWebhookTimeoutSeconds) * time.Second
				}
				out = append(out, WebhookCall{Key: run.Name + "/" + m.Name, URL: m.Webhook.URL, Timeout: t})
			}
		}
	}
	return out
}

// startRun adds a running analysis named name, measuring from cur.
func startRun(ro *api.RolloutStatus, name string, cur api.RequestCounts, now time.Time) *api.AnalysisRun {
	if r := findRun(ro, name); r != nil {
		return r
	}
	ro.Analysis = append(ro.Analysis, api.AnalysisRun{Name: name, Phase: api.AnalysisRunning, StartedAt: now, LastMeasuredAt: now, Last: cur})
	return &ro.Analysis[len(ro.Analysis)-1]
}

func findRun(ro *api.RolloutStatus, name string) *api.AnalysisRun {
	for i := range ro.Analysis {
		if ro.Analysis[i].Name == name {
			return &ro.Analysis[i]
		}
	}
	return nil
}

// measure takes a measurement of run when one is due: each metric is
// judged on the requests since the last measurement. A gate (not
// background) succeeds at its first passing measurement; any run fails
// once its failures exceed failureLimit. Inconclusive measurements (fewer
// than minRequests, or no answer at all) wait or count as failures per
// inconclusivePolicy. It returns how long until the next one is due.
func measure(run *api.AnalysisRun, a *api.Analysis, gate bool, cur Sample, have bool, webhooks map[string]bool, now time.Time) time.Duration {
	iv := interval(a)
	if run.Phase != api.AnalysisRunning {
		return 0
	}
	if due := run.LastMeasuredAt.Add(iv); now.Before(due) {
		return due.Sub(now)
	}
	w := cur.since(run.Last)
	if !have {
		w = Sample{}
	}
	answered := w.answered()
	run.Results = run.Results[:0]
	verdict := api.AnalysisSuccessful
	var msgs []string
	worse := func(v string) {
		switch {
		case v == api.AnalysisFailed:
			verdict = v
		case v == api.AnalysisInconclusive && verdict == api.AnalysisSuccessful:
			verdict = v
		}
	}
	for _, m := range a.Metrics {
		r := api.MetricResult{Name: m.Name, Type: m.Type, Requests: answered}
		enough := answered > 0 && answered >= a.MinRequests
		tooFew := fmt.Sprintf("%d requests, fewer than minRequests %d", answered, a.MinRequests)
		if answered == 0 {
			tooFew = "no request to judge"
		}
		switch m.Type {
		case api.MetricWebhook:
			passed, ok := webhooks[run.Name+"/"+m.Name]
			switch {
			case !ok:
				r.Verdict, r.Message = api.AnalysisInconclusive, "not measured"
			case passed:
				r.Verdict, r.Value, r.Message = api.AnalysisSuccessful, 1, "answered 2xx"
			default:
				r.Verdict, r.Message = api.AnalysisFailed, fmt.Sprintf("webhook %s did not answer 2xx in time", m.Webhook.URL)
			}
		case api.MetricSuccessRate, api.MetricErrorRate:
			if !enough {
				r.Verdict, r.Message = api.AnalysisInconclusive, tooFew
				break
			}
			rate := float64(w.Requests[5]) / float64(answered)
			if m.Type == api.MetricSuccessRate {
				rate = 1 - rate
				r.Value = rate
				r.Verdict, r.Message = judge(rate >= deref(m.Min), fmt.Sprintf("successRate %.4f %s min %g over %d requests", rate, cmpWord(rate >= deref(m.Min), ">=", "<"), deref(m.Min), answered))
			} else {
				r.Value = rate
				r.Verdict, r.Message = judge(rate <= deref(m.Max), fmt.Sprintf("errorRate %.4f %s max %g over %d requests", rate, cmpWord(rate <= deref(m.Max), "<=", ">"), deref(m.Max), answered))
			}
		default: // latency quantiles, in milliseconds
			if !enough {
				r.Verdict, r.Message = api.AnalysisInconclusive, tooFew
				break
			}
			q := map[string]float64{api.MetricLatencyP50: 0.5, api.MetricLatencyP90: 0.9, api.MetricLatencyP99: 0.99}[m.Type]
			ms := float64(w.quantile(q)) / float64(time.Millisecond)
			r.Value = ms
			r.Verdict, r.Message = judge(ms <= deref(m.Max), fmt.Sprintf("%s %.1fms %s max %gms over %d requests", m.Type, ms, cmpWord(ms <= deref(m.Max), "<=", ">"), deref(m.Max), answered))
		}
		worse(r.Verdict)
		if r.Verdict != api.AnalysisSuccessful {
			msgs = append(msgs, fmt.Sprintf("metric %s: %s", m.Name, r.Message))
		}
		run.Results = append(run.Results, r)
	}
	run.Measurements++
	run.LastMeasuredAt = now
	if have {
		run.Last = cur.counts(run.Last.Revision)
	}
	run.Message = strings.Join(msgs, "; ")
	if verdict == api.AnalysisInconclusive {
		run.Inconclusives++
		if a.InconclusivePolicy == api.InconclusiveFail {
			verdict = api.AnalysisFailed
		}
	}
	switch verdict {
	case api.AnalysisFailed:
		run.Failures++
		if run.Failures > a.FailureLimit {
			run.Phase = api.AnalysisFailed
			return 0
		}
	case api.AnalysisSuccessful:
		run.Message = "all metrics passed"
		if gate {
			run.Phase = api.AnalysisSuccessful
			return 0
		}
	}
	return iv
}

func judge(ok bool, msg string) (string, string) {
	if ok {
		return api.AnalysisSuccessful, msg
	}
	return api.AnalysisFailed, msg
}

func cmpWord(ok bool, yes, no string) string {
	if ok {
		return yes
	}
	return no
}

func deref(p *float64) float64 {
	if p == nil {
		return 0
	}
	return *p
}

package console

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/cli/view"
	"slipway.dev/slipway/internal/client"
	"slipway.dev/slipway/internal/telemetry"
)

type appView struct {
	page
	Path      string
	App       *api.App
	Card      card
	Revisions []revRow
	Rollout   *api.RolloutStatus
	Steps     []stepRow
	Analyses  []analysisRow
	Report    *api.Report
	Pods      []podRow
	Routes    []string
	Events    []*api.Event
	Charts    []chartView
}

type revRow struct {
	Revision               int64
	Weight, Ready, Desired int32
	Role                   string
	Latest                 bool
}

type stepRow struct {
	Text          string
	Current, Done bool
}

type analysisRow struct {
	api.AnalysisRun
	Class   string
	Results []resultRow
}

type resultRow struct {
	Name, Type, Value, Threshold, Verdict, Class string
	Requests                                     int64
}

type podRow struct {
	Project, Name, State, Phase, IP string
	Revision                        int64
	Restarts                        int32
}

// appKinds are what the App page follows, in the App's project.
var appKinds = []api.KindInfo{appKind, podKind, revisionKind, serviceKind, routeKind, eventKind}

func loadProject(ctx context.Context, cl *client.Client, project string, kinds []api.KindInfo) (*cache, map[string]int64, error) {
	ca := newCache()
	rv := map[string]int64{}
	for _, k := range kinds {
		objs, n, err := cl.List(ctx, k, project, "")
		if err != nil {
			return nil, nil, err
		}
		ca.set(k.Kind, objs)
		rv[k.Plural] = n
	}
	return ca, rv, nil
}

func (c *Console) appPage(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	ca, rv, err := loadProject(r.Context(), cl.cl, project, appKinds)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	base := "/console/p/" + project + "/apps/" + name
	v, ok := c.appView(ca, c.page(r, cl, "App "+name, base+"/stream?rv="+revsParam(rv)), project, name)
	if !ok {
		http.Error(w, fmt.Sprintf("no app %q in project %q", name, project), http.StatusNotFound)
		return
	}
	c.render(w, "app", v)
}

func (c *Console) appStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	project, name := r.PathValue("project"), r.PathValue("name")
	since := revs(r.URL.Query().Get("rv"))
	ca := newCache()
	dirty, poke := signal()
	goneCh, gone := goneOnce()
	for _, k := range appKinds {
		if err := follow(ctx, cl.cl, k, project, since[k.Plural], ca, func(api.Object) { poke() }, gone); err != nil {
			c.apiFailure(w, r, err)
			return
		}
	}
	pg := c.page(r, cl, "", "")
	s := startSSE(w)
	charts := time.NewTicker(5 * time.Second)
	defer charts.Stop()
	pump(ctx, s, dirty, goneCh, charts.C, func() error {
		v, ok := c.appView(ca, pg, project, name)
		if !ok {
			return s.send("reload", "", "")
		}
		return s.patches([]patchMsg{{ID: "app-live", HTML: `<div id="app-live">` + c.fragment("app-live", v) + `</div>`}})
	}, func() error {
		v, ok := c.appView(ca, pg, project, name)
		if !ok {
			return nil
		}
		return s.patches([]patchMsg{{ID: "charts", HTML: `<div id="charts">` + c.fragment("charts", v) + `</div>`}})
	})
}

// appView summarises an App and what belongs to it from the cache.
func (c *Console) appView(ca *cache, pg page, project, name string) (appView, bool) {
	o := ca.get(appKind.Kind, project, name)
	if o == nil {
		return appView{}, false
	}
	a := o.(*api.App)
	v := appView{page: pg, Path: "/console/p/" + project + "/apps/" + name, App: a}
	var pods []*api.Pod
	ca.each(podKind.Kind, func(o api.Object) {
		if p := o.(*api.Pod); p.Metadata.Project == project && p.Spec.App == name {
			pods = append(pods, p)
		}
	})
	slices.SortFunc(pods, func(x, y *api.Pod) int { return cmp.Compare(x.Metadata.Name, y.Metadata.Name) })
	v.Card = summarise(a, pods)
	for _, p := range pods {
		row := podRow{Project: project, Name: p.Metadata.Name, State: podState(p), Phase: p.Status.Phase, IP: p.Status.PodIP, Revision: p.Spec.Revision}
		for _, cs := range p.Status.ContainerStatuses {
			row.Restarts += cs.RestartCount
		}
		v.Pods = append(v.Pods, row)
	}
	v.Revisions = revisionRows(a)
	if ro := a.Status.Rollout; ro != nil {
		v.Rollout = ro
		v.Steps = steps(a)
		v.Analyses = analyses(a)
		v.Report = ro.Report
	}
	services := appServices(ca, a)
	ca.each(routeKind.Kind, func(o api.Object) {
		rt := o.(*api.Route)
		for _, b := range append([]api.RouteBackend{rt.Spec.To}, rt.Spec.AlternateBackends...) {
			if services[project+"/"+b.Service] {
				v.Routes = append(v.Routes, rt.Metadata.Name)
				break
			}
		}
	})
	slices.Sort(v.Routes)
	var evs []*api.Event
	ca.each(eventKind.Kind, func(o api.Object) {
		e := o.(*api.Event)
		if e.InvolvedObject.Name == name || (e.InvolvedObject.Kind == "Pod" && strings.HasPrefix(e.InvolvedObject.Name, name+"-")) ||
			(e.InvolvedObject.Kind == "Revision" && strings.HasPrefix(e.InvolvedObject.Name, name+"-")) {
			evs = append(evs, e)
		}
	})
	slices.SortFunc(evs, func(x, y *api.Event) int { return y.LastTimestamp.Compare(x.LastTimestamp) })
	v.Events = evs[:min(len(evs), 15)]
	if c.opts.Series != nil {
		v.Charts = charts(c.opts.Series, services, v.Revisions)
	}
	return v, true
}

// appServices are the Services that select the App's pods ("project/name").
func appServices(ca *cache, a *api.App) map[string]bool {
	labels := map[string]string{"app": a.Metadata.Name}
	for k, val := range a.Spec.Template.Metadata.Labels {
		labels[k] = val
	}
	out := map[string]bool{}
	ca.each(serviceKind.Kind, func(o api.Object) {
		s := o.(*api.Service)
		if s.Metadata.Project != a.Metadata.Project || len(s.Spec.Selector) == 0 {
			return
		}
		for k, val := range s.Spec.Selector {
			if labels[k] != val {
				return
			}
		}
		out[s.Metadata.Project+"/"+s.Metadata.Name] = true
	})
	return out
}

func revisionRows(a *api.App) []revRow {
	weights := map[int64]int32{}
	for _, t := range a.Status.Traffic {
		weights[t.Revision] = t.Weight
	}
	var rows []revRow
	for _, r := range a.Status.Revisions {
		row := revRow{Revision: r.Revision, Weight: weights[r.Revision], Ready: r.Ready, Desired: r.Desired, Latest: r.Revision == a.Status.LatestRevision}
		switch {
		case r.Revision == a.Status.StableRevision && row.Latest:
			row.Role = "stable, latest"
		case r.Revision == a.Status.StableRevision:
			row.Role = "stable"
		case row.Latest:
			row.Role = "new"
		case r.Revision == a.Status.PreviewRevision:
			row.Role = "preview"
		default:
			row.Role = "old"
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(x, y revRow) int { return cmp.Compare(y.Revision, x.Revision) })
	return rows
}

// steps lists a Canary's steps with the current one marked.
func steps(a *api.App) []stepRow {
	cs := a.Spec.Strategy.Canary
	ro := a.Status.Rollout
	if cs == nil || ro == nil || ro.Strategy != api.StrategyCanary {
		return nil
	}
	cur := int32(-1)
	if a.Status.CurrentStep != nil {
		cur = *a.Status.CurrentStep
	}
	ended := ro.State == api.RolloutCompleted
	var out []stepRow
	for i, st := range cs.Steps {
		var t string
		switch {
		case st.SetWeight != nil:
			t = fmt.Sprintf("set weight %d%%", *st.SetWeight)
		case st.Pause != nil && st.Pause.Duration != "":
			t = "pause " + string(st.Pause.Duration)
		case st.Pause != nil:
			t = "pause until promoted"
		case st.Analysis != nil:
			var names []string
			for _, m := range st.Analysis.Metrics {
				names = append(names, m.Name)
			}
			t = "analysis: " + strings.Join(names, ", ")
		}
		active := !ended && (ro.State == api.RolloutProgressing || ro.State == api.RolloutPaused)
		out = append(out, stepRow{Text: fmt.Sprintf("%d. %s", i+1, t), Current: active && int32(i) == cur, Done: ended || int32(i) < cur})
	}
	return out
}

// thresholds finds the bounds of the metrics an analysis run measured.
func thresholds(a *api.App) map[string]api.AnalysisMetric {
	m := map[string]api.AnalysisMetric{}
	add := func(an *api.Analysis) {
		if an != nil {
			for _, x := range an.Metrics {
				m[x.Name] = x
			}
		}
	}
	st := a.Spec.Strategy
	if cs := st.Canary; cs != nil {
		add(cs.Analysis)
		for _, s := range cs.Steps {
			add(s.Analysis)
		}
	}
	if bg := st.BlueGreen; bg != nil {
		add(bg.PrePromotionAnalysis)
		add(bg.PostPromotionAnalysis)
	}
	return m
}

func verdictClass(v string) string {
	switch v {
	case api.AnalysisSuccessful:
		return "pass"
	case api.AnalysisFailed:
		return "fail"
	case api.AnalysisInconclusive:
		return "inconclusive"
	}
	return ""
}

func analyses(a *api.App) []analysisRow {
	th := thresholds(a)
	var out []analysisRow
	for _, run := range a.Status.Rollout.Analysis {
		row := analysisRow{AnalysisRun: run, Class: verdictClass(run.Phase)}
		for _, res := range run.Results {
			rr := resultRow{Name: res.Name, Type: res.Type, Value: formatValue(res.Type, res.Value), Verdict: res.Verdict, Class: verdictClass(res.Verdict), Requests: res.Requests}
			if m, ok := th[res.Name]; ok {
				var parts []string
				if m.Min != nil {
					parts = append(parts, "≥ "+formatValue(res.Type, *m.Min))
				}
				if m.Max != nil {
					parts = append(parts, "≤ "+formatValue(res.Type, *m.Max))
				}
				if m.Type == "webhook" {
					parts = append(parts, "2xx")
				}
				rr.Threshold = strings.Join(parts, ", ")
			}
			row.Results = append(row.Results, rr)
		}
		out = append(out, row)
	}
	return out
}

// formatValue shows a measurement in its unit: latencies are seconds
// in the API (the analysis' bounds are written in seconds), rates ratios.
func formatValue(typ string, v float64) string {
	if strings.HasPrefix(typ, "latency") {
		return strconv.FormatFloat(v*1000, 'f', 1, 64) + " ms"
	}
	if strings.HasSuffix(typ, "Rate") {
		return strconv.FormatFloat(v*100, 'f', 2, 64) + " %"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// chartView is one revision's three lines.
type chartView struct {
	Revision int64
	Lines    []lineView
}

type lineView struct {
	Title, Class, Points, Last, Max string
}

// charts draws the last hour of each listed revision, in 10 s steps,
// from the series of the App's services.
func charts(s *telemetry.Series, services map[string]bool, rows []revRow) []chartView {
	var out []chartView
	for _, r := range rows {
		pts := s.Query(func(k telemetry.SeriesKey) bool { return services[k.Service] && k.Revision == r.Revision }, telemetry.Span, 10*time.Second)
		var total int64
		for _, p := range pts {
			total += p.Requests
		}
		if total == 0 {
			continue
		}
		rps := make([]float64, len(pts))
		errs := make([]float64, len(pts))
		p99 := make([]float64, len(pts))
		for i, p := range pts {
			rps[i], errs[i], p99[i] = p.RPS, p.ErrorRate*100, float64(p.P99)/float64(time.Millisecond)
		}
		out = append(out, chartView{Revision: r.Revision, Lines: []lineView{
			line("requests/s", "s-ready", rps, "%.1f"),
			line("errors", "s-failing", errs, "%.2f %%"),
			line("p99", "s-starting", p99, "%.1f ms"),
		}})
	}
	return out
}

func line(title, class string, vs []float64, format string) lineView {
	top := 0.0
	for _, v := range vs {
		top = max(top, v)
	}
	var b strings.Builder
	n := max(len(vs)-1, 1)
	for i, v := range vs {
		y := 88.0
		if top > 0 {
			y = 88 - v/top*84
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", float64(i)*360/float64(n), y)
	}
	last := 0.0
	if len(vs) > 0 {
		last = vs[len(vs)-1]
	}
	return lineView{Title: title, Class: class, Points: b.String(), Last: fmt.Sprintf(format, last), Max: fmt.Sprintf(format, top)}
}

// updateApp reads the App, changes it and writes it back as the CLI
// does, again when another writer came between.
func updateApp(ctx context.Context, cl *client.Client, project, name string, mutate func(*api.App) error) (*api.App, error) {
	for attempt := 0; ; attempt++ {
		o, err := cl.Get(ctx, appKind, project, name)
		if err != nil {
			return nil, err
		}
		a := o.(*api.App)
		if err := mutate(a); err != nil {
			return nil, err
		}
		out, err := cl.Update(ctx, a)
		if api.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return out.(*api.App), nil
	}
}

// requestWait bounds how long a rollout verb waits for the controller's
// acknowledgement.
const requestWait = 15 * time.Second

func (c *Console) appAction(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	action := r.PostFormValue("action")
	ctx := r.Context()
	var msg string
	var err error
	switch action {
	case "scale-up", "scale-down":
		var a *api.App
		a, err = updateApp(ctx, cl.cl, project, name, func(a *api.App) error {
			n := int32(1)
			if a.Spec.Replicas != nil {
				n = *a.Spec.Replicas
			}
			if action == "scale-up" {
				n++
			} else if n > 0 {
				n--
			}
			a.Spec.Replicas = &n
			return nil
		})
		if err == nil {
			msg = fmt.Sprintf("app/%s scaled to %d", name, *a.Spec.Replicas)
		}
	case "pause", "resume":
		_, err = updateApp(ctx, cl.cl, project, name, func(a *api.App) error { a.Spec.Paused = action == "pause"; return nil })
		msg = fmt.Sprintf("app/%s %sd", name, action)
	case "restart":
		now := time.Now().UTC().Format(time.RFC3339Nano)
		_, err = updateApp(ctx, cl.cl, project, name, func(a *api.App) error {
			if a.Spec.Template.Metadata.Annotations == nil {
				a.Spec.Template.Metadata.Annotations = map[string]string{}
			}
			a.Spec.Template.Metadata.Annotations[view.RestartedAtAnnotation] = now
			return nil
		})
		msg = fmt.Sprintf("app/%s restarted", name)
	case "undo":
		n, perr := strconv.ParseInt(r.PostFormValue("revision"), 10, 64)
		if perr != nil || n <= 0 {
			c.answer(w, r, http.StatusBadRequest, "undo needs a revision number")
			return
		}
		var o api.Object
		o, err = cl.cl.Get(ctx, revisionKind, project, fmt.Sprintf("%s-%d", name, n))
		if err == nil {
			tpl := o.(*api.Revision).Spec.Template
			_, err = updateApp(ctx, cl.cl, project, name, func(a *api.App) error { a.Spec.Template = tpl; return nil })
			msg = fmt.Sprintf("app/%s rolled back to the template of revision %d", name, n)
		}
	case api.RequestPromote, api.RequestPromoteFull, api.RequestAbort, api.RequestRollback, api.RequestRetry:
		msg, err = c.request(ctx, cl.cl, project, name, action)
	default:
		c.answer(w, r, http.StatusBadRequest, fmt.Sprintf("unknown action %q", action))
		return
	}
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.opts.Logger.Info("console action", "user", cl.who.Name, "app", project+"/"+name, "action", action)
	c.answer(w, r, http.StatusOK, msg)
}

// request writes a rollout verb to the App's request annotation, as
// `slipway rollout <verb>` does, and waits for the controller's answer.
func (c *Console) request(ctx context.Context, cl *client.Client, project, name, verb string) (string, error) {
	value := fmt.Sprintf("%s %d", verb, time.Now().UnixNano())
	if _, err := updateApp(ctx, cl, project, name, func(a *api.App) error {
		if a.Metadata.Annotations == nil {
			a.Metadata.Annotations = map[string]string{}
		}
		a.Metadata.Annotations[api.RolloutRequestAnnotation] = value
		return nil
	}); err != nil {
		return "", err
	}
	wctx, cancel := context.WithTimeout(ctx, requestWait)
	defer cancel()
	ch, err := cl.Watch(wctx, appKind, project, 0, "")
	if err != nil {
		return "", err
	}
	for ev := range ch {
		a, ok := ev.Object.(*api.App)
		if !ok || a.Metadata.Name != name || a.Status.ObservedRequest != value {
			continue
		}
		if a.Status.RequestRefused != "" {
			return "", api.Errorf(api.ReasonConflict, "app/%s: %s refused: %s", name, verb, a.Status.RequestRefused)
		}
		line, _, _ := view.RolloutLine(a)
		return fmt.Sprintf("app/%s: %s done; %s", name, verb, line), nil
	}
	return "", api.Errorf(api.ReasonUnavailable, "app/%s: the deploy controller did not acknowledge %q within %v", name, verb, requestWait)
}

package console

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
)

type podView struct {
	page
	Pod        *api.Pod
	State      string
	Containers []containerRow
	Probes     []probeRow
}

type containerRow struct {
	Name, Image, State, Last string
	Ready                    bool
	Restarts                 int32
}

type probeRow struct {
	api.ProbeResult
	Container string
}

func describeState(s api.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().Format("15:04:05")
	case s.Waiting != nil:
		return "waiting: " + cmp.Or(s.Waiting.Reason, "—") + " " + s.Waiting.Message
	case s.Terminated != nil:
		t := s.Terminated
		return fmt.Sprintf("terminated: %s, exit %d %s", cmp.Or(t.Reason, "—"), t.ExitCode, t.Message)
	}
	return ""
}

func podViewOf(pg page, p *api.Pod) podView {
	v := podView{page: pg, Pod: p, State: podState(p)}
	images := map[string]string{}
	for _, c := range p.Spec.Containers {
		images[c.Name] = c.Image
	}
	for _, cs := range p.Status.ContainerStatuses {
		v.Containers = append(v.Containers, containerRow{Name: cs.Name, Image: images[cs.Name], Ready: cs.Ready,
			Restarts: cs.RestartCount, State: describeState(cs.State), Last: describeState(cs.LastState)})
		for _, pr := range cs.ProbeResults {
			v.Probes = append(v.Probes, probeRow{ProbeResult: pr, Container: cs.Name})
		}
	}
	slices.SortFunc(v.Probes, func(x, y probeRow) int { return y.Time.Compare(x.Time) })
	v.Probes = v.Probes[:min(len(v.Probes), 20)]
	return v
}

func (c *Console) podPage(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	o, err := cl.cl.Get(r.Context(), podKind, project, name)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	rv := o.GetMeta().ResourceVersion
	c.render(w, "pod", podViewOf(c.page(r, cl, "Pod "+name, fmt.Sprintf("/console/p/%s/pods/%s/stream?rv=pods:%d", project, name, rv)), o.(*api.Pod)))
}

func (c *Console) podStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	project, name := r.PathValue("project"), r.PathValue("name")
	ca, dirty, goneCh, ok := c.followObject(ctx, w, r, cl, podKind, "pods")
	if !ok {
		return
	}
	pg := c.page(r, cl, "", "")
	s := startSSE(w)
	pump(ctx, s, dirty, goneCh, nil, func() error {
		o := ca.get(podKind.Kind, project, name)
		if o == nil {
			return s.patches([]patchMsg{{ID: "pod-live", HTML: `<div id="pod-live"><p><strong>This pod is gone.</strong></p></div>`}})
		}
		return s.patches([]patchMsg{{ID: "pod-live", HTML: `<div id="pod-live">` + c.fragment("pod-live", podViewOf(pg, o.(*api.Pod))) + `</div>`}})
	}, nil)
}

func logOptions(r *http.Request, follow bool) client.LogOptions {
	q := r.URL.Query()
	prev := q.Get("previous") == "true"
	return client.LogOptions{Container: q.Get("container"), Previous: prev, Follow: follow && !prev}
}

// podLogs streams a container's log as server-sent events, one per line,
// each with its line number as the event id: a browser that reconnects
// (EventSource sends Last-Event-ID) gets the lines after the last it had.
func (c *Console) podLogs(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	open := func(ctx context.Context) (io.ReadCloser, error) {
		return cl.cl.PodLogs(ctx, project, name, logOptions(r, true))
	}
	c.streamLines(w, r, open, "The container's run ended.")
}

func (c *Console) podLogDownload(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	rc, err := cl.cl.PodLogs(r.Context(), project, name, logOptions(r, false))
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name+".log"))
	_, _ = io.Copy(w, rc)
}

// maxLine bounds one log line sent to the browser.
const maxLine = 64 << 10

func resumeFrom(r *http.Request) int64 {
	from, _ := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if id, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		from = max(from, id)
	}
	return from
}

func (c *Console) streamLines(w http.ResponseWriter, r *http.Request, open func(context.Context) (io.ReadCloser, error), ended string) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	from := resumeFrom(r)
	rc, err := open(ctx)
	s := startSSE(w)
	if err != nil {
		_ = s.send("failed", "", err.Error())
		return
	}
	defer rc.Close()
	go func() {
		t := time.NewTicker(20 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if s.comment() != nil {
					cancel()
					return
				}
			}
		}
	}()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	var n int64
	for sc.Scan() {
		n++
		if n <= from {
			continue
		}
		if s.send("line", strconv.FormatInt(n, 10), sc.Text()) != nil {
			return
		}
	}
	if ctx.Err() != nil {
		return
	}
	if err := sc.Err(); err != nil {
		_ = s.send("failed", "", "the log stream broke: "+err.Error())
		return
	}
	_ = s.send("end", "", ended)
}

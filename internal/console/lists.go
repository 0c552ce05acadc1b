package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// eventFilter is the Events page's filter; empty fields match anything.
type eventFilter struct {
	Project, Kind, Name, Type string
}

func filterOf(r *http.Request) eventFilter {
	q := r.URL.Query()
	return eventFilter{Project: q.Get("project"), Kind: q.Get("kind"), Name: q.Get("name"), Type: q.Get("type")}
}

// match: the name matches the object and, for an App's name, its
// revisions and pods (named after it).
func (f eventFilter) match(e *api.Event) bool {
	io := e.InvolvedObject
	return (f.Project == "" || e.Metadata.Project == f.Project) &&
		(f.Kind == "" || strings.EqualFold(io.Kind, f.Kind)) &&
		(f.Type == "" || e.Type == f.Type) &&
		(f.Name == "" || io.Name == f.Name || strings.HasPrefix(io.Name, f.Name+"-"))
}

func (f eventFilter) query() string {
	return fmt.Sprintf("project=%s&kind=%s&name=%s&type=%s", f.Project, f.Kind, f.Name, f.Type)
}

type eventsView struct {
	page
	F      eventFilter
	Events []*api.Event
}

// maxEvents bounds the Events page.
const maxEvents = 500

func (c *Console) eventsPage(w http.ResponseWriter, r *http.Request, cl caller) {
	f := filterOf(r)
	objs, rv, err := cl.cl.List(r.Context(), eventKind, f.Project, "")
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	var evs []*api.Event
	for _, o := range objs {
		if e := o.(*api.Event); f.match(e) {
			evs = append(evs, e)
		}
	}
	slices.SortFunc(evs, func(x, y *api.Event) int { return y.LastTimestamp.Compare(x.LastTimestamp) })
	evs = evs[:min(len(evs), maxEvents)]
	pg := c.page(r, cl, "Events", fmt.Sprintf("/console/events/stream?%s&rv=events:%d", f.query(), rv))
	c.render(w, "events", eventsView{page: pg, F: f, Events: evs})
}

func (c *Console) eventsStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	f := filterOf(r)
	ca := newCache()
	dirtyCh, poke := signal()
	goneCh, gone := goneOnce()
	pending := make(chan *api.Event, 256)
	err := follow(ctx, cl.cl, eventKind, f.Project, revs(r.URL.Query().Get("rv"))["events"], ca, func(o api.Object) {
		if e := o.(*api.Event); f.match(e) {
			select {
			case pending <- e:
			default: // the next flush still sends the newest state of each
			}
			poke()
		}
	}, gone)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	s := startSSE(w)
	pump(ctx, s, dirtyCh, goneCh, nil, func() error {
		var ps []patchMsg
		for {
			select {
			case e := <-pending:
				id := "ev-" + e.Metadata.Project + "-" + e.Metadata.Name
				html := ""
				if ca.get(eventKind.Kind, e.Metadata.Project, e.Metadata.Name) != nil {
					html = c.fragment("event-row", e)
				}
				ps = append(ps, patchMsg{ID: id, HTML: html, Section: "event-rows", First: true})
			default:
				return s.patches(ps)
			}
		}
	}, nil)
}

type buildsView struct {
	page
	Builds []*api.Build
}

func sortedBuilds(ca *cache) []*api.Build {
	var bs []*api.Build
	ca.each(buildKind.Kind, func(o api.Object) { bs = append(bs, o.(*api.Build)) })
	slices.SortFunc(bs, func(x, y *api.Build) int { return y.Metadata.CreationTimestamp.Compare(x.Metadata.CreationTimestamp) })
	return bs
}

func (c *Console) buildsPage(w http.ResponseWriter, r *http.Request, cl caller) {
	ca, rv, err := loadProject(r.Context(), cl.cl, "", []api.KindInfo{buildKind})
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	pg := c.page(r, cl, "Builds", "/console/builds/stream?rv="+revsParam(rv))
	c.render(w, "builds", buildsView{page: pg, Builds: sortedBuilds(ca)})
}

func (c *Console) buildsStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	ca := newCache()
	dirty, poke := signal()
	goneCh, gone := goneOnce()
	if err := follow(ctx, cl.cl, buildKind, "", revs(r.URL.Query().Get("rv"))["builds"], ca, func(api.Object) { poke() }, gone); err != nil {
		c.apiFailure(w, r, err)
		return
	}
	pg := c.page(r, cl, "", "")
	s := startSSE(w)
	pump(ctx, s, dirty, goneCh, nil, func() error {
		return s.patches([]patchMsg{{ID: "builds-live", HTML: `<div id="builds-live">` + c.fragment("builds-live", buildsView{page: pg, Builds: sortedBuilds(ca)}) + `</div>`}})
	}, nil)
}

type buildView struct {
	page
	Build *api.Build
}

func (c *Console) buildPage(w http.ResponseWriter, r *http.Request, cl caller) {
	o, err := cl.cl.Get(r.Context(), buildKind, r.PathValue("project"), r.PathValue("name"))
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	c.render(w, "build", buildView{page: c.page(r, cl, "Build "+o.GetMeta().Name, ""), Build: o.(*api.Build)})
}

// buildLogs streams a build's log until the build ends.
func (c *Console) buildLogs(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	c.streamLines(w, r, func(ctx context.Context) (io.ReadCloser, error) {
		return cl.cl.BuildLog(ctx, project, name, true)
	}, "The build ended.")
}

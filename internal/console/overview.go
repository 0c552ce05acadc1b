package console

import (
	"context"
	"net/http"
	"strings"

	"slipway.dev/slipway/internal/api"
)

type overviewView struct {
	page
	Cards    []card
	Pods     int
	Projects int
}

// overviewData lists what the overview shows and the revisions it was
// read at.
func overviewCards(c *cache) ([]card, int, int) {
	var pods []api.Object
	c.each(podKind.Kind, func(o api.Object) { pods = append(pods, o) })
	by := podsByApp(pods)
	var cards []card
	projects := map[string]bool{}
	c.each(appKind.Kind, func(o api.Object) {
		a := o.(*api.App)
		projects[a.Metadata.Project] = true
		cards = append(cards, summarise(a, by[a.Metadata.Project+"/"+a.Metadata.Name]))
	})
	sortCards(cards)
	return cards, len(pods), len(projects)
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, cl caller) {
	ca := newCache()
	rv := map[string]int64{}
	for _, k := range []string{"apps", "pods"} {
		kind := map[string]api.KindInfo{"apps": appKind, "pods": podKind}[k]
		objs, n, err := cl.cl.List(r.Context(), kind, "", "")
		if err != nil {
			c.apiFailure(w, r, err)
			return
		}
		ca.set(kind.Kind, objs)
		rv[k] = n
	}
	cards, pods, projects := overviewCards(ca)
	v := overviewView{page: c.page(r, cl, "Overview", "/console/stream?rv="+revsParam(rv)), Cards: cards, Pods: pods, Projects: projects}
	c.render(w, "overview", v)
}

// overviewStream sends the cards of the Apps that changed: an App's
// event, or one of its pods'.
func (c *Console) overviewStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	since := revs(r.URL.Query().Get("rv"))
	ca := newCache()
	dirtyCh, poke := signal()
	goneCh, gone := goneOnce()
	var mu = make(chan struct{}, 1)
	dirty := map[string]bool{}
	mark := func(project, app string) {
		mu <- struct{}{}
		dirty[project+"/"+app] = true
		<-mu
		poke()
	}
	changed := func(o api.Object) {
		switch x := o.(type) {
		case *api.App:
			mark(x.Metadata.Project, x.Metadata.Name)
		case *api.Pod:
			if x.Spec.App != "" {
				mark(x.Metadata.Project, x.Spec.App)
			}
		}
	}
	for _, k := range []struct {
		kind api.KindInfo
		rv   string
	}{{appKind, "apps"}, {podKind, "pods"}} {
		if err := follow(ctx, cl.cl, k.kind, "", since[k.rv], ca, changed, gone); err != nil {
			c.apiFailure(w, r, err)
			return
		}
	}
	s := startSSE(w)
	pump(ctx, s, dirtyCh, goneCh, nil, func() error {
		mu <- struct{}{}
		keys := dirty
		dirty = map[string]bool{}
		<-mu
		var all []api.Object
		ca.each(podKind.Kind, func(p api.Object) { all = append(all, p) })
		by := podsByApp(all)
		var ps []patchMsg
		for k := range keys {
			project, name, _ := strings.Cut(k, "/")
			o := ca.get(appKind.Kind, project, name)
			if o == nil {
				ps = append(ps, patchMsg{ID: cardID(project, name), HTML: ""})
				continue
			}
			cd := summarise(o.(*api.App), by[k])
			section := "apps"
			if cd.Attention != "" {
				section = "attention"
			}
			ps = append(ps, patchMsg{ID: cd.ID, HTML: c.fragment("card", cd), Section: section, First: cd.Attention != ""})
		}
		return s.patches(ps)
	}, nil)
}

package console

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/telemetry"
)

// splitWindow is how far back the measured split looks.
const splitWindow = 5 * time.Minute

type routeView struct {
	page
	Route    *api.Route
	Backends []backendRow
	Window   string
}

type backendRow struct {
	Service         string
	Weight          int32
	Share, Measured float64
	Requests        int64
}

// routeViewOf sets the configured weights beside the split the router
// measured over the last splitWindow.
func routeViewOf(pg page, rt *api.Route, s *telemetry.Series) routeView {
	v := routeView{page: pg, Route: rt, Window: splitWindow.String()}
	var sum int32
	var total int64
	for _, b := range append([]api.RouteBackend{rt.Spec.To}, rt.Spec.AlternateBackends...) {
		w := api.DefaultRouteWeight
		if b.Weight != nil {
			w = *b.Weight
		}
		row := backendRow{Service: b.Service, Weight: w}
		if s != nil {
			route, svc := rt.Metadata.Project+"/"+rt.Metadata.Name, rt.Metadata.Project+"/"+b.Service
			for _, p := range s.Query(func(k telemetry.SeriesKey) bool { return k.Route == route && k.Service == svc }, splitWindow, splitWindow) {
				row.Requests += p.Requests
			}
		}
		sum += w
		total += row.Requests
		v.Backends = append(v.Backends, row)
	}
	for i := range v.Backends {
		if sum > 0 {
			v.Backends[i].Share = float64(v.Backends[i].Weight) * 100 / float64(sum)
		}
		if total > 0 {
			v.Backends[i].Measured = float64(v.Backends[i].Requests) * 100 / float64(total)
		}
	}
	return v
}

func (c *Console) routePage(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	o, err := cl.cl.Get(r.Context(), routeKind, project, name)
	if err != nil {
		c.apiFailure(w, r, err)
		return
	}
	pg := c.page(r, cl, "Route "+name, fmt.Sprintf("/console/p/%s/routes/%s/stream?rv=routes:%d", project, name, o.GetMeta().ResourceVersion))
	c.render(w, "route", routeViewOf(pg, o.(*api.Route), c.opts.Series))
}

func (c *Console) routeStream(w http.ResponseWriter, r *http.Request, cl caller) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	project, name := r.PathValue("project"), r.PathValue("name")
	ca, dirty, goneCh, ok := c.followObject(ctx, w, r, cl, routeKind, "routes")
	if !ok {
		return
	}
	pg := c.page(r, cl, "", "")
	s := startSSE(w)
	render := func() error {
		o := ca.get(routeKind.Kind, project, name)
		if o == nil {
			return s.send("reload", "", "")
		}
		return s.patches([]patchMsg{{ID: "route-live", HTML: `<div id="route-live">` + c.fragment("route-live", routeViewOf(pg, o.(*api.Route), c.opts.Series)) + `</div>`}})
	}
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	pump(ctx, s, dirty, goneCh, t.C, render, render)
}

// routeWeights sets a route's backend weights, as `slipway set
// route-backends ROUTE SVC=W...` does: one update of the Route.
func (c *Console) routeWeights(w http.ResponseWriter, r *http.Request, cl caller) {
	project, name := r.PathValue("project"), r.PathValue("name")
	if err := r.ParseForm(); err != nil {
		c.answer(w, r, http.StatusBadRequest, "cannot read the form")
		return
	}
	want := map[string]int32{}
	for k, vs := range r.PostForm {
		svc, ok := strings.CutPrefix(k, "weight.")
		if !ok || len(vs) == 0 {
			continue
		}
		n, err := strconv.Atoi(vs[0])
		if err != nil || n < 0 || n > int(api.MaxRouteWeight) {
			c.answer(w, r, http.StatusBadRequest, fmt.Sprintf("invalid weight %q for service %s: must be an integer from 0 to %d", vs[0], svc, api.MaxRouteWeight))
			return
		}
		want[svc] = int32(n)
	}
	ctx := r.Context()
	for attempt := 0; ; attempt++ {
		o, err := cl.cl.Get(ctx, routeKind, project, name)
		if err != nil {
			c.apiFailure(w, r, err)
			return
		}
		rt := o.(*api.Route)
		set := func(b *api.RouteBackend) {
			if n, ok := want[b.Service]; ok {
				b.Weight = &n
			}
		}
		set(&rt.Spec.To)
		for i := range rt.Spec.AlternateBackends {
			set(&rt.Spec.AlternateBackends[i])
		}
		_, err = cl.cl.Update(ctx, rt)
		if api.IsConflict(err) && attempt < 5 {
			continue
		}
		if err != nil {
			c.apiFailure(w, r, err)
			return
		}
		break
	}
	c.opts.Logger.Info("console action", "user", cl.who.Name, "route", project+"/"+name, "action", "set weights")
	c.answer(w, r, http.StatusOK, fmt.Sprintf("route/%s backends updated", name))
}

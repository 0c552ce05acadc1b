package console

import (
	"context"
	"net/http"
	"sync"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/client"
)

// cache holds the objects of a few kinds, as one page's stream follows
// them through the API's watches: the page's state is summarised here, on
// the server, and only what changed is sent to the browser.
type cache struct {
	mu   sync.Mutex
	objs map[string]map[string]api.Object // kind → "project/name" → object
}

func newCache() *cache { return &cache{objs: map[string]map[string]api.Object{}} }

func key(o api.Object) string { m := o.GetMeta(); return m.Project + "/" + m.Name }

func (c *cache) set(kind string, objs []api.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]api.Object, len(objs))
	for _, o := range objs {
		m[key(o)] = o
	}
	c.objs[kind] = m
}

func (c *cache) apply(kind string, ev client.WatchEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.objs[kind]
	if m == nil {
		m = map[string]api.Object{}
		c.objs[kind] = m
	}
	k := key(ev.Object)
	if ev.Type == client.Deleted {
		delete(m, k)
	} else {
		m[k] = ev.Object
	}
}

// each calls f on every object of a kind (under the lock: f must not
// call the cache).
func (c *cache) each(kind string, f func(api.Object)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.objs[kind] {
		f(o)
	}
}

func (c *cache) get(kind, project, name string) api.Object {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.objs[kind][project+"/"+name]
}

// follow lists kind in project ("" for all) into the cache, then watches
// it from since (the revision the page was rendered at, so nothing
// between the page and its stream is missed) or else from the list, and
// calls changed for every object an event names. Events at or before the
// list's revision are in the list already and only mark their object
// changed. It returns once the list is in the cache; the watch runs until
// ctx ends, resuming where it stopped when a stream breaks, and calls gone
// when the API can no longer resume (the page should reload).
func follow(ctx context.Context, cl *client.Client, kind api.KindInfo, project string, since int64, c *cache, changed func(api.Object), gone func()) error {
	objs, rv, err := cl.List(ctx, kind, project, "")
	if err != nil {
		return err
	}
	c.set(kind.Kind, objs)
	from := rv
	if since > 0 && since < rv {
		from = since
	}
	go func() {
		last := from
		for ctx.Err() == nil {
			ch, err := cl.Watch(ctx, kind, project, last, "")
			if err != nil {
				if api.ReasonOf(err) == api.ReasonGone {
					gone()
					return
				}
				return
			}
			for ev := range ch {
				switch ev.Type {
				case client.Error:
					if ev.Err != nil && ev.Err.Reason == api.ReasonGone {
						gone()
						return
					}
				case client.Bookmark:
					last = max(last, ev.Object.GetMeta().ResourceVersion)
				default:
					erv := ev.Object.GetMeta().ResourceVersion
					if erv > rv {
						c.apply(kind.Kind, ev)
					}
					last = max(last, erv)
					changed(ev.Object)
				}
			}
		}
	}()
	return nil
}

// followObject follows the one object a page shows (its kind's watch from
// the revision the page was rendered at, query parameter rv[param]): dirty
// is poked when that object changes, gone closes when the watch ends. On
// an error it has answered the request and ok is false.
func (c *Console) followObject(ctx context.Context, w http.ResponseWriter, r *http.Request, cl caller, kind api.KindInfo, param string) (ca *cache, dirty, gone chan struct{}, ok bool) {
	project, name := r.PathValue("project"), r.PathValue("name")
	ca = newCache()
	dirty, poke := signal()
	gone, goneFn := goneOnce()
	err := follow(ctx, cl.cl, kind, project, revs(r.URL.Query().Get("rv"))[param], ca, func(o api.Object) {
		if o.GetMeta().Name == name {
			poke()
		}
	}, goneFn)
	if err != nil {
		c.apiFailure(w, r, err)
		return nil, nil, nil, false
	}
	return ca, dirty, gone, true
}

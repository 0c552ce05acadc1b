package router

import (
	"strings"
)

// randSource is the randomness selection needs; *math/rand/v2.Rand has it.
// The Router uses the package-level functions (safe for concurrent use);
// tests pass a seeded source.
type randSource interface {
	IntN(n int) int
	Int64N(n int64) int64
}

// Pick is the outcome of selection. Sticky is the affinity cookie value
// to set ("" when none is to be set).
type Pick struct {
	Revision *Revision
	Endpoint *Endpoint
	Sticky   string
}

// choose selects a revision and endpoint of r for req: a match rule first;
// else the revision named by the client's affinity cookie while it has a
// ready endpoint; else a weighted choice between backends (weights 0-256)
// and, within the backend, between revisions. Within a revision the
// endpoint is the less loaded of two picked at random (power of two
// choices on in-flight requests). ex names what is never chosen:
// addresses already tried and, when set, endpoints passive health ejected. A zero pick (nil ep) means no endpoint is
// ready: the caller answers 503.
func (r *Route) choose(req RequestView, rnd randSource, ex avoid) Pick {
	for _, m := range r.match {
		if !m.matches(req) {
			continue
		}
		b := r.backends[m.backend]
		if m.revision != 0 {
			for _, v := range b.revisions {
				if v.Number == m.revision {
					if ep := v.p2c(rnd, ex); ep != nil {
						return Pick{Revision: v, Endpoint: ep}
					}
				}
			}
			continue
		}
		if v := b.chooseRevision(rnd, ex); v != nil {
			return Pick{Revision: v, Endpoint: v.p2c(rnd, ex)}
		}
	}
	var prev string
	if name := r.Affinity.CookieName; name != "" {
		if val, ok := req.CookieValue(name); ok {
			prev = val
			if p, ok := r.sticky(prev, rnd, ex); ok {
				return p
			}
		}
	}
	var total int64
	for _, b := range r.backends {
		if b.weight > 0 && b.ready(ex) {
			total += int64(b.weight)
		}
	}
	if total == 0 {
		return Pick{}
	}
	n := rnd.Int64N(total)
	for _, b := range r.backends {
		if b.weight <= 0 || !b.ready(ex) {
			continue
		}
		if n -= int64(b.weight); n < 0 {
			v := b.chooseRevision(rnd, ex)
			p := Pick{Revision: v, Endpoint: v.p2c(rnd, ex)}
			if r.Affinity.CookieName != "" {
				if val := v.cookie + "." + p.Endpoint.cookie; val != prev {
					p.Sticky = val
				}
			}
			return p
		}
	}
	return Pick{} // unreachable: n < total
}

// sticky resolves an affinity cookie "<backend>.<revision>.<endpoint>":
// the revision while it has a ready endpoint, and the endpoint itself
// while it is one of them.
func (r *Route) sticky(val string, rnd randSource, ex avoid) (Pick, bool) {
	i := strings.LastIndexByte(val, '.')
	if i < 0 {
		return Pick{}, false
	}
	v := r.byCookie[val[:i]]
	if v == nil {
		return Pick{}, false
	}
	for _, ep := range v.endpoints {
		if ep.cookie == val[i+1:] && !ex.skips(ep) {
			return Pick{Revision: v, Endpoint: ep}, true
		}
	}
	ep := v.p2c(rnd, ex)
	if ep == nil {
		return Pick{}, false
	}
	return Pick{Revision: v, Endpoint: ep, Sticky: v.cookie + "." + ep.cookie}, true
}

func (m *matcher) matches(req RequestView) bool {
	var vals []string
	switch m.kind {
	case MatchHeader:
		vals = req.HeaderValues(m.name)
	case MatchCookie:
		vals = req.CookieValues(m.name)
	case MatchQuery:
		vals = req.QueryValues(m.name)
	}
	for _, v := range vals {
		if m.re != nil && m.re.MatchString(v) || m.re == nil && v == m.value {
			return true
		}
	}
	return false
}

// avail counts v's endpoints that ex does not skip.
func (v *Revision) avail(ex avoid) int {
	n := len(v.endpoints)
	if ex.none() {
		return n
	}
	for _, ep := range v.endpoints {
		if ex.skips(ep) {
			n--
		}
	}
	return n
}

func (b *backend) ready(ex avoid) bool {
	for _, v := range b.revisions {
		if v.avail(ex) > 0 {
			return true
		}
	}
	return false
}

// byWeight reports whether chooseRevision draws by the revision weights:
// when the backend has them and a weighted revision is ready (ex
// excluded); else it draws by the counts of ready endpoints.
func (b *backend) byWeight(ex avoid) bool {
	if !b.weighted {
		return false
	}
	for _, v := range b.revisions {
		if v.weight > 0 && v.avail(ex) > 0 {
			return true
		}
	}
	return false
}

// drawWeight is v's weight in the draw (see byWeight). A method rather
// than a closure: it runs for every request, which must not allocate.
func (v *Revision) drawWeight(ex avoid, byWeight bool) int64 {
	n := v.avail(ex)
	if !byWeight {
		return int64(n)
	}
	if n == 0 {
		return 0
	}
	return int64(v.weight)
}

// chooseRevision draws a revision by drawWeight; nil when none is ready.
func (b *backend) chooseRevision(rnd randSource, ex avoid) *Revision {
	w := b.byWeight(ex)
	var total int64
	for _, v := range b.revisions {
		total += v.drawWeight(ex, w)
	}
	if total == 0 {
		return nil
	}
	n := rnd.Int64N(total)
	for _, v := range b.revisions {
		if n -= v.drawWeight(ex, w); n < 0 {
			return v
		}
	}
	return nil
}

// revisionShares are the revisions' percentages of the backend's traffic.
func (b *backend) revisionShares() []float64 {
	w := b.byWeight(avoid{})
	var total int64
	for _, v := range b.revisions {
		total += v.drawWeight(avoid{}, w)
	}
	out := make([]float64, len(b.revisions))
	for i, v := range b.revisions {
		if total > 0 {
			out[i] = 100 * float64(v.drawWeight(avoid{}, w)) / float64(total)
		}
	}
	return out
}

// p2c returns the less loaded of two distinct endpoints picked at random
// (the first on a tie), none that ex skips; nil when there is none.
func (v *Revision) p2c(rnd randSource, ex avoid) *Endpoint {
	eps := v.endpoints
	if v.avail(ex) != len(eps) {
		eps = make([]*Endpoint, 0, len(eps))
		for _, ep := range v.endpoints {
			if !ex.skips(ep) {
				eps = append(eps, ep)
			}
		}
	}
	switch len(eps) {
	case 0:
		return nil
	case 1:
		return eps[0]
	}
	i := rnd.IntN(len(eps))
	j := rnd.IntN(len(eps) - 1)
	if j >= i {
		j++
	}
	if eps[j].inflight.Load() < eps[i].inflight.Load() {
		return eps[j]
	}
	return eps[i]
}

// sameRevision picks an endpoint ex does not skip of the revision of r that
// is v, or the same service and revision number as v (v may be of an older
// table); a zero pick when there is none.
func (r *Route) sameRevision(v *Revision, rnd randSource, ex avoid) Pick {
	for _, b := range r.backends {
		if b.Service != v.Backend.Service {
			continue
		}
		for _, w := range b.revisions {
			if w.Number == v.Number {
				if ep := w.p2c(rnd, ex); ep != nil {
					return Pick{Revision: w, Endpoint: ep}
				}
			}
		}
	}
	return Pick{}
}

package router

import (
	"fmt"
	"net/netip"
)

// MaxMirrorsInFlight bounds the shadow requests in flight across the
// router: a slow or dead mirror must cost the primary traffic nothing, so
// when every slot is taken a copy is dropped, never waited for.
const MaxMirrorsInFlight = 64

// MirrorConfig sends shadow copies of Percent percent of a route's
// requests to the ready endpoints of Service; their answers are dropped.
// A request whose body streams (not buffered, see RetryBufferBytes) and a
// WebSocket are not mirrored.
type MirrorConfig struct {
	Service   string
	Percent   int32 // 0-100
	Endpoints []netip.AddrPort
}

type mirror struct {
	service string
	percent int
	rev     *Revision // the endpoints, for p2c
}

func (t *Table) buildMirror(mc MirrorConfig) (*mirror, error) {
	if mc.Percent < 0 || mc.Percent > 100 {
		return nil, fmt.Errorf("mirror (%s): percent %d must be 0-100", mc.Service, mc.Percent)
	}
	m := &mirror{service: mc.Service, percent: int(mc.Percent), rev: &Revision{}}
	for _, a := range mc.Endpoints {
		if !a.IsValid() || a.Port() == 0 {
			return nil, fmt.Errorf("mirror (%s): invalid endpoint %q", mc.Service, a)
		}
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		ep := t.members[a]
		if ep == nil {
			ep = &Endpoint{Addr: a, cookie: hashString(a.String())}
			t.members[a] = ep
		}
		m.rev.endpoints = append(m.rev.endpoints, ep)
	}
	return m, nil
}

// Mirrors reports whether a request of rt is to be mirrored: rt has a
// mirror and its share (a draw) says so.
func (r *Router) Mirrors(rt *Route) bool {
	m := rt.Mirror
	return m != nil && m.percent > 0 && (m.percent >= 100 || r.rnd.IntN(100) < m.percent)
}

// AcquireMirror takes a slot for a shadow copy of a request of rt and
// picks an endpoint of rt's mirror in the current table, counting the copy
// in flight on it under the table's gate, as Acquire does (so WaitDrained
// counts it too). It returns nil, and holds nothing, when every slot is
// taken (the copy is dropped, and counted so) or the mirror has no
// endpoint; else releaseMirror ends the copy.
func (r *Router) AcquireMirror(rt *Route) *Endpoint {
	select {
	case r.mirrorSlots <- struct{}{}:
	default:
		rt.stats.mirrorsDropped.Add(1)
		return nil
	}
	t := r.tables.Pick()
	var ep *Endpoint
	if cur := t.routes[rt.Key]; cur != nil && cur.Mirror != nil {
		if ep = cur.Mirror.rev.p2c(r.rnd, avoid{}); ep != nil {
			ep.inflight.Add(1)
		}
	}
	r.tables.Done(t)
	if ep == nil {
		<-r.mirrorSlots
		return nil
	}
	rt.stats.mirrored.Add(1)
	return ep
}

// ReleaseMirror ends a shadow copy acquireMirror gave ep.
func (r *Router) ReleaseMirror(ep *Endpoint) {
	r.Release(ep)
	<-r.mirrorSlots
}

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
	rev     *revision // the endpoints, for p2c
}

func (t *Table) buildMirror(mc MirrorConfig) (*mirror, error) {
	if mc.Percent < 0 || mc.Percent > 100 {
		return nil, fmt.Errorf("mirror (%s): percent %d must be 0-100", mc.Service, mc.Percent)
	}
	m := &mirror{service: mc.Service, percent: int(mc.Percent), rev: &revision{}}
	for _, a := range mc.Endpoints {
		if !a.IsValid() || a.Port() == 0 {
			return nil, fmt.Errorf("mirror (%s): invalid endpoint %q", mc.Service, a)
		}
		a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
		ep := t.members[a]
		if ep == nil {
			ep = &endpoint{addr: a, cookie: hashString(a.String())}
			t.members[a] = ep
		}
		m.rev.endpoints = append(m.rev.endpoints, ep)
	}
	return m, nil
}

// acquireMirror picks an endpoint of the mirror of the route with key in
// the current table and counts the shadow request in flight on it, under
// the table's gate, as acquire does (so WaitDrained counts it too).
func (r *Router) acquireMirror(key string) *endpoint {
	t := r.tables.Pick()
	defer r.tables.Done(t)
	var ep *endpoint
	if rt := t.routes[key]; rt != nil && rt.mirror != nil {
		if ep = rt.mirror.rev.p2c(r.rnd, avoid{}); ep != nil {
			ep.inflight.Add(1)
		}
	}
	return ep
}

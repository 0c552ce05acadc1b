// Package dataplane feeds the data plane from the store: it watches
// Services and Endpoints and turns them into the service proxy's table. It
// is the only place where the proxy, which knows nothing of the store, and
// the registry meet.
package dataplane

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/proxy"
	"slipway.dev/slipway/internal/registry"
)

var (
	serviceKind   = mustKind("Service")
	endpointsKind = mustKind("Endpoints")
)

func mustKind(name string) api.KindInfo {
	k, ok := api.LookupKind(name)
	if !ok {
		panic("dataplane: no kind " + name)
	}
	return k
}

// relistDelay spaces attempts to list again after a watch failed.
const relistDelay = 500 * time.Millisecond

// Services keeps Proxy's table equal to the Services (with a clusterIP)
// and the ready addresses of their Endpoints. Set the fields, then Run.
type Services struct {
	Reg   *registry.Registry
	Proxy *proxy.Proxy
	Log   *slog.Logger
	// Now stamps condition transitions (time.Now when nil).
	Now func() time.Time
	// Applied, when set, is called after each table is applied (the
	// first: the table built once every kind was listed).
	Applied func()
	// ListenRetry is how soon a VIP:port that could not be listened on is
	// tried again when nothing else changes (DefaultListenRetry when 0).
	ListenRetry time.Duration
}

// DefaultListenRetry is Services.ListenRetry's default.
const DefaultListenRetry = 5 * time.Second

// Run mirrors the store into the proxy until ctx ends (nil) or the proxy
// is closed (proxy.ErrClosed). A burst of changes is coalesced: while one
// table is being applied, any number of changes make one more. Errors
// Apply reports about single entries (a UDP port, a VIP:port already in
// use) are logged, once per distinct message, and the rest is served; a
// VIP:port it cannot listen on is tried again every ListenRetry, and the
// service has a VIPBound condition (False) saying so until it is.
func (s *Services) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.ListenRetry <= 0 {
		s.ListenRetry = DefaultListenRetry
	}
	var lastErr string
	c := newCache(s.Reg, s.Log, serviceKind, endpointsKind)
	var retry *time.Timer
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	return c.serve(ctx, func(ctx context.Context, snap map[string][]api.Object) error {
		services := typed[*api.Service](snap[serviceKind.Kind])
		t := Table(services, typed[*api.Endpoints](snap[endpointsKind.Kind]))
		err := s.Proxy.Apply(t)
		if s.Applied != nil {
			s.Applied()
		}
		switch msg := errString(err); {
		case msg == lastErr:
		case err != nil:
			s.Log.Warn("service proxy table applied with errors", "err", err)
			lastErr = msg
		default:
			s.Log.Info("service proxy table applied without errors")
			lastErr = ""
		}
		if errors.Is(err, proxy.ErrClosed) {
			return err
		}
		conds := VIPConditions(err)
		s.writeVIPConditions(ctx, services, conds)
		if retry != nil {
			retry.Stop()
		}
		if len(conds) > 0 {
			retry = time.AfterFunc(s.ListenRetry, c.changed)
		}
		return nil
	})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Table is the proxy table for the given Services and Endpoints: one entry
// per service with a valid clusterIP, one port per service port, and as
// endpoints the ready addresses' resolved target ports. Entries are sorted
// by project/name so that equal inputs give equal tables.
func Table(services []*api.Service, endpoints []*api.Endpoints) proxy.Table {
	eps := make(map[string]*api.Endpoints, len(endpoints))
	for _, e := range endpoints {
		eps[objKey(e)] = e
	}
	var t proxy.Table
	for _, svc := range services {
		vip, err := netip.ParseAddr(svc.Status.ClusterIP)
		if err != nil {
			continue // not allocated yet
		}
		key := objKey(svc)
		ps := proxy.Service{Key: key, VIP: vip}
		for _, sp := range svc.Spec.Ports {
			if sp.Port < 1 || sp.Port > 65535 {
				continue
			}
			proto := cmp.Or(sp.Protocol, api.ProtocolTCP)
			pp := proxy.Port{Port: uint16(sp.Port), Protocol: proto}
			if e := eps[key]; e != nil {
				pp.Endpoints = readyEndpoints(e, sp.Port, proto)
			}
			ps.Ports = append(ps.Ports, pp)
		}
		t.Services = append(t.Services, ps)
	}
	slices.SortFunc(t.Services, func(a, b proxy.Service) int { return cmp.Compare(a.Key, b.Key) })
	return t
}

func readyEndpoints(e *api.Endpoints, port int32, proto string) []netip.AddrPort {
	var out []netip.AddrPort
	eachReady(e, port, proto, func(_ int64, a netip.AddrPort) { out = append(out, a) })
	return out
}

// eachReady calls fn with the revision and address of each ready endpoint
// of e on the service port (port, proto): the pod's IP and the target
// port the services controller resolved. The proxy's table and the
// router's both take their endpoints from here.
func eachReady(e *api.Endpoints, port int32, proto string, fn func(rev int64, addr netip.AddrPort)) {
	for _, a := range e.Addresses {
		if !a.Ready {
			continue
		}
		ip, err := netip.ParseAddr(a.IP)
		if err != nil {
			continue
		}
		for _, p := range a.Ports {
			if p.Port == port && cmp.Or(p.Protocol, api.ProtocolTCP) == proto && p.TargetPort >= 1 && p.TargetPort <= 65535 {
				fn(a.Revision, netip.AddrPortFrom(ip, uint16(p.TargetPort)))
			}
		}
	}
}

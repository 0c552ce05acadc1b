package dataplane

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/proxy"
)

// ConditionVIPBound is the Service condition the data plane writes:
// whether the service proxy listens on every TCP port of the clusterIP.
const ConditionVIPBound = "VIPBound"

// VIPBound reasons.
const (
	VIPBoundListening = "Listening"
	// VIPAddressInUse: another socket holds a VIP:port, most often another
	// Slipway on this machine using the same --service-ip-range.
	VIPAddressInUse = "AddressInUse"
	// VIPListenFailed: any other refusal to listen.
	VIPListenFailed = "ListenFailed"
)

// VIPConditions is the VIPBound condition of every service of the table
// with a TCP port, from the errors the proxy's Apply returned: True while
// it listens on every VIP:port, else False naming each address it cannot
// listen on and why (and, when /proc tells, who holds it).
func VIPConditions(t proxy.Table, applyErr error) map[string]api.Condition {
	failed := map[string][]*proxy.ListenError{}
	for _, err := range flatten(applyErr) {
		if le, ok := errors.AsType[*proxy.ListenError](err); ok {
			failed[le.Service] = append(failed[le.Service], le)
		}
	}
	conds := map[string]api.Condition{}
	for _, s := range t.Services {
		var addrs []string
		for _, p := range s.Ports {
			if (p.Protocol == "" || p.Protocol == api.ProtocolTCP) && p.Port != 0 {
				addrs = append(addrs, netip.AddrPortFrom(s.VIP.Unmap(), p.Port).String())
			}
		}
		if len(addrs) == 0 {
			continue
		}
		les := failed[s.Key]
		if len(les) == 0 {
			conds[s.Key] = api.Condition{Type: ConditionVIPBound, Status: api.ConditionTrue, Reason: VIPBoundListening,
				Message: "the service proxy listens on " + strings.Join(addrs, ", ")}
			continue
		}
		reason := VIPListenFailed
		msgs := make([]string, len(les))
		for i, le := range les {
			msgs[i] = listenFailure(le)
			if le.InUse() {
				reason = VIPAddressInUse
			}
		}
		slices.Sort(msgs)
		conds[s.Key] = api.Condition{Type: ConditionVIPBound, Status: api.ConditionFalse, Reason: reason,
			Message: strings.Join(msgs, "; ") + "; tried again every few seconds"}
	}
	return conds
}

func listenFailure(le *proxy.ListenError) string {
	if !le.InUse() {
		return fmt.Sprintf("cannot listen on %s: %v", le.Addr, le.Err)
	}
	switch h := le.Holder; {
	case h == nil:
		return fmt.Sprintf("cannot listen on %s: address already in use by another socket", le.Addr)
	case h.PID == os.Getpid():
		return fmt.Sprintf("cannot listen on %s: this Slipway, %s, holds it with another of its listeners (--api-addr, --http-addr or --https-addr?)", le.Addr, h.Process())
	default:
		return fmt.Sprintf("cannot listen on %s: another process holds it: %s: another Slipway on this machine may be using the same --service-ip-range", le.Addr, h.Process())
	}
}

// flatten lists the errors errors.Join put together.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []error{err}
}

// writeVIPConditions writes each service's VIPBound condition where it
// differs from the stored one (and removes it from a service that no
// longer has a VIP:port). A failed write is retried at the next change.
func (s *Services) writeVIPConditions(ctx context.Context, services []*api.Service, conds map[string]api.Condition) {
	for _, svc := range services {
		want, ok := conds[objKey(svc)]
		old := api.FindCondition(svc.Status.Conditions, ConditionVIPBound)
		next := *svc
		switch {
		case !ok && old == nil:
			continue
		case !ok:
			next.Status.Conditions = slices.DeleteFunc(slices.Clone(svc.Status.Conditions), func(c api.Condition) bool { return c.Type == ConditionVIPBound })
		case old != nil && old.Status == want.Status && old.Reason == want.Reason && old.Message == want.Message:
			continue
		default:
			next.Status.Conditions = api.SetCondition(slices.Clone(svc.Status.Conditions), want, s.Now().UTC())
		}
		if _, err := s.Reg.UpdateStatus(ctx, &next); err != nil && ctx.Err() == nil {
			s.Log.Info("cannot write service status; will retry on the next change", "service", objKey(svc), "err", err)
		}
	}
}

package dataplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/proxy"
)

// ConditionVIPBound is the Service condition the data plane writes while
// the service proxy cannot listen on a TCP port of the clusterIP (status
// False), and removes once it listens on all: a served Service carries
// none, so that every Service's status is not rewritten at each start.
const ConditionVIPBound = "VIPBound"

// VIPBound reasons.
const (
	// VIPAddressInUse: another socket holds a VIP:port, most often another
	// Slipway on this machine using the same --service-ip-range.
	VIPAddressInUse = "AddressInUse"
	// VIPListenFailed: any other refusal to listen.
	VIPListenFailed = "ListenFailed"
)

// VIPConditions is the VIPBound condition (False) of every service whose
// VIP:ports the proxy's Apply could not all listen on, by the service's
// key, from the errors Apply returned: naming each address and why (and,
// when /proc tells, who holds it).
func VIPConditions(applyErr error) map[string]api.Condition {
	failed := map[string][]*proxy.ListenError{}
	for _, err := range flatten(applyErr) {
		if le, ok := errors.AsType[*proxy.ListenError](err); ok {
			failed[le.Service] = append(failed[le.Service], le)
		}
	}
	conds := map[string]api.Condition{}
	for key, les := range failed {
		reason := VIPListenFailed
		msgs := make([]string, len(les))
		for i, le := range les {
			msgs[i] = listenFailure(le)
			if le.InUse() {
				reason = VIPAddressInUse
			}
		}
		slices.Sort(msgs)
		conds[key] = api.Condition{Type: ConditionVIPBound, Status: api.ConditionFalse, Reason: reason,
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
// differs from the stored one, and removes it from a service the proxy now
// serves. A failed write is retried at the next change.
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

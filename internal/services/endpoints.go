// Package services is the services controller: it gives every Service a
// stable virtual IP (status.clusterIP) and keeps its Endpoints object equal
// to the pods its selector picks. The service proxy (internal/proxy, fed by
// internal/dataplane) turns those records into listeners and connections;
// this package never touches a socket.
package services

import (
	"cmp"
	"net/netip"
	"slices"

	"slipway.dev/slipway/internal/api"
)

// ReasonTerminating is the reason the node agent gives a pod's Ready
// condition once the pod is to stop. Such a pod leaves every service's
// endpoints at once, before anything else of its termination happens.
const ReasonTerminating = "Terminating"

// ComputeEndpoints returns the addresses of svc: every pod of its project
// matched by its selector that has an IP, is not terminating, is not a
// rollout hook's pod, and resolves at least one service port. A pod that is not ready is listed with Ready
// false and receives no traffic. The result is sorted by IP, then pod name,
// so that an unchanged world yields an identical object.
func ComputeEndpoints(svc *api.Service, pods []*api.Pod) []api.EndpointAddress {
	var out []api.EndpointAddress
	for _, pod := range pods {
		if pod == nil || pod.Metadata.Project != svc.Metadata.Project || !selects(svc.Spec.Selector, pod.Metadata.Labels) {
			continue
		}
		if api.IsHookPod(pod) {
			continue // a one-off job: it serves nothing, whatever its labels
		}
		if _, err := netip.ParseAddr(pod.Status.PodIP); err != nil {
			continue // not started yet: nothing to connect to
		}
		if terminating(pod) {
			continue
		}
		ports := resolvePorts(svc.Spec.Ports, pod)
		if len(ports) == 0 {
			continue
		}
		out = append(out, api.EndpointAddress{
			IP:       pod.Status.PodIP,
			Pod:      pod.Metadata.Name,
			Revision: pod.Spec.Revision,
			Ready:    ready(pod),
			Ports:    ports,
		})
	}
	slices.SortFunc(out, func(a, b api.EndpointAddress) int {
		ia, _ := netip.ParseAddr(a.IP)
		ib, _ := netip.ParseAddr(b.IP)
		return cmp.Or(ia.Compare(ib), cmp.Compare(a.Pod, b.Pod))
	})
	return out
}

// selects reports whether labels carry every key=value of the selector. An
// empty selector selects nothing: validation refuses it, and a Service that
// got one anyway must not swallow every pod of the project.
func selects(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// terminating reports whether the pod is on its way out: deletion began, it
// has ended, or the node agent withdrew its readiness to stop it.
func terminating(pod *api.Pod) bool {
	if pod.Metadata.DeletionTimestamp != nil {
		return true
	}
	if pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return true
	}
	c := api.FindCondition(pod.Status.Conditions, api.PodReady)
	return c != nil && c.Status != api.ConditionTrue && c.Reason == ReasonTerminating
}

func ready(pod *api.Pod) bool {
	c := api.FindCondition(pod.Status.Conditions, api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

// resolvePorts maps each service port to a port on the pod. A numeric
// targetPort is taken as is (a process may listen on a port it did not
// declare); a named one must be declared by one of the pod's containers
// with the same protocol, otherwise the pod serves no traffic on that port.
func resolvePorts(sports []api.ServicePort, pod *api.Pod) []api.EndpointPort {
	var out []api.EndpointPort
	for _, sp := range sports {
		proto := cmp.Or(sp.Protocol, api.ProtocolTCP)
		target := sp.TargetPort.IntVal
		switch {
		case sp.TargetPort.IsString:
			target = namedPort(pod, sp.TargetPort.StrVal, proto)
		case target == 0:
			target = sp.Port // not defaulted yet: Kubernetes' default
		}
		if target < 1 || target > 65535 {
			continue
		}
		out = append(out, api.EndpointPort{Name: sp.Name, Port: sp.Port, TargetPort: target, Protocol: proto})
	}
	return out
}

func namedPort(pod *api.Pod, name, proto string) int32 {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name && cmp.Or(p.Protocol, api.ProtocolTCP) == proto {
				return p.Port
			}
		}
	}
	return 0
}

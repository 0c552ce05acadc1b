package api

import (
	"net/netip"
	"strconv"
)

// Endpoints lists the pods a Service selects, with the port each serves
// every service port on. It is named after its Service and written only by
// the services controller; the service proxy reads it. It has no status:
// the whole object is observed state.
type Endpoints struct {
	TypeMeta  `json:",inline"`
	Metadata  ObjectMeta        `json:"metadata"`
	Addresses []EndpointAddress `json:"addresses,omitempty"`
}

// GetMeta implements Object.
func (o *Endpoints) GetMeta() *ObjectMeta { return &o.Metadata }

// EndpointAddress is one selected pod. A pod that is not ready is listed
// with Ready false (so `get endpoints` can show it) and receives no
// traffic; a terminating pod is not listed at all.
type EndpointAddress struct {
	IP       string         `json:"ip"`
	Pod      string         `json:"pod,omitempty"`
	Revision int64          `json:"revision,omitempty"`
	Ready    bool           `json:"ready"`
	Ports    []EndpointPort `json:"ports,omitempty"`
}

// EndpointPort maps a service port to the port it resolved to on one pod
// (a named targetPort can resolve differently on pods of two revisions).
type EndpointPort struct {
	Name       string `json:"name,omitempty"`
	Port       int32  `json:"port"`       // the service port
	TargetPort int32  `json:"targetPort"` // the port on the pod's IP
	Protocol   string `json:"protocol,omitempty"`
}

func defaultEndpoints(e *Endpoints) {
	defaultProject(&e.Metadata)
	for i := range e.Addresses {
		for j := range e.Addresses[i].Ports {
			if p := &e.Addresses[i].Ports[j]; p.Protocol == "" {
				p.Protocol = ProtocolTCP
			}
		}
	}
}

func (v *validator) endpoints(e *Endpoints) {
	for i, a := range e.Addresses {
		ap := index("addresses", i)
		switch ip, err := netip.ParseAddr(a.IP); {
		case a.IP == "":
			v.required(child(ap, "ip"), "")
		case err != nil || ip.Zone() != "":
			v.invalid(child(ap, "ip"), a.IP, "must be a valid IP address (e.g. 127.20.0.1)")
		}
		if a.Pod != "" {
			v.label(child(ap, "pod"), a.Pod, MaxNameLength, "")
		}
		v.min(child(ap, "revision"), a.Revision, 0)
		seen := map[string]bool{}
		for j, p := range a.Ports {
			pp := index(child(ap, "ports"), j)
			if p.Name != "" {
				v.portName(child(pp, "name"), p.Name)
			}
			v.rangeOf(child(pp, "port"), int64(p.Port), 1, 65535)
			v.rangeOf(child(pp, "targetPort"), int64(p.TargetPort), 1, 65535)
			if v.oneOf(child(pp, "protocol"), p.Protocol, ProtocolTCP, ProtocolUDP) {
				k := p.Protocol + "/" + strconv.Itoa(int(p.Port))
				if seen[k] {
					v.duplicate(child(pp, "port"), p.Port)
				}
				seen[k] = true
			}
		}
	}
}

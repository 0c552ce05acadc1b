package api

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

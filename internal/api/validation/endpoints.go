package validation

import (
	"net/netip"
	"strconv"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) endpoints(e *api.Endpoints) {
	for i, a := range e.Addresses {
		ap := index("addresses", i)
		switch ip, err := netip.ParseAddr(a.IP); {
		case a.IP == "":
			v.required(child(ap, "ip"), "")
		case err != nil || ip.Zone() != "":
			v.invalid(child(ap, "ip"), a.IP, "must be a valid IP address (e.g. 127.20.0.1)")
		}
		if a.Pod != "" {
			v.label(child(ap, "pod"), a.Pod, api.MaxNameLength, "")
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
			if v.oneOf(child(pp, "protocol"), p.Protocol, api.ProtocolTCP, api.ProtocolUDP) {
				k := p.Protocol + "/" + strconv.Itoa(int(p.Port))
				if seen[k] {
					v.duplicate(child(pp, "port"), p.Port)
				}
				seen[k] = true
			}
		}
	}
}

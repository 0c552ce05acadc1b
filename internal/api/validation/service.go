package validation

import (
	"fmt"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) serviceSpec(p string, s *api.ServiceSpec) {
	sp := child(p, "selector")
	if len(s.Selector) == 0 {
		v.required(sp, "a service without a selector would select no pods (e.g. app: hello)")
	}
	v.labels(sp, s.Selector)

	pp := child(p, "ports")
	if len(s.Ports) == 0 {
		v.required(pp, "at least one port is required")
	}
	names := map[string]bool{}
	numbers := map[string]bool{}
	for i, port := range s.Ports {
		f := index(pp, i)
		switch {
		case port.Name == "" && len(s.Ports) > 1:
			v.required(child(f, "name"), "ports must be named when there is more than one")
		case port.Name != "" && v.portName(child(f, "name"), port.Name):
			if names[port.Name] {
				v.duplicate(child(f, "name"), port.Name)
			}
			names[port.Name] = true
		}
		v.rangeOf(child(f, "port"), int64(port.Port), 1, 65535)
		if v.oneOf(child(f, "protocol"), port.Protocol, api.ProtocolTCP, api.ProtocolUDP) {
			k := fmt.Sprintf("%s/%d", port.Protocol, port.Port)
			if numbers[k] {
				v.duplicate(child(f, "port"), port.Port)
			}
			numbers[k] = true
		}
		if port.TargetPort != api.FromInt(port.Port) || port.Port >= 1 && port.Port <= 65535 {
			// (A targetPort defaulted from an invalid port was just reported.)
			v.portRef(child(f, "targetPort"), port.TargetPort, nil, "")
		}
	}
}

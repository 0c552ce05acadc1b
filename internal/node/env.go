package node

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// envName turns a port or service name into an environment variable name:
// upper-cased, '-' and '.' become '_' (Kubernetes' convention).
func envName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '.':
			return '_'
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// ContainerEnv builds a container's environment: the env contract apps and
// docs rely on, the service variables of the project, then the container's
// own variables (which win, as in Kubernetes). secrets resolves a
// secretKeyRef; it returns an error naming what is missing.
func ContainerEnv(pod *api.Pod, c api.Container, ip netip.Addr, services []*api.Service, secrets func(name, key string) (string, error)) ([]string, error) {
	vars := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := vars[k]; !ok {
			order = append(order, k)
		}
		vars[k] = v
	}
	for _, s := range services {
		if s.Status.ClusterIP == "" || len(s.Spec.Ports) == 0 {
			continue
		}
		n := envName(s.Metadata.Name)
		set(n+"_SERVICE_HOST", s.Status.ClusterIP)
		set(n+"_SERVICE_PORT", strconv.Itoa(int(s.Spec.Ports[0].Port)))
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				set(n+"_SERVICE_PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
			}
		}
	}
	set("HOST", bindHost(ip))
	set("POD_IP", ip.String())
	set("POD_NAME", pod.Metadata.Name)
	set("SLIPWAY_PROJECT", pod.Metadata.Project)
	set("SLIPWAY_APP", pod.Spec.App)
	if pod.Spec.Revision != 0 {
		set("SLIPWAY_REVISION", strconv.FormatInt(pod.Spec.Revision, 10))
	}
	if len(c.Ports) > 0 {
		set("PORT", strconv.Itoa(int(c.Ports[0].Port)))
	}
	for _, p := range c.Ports {
		if p.Name != "" {
			set("PORT_"+envName(p.Name), strconv.Itoa(int(p.Port)))
		}
	}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			ref := e.ValueFrom.SecretKeyRef
			val, err := secrets(ref.Name, ref.Key)
			if err != nil {
				return nil, fmt.Errorf("env %s: %w", e.Name, err)
			}
			v = val
		}
		set(e.Name, v)
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+vars[k])
	}
	return env, nil
}

// bindHost is the address an app should listen on. A pod on a loopback
// address (the process runtime) shares the host's network with every other
// pod, so it binds its own IP. A pod on any other address (the Docker
// runtime's bridge network) has a network namespace of its own: binding
// all of it lets the pod's other containers reach it on localhost too.
func bindHost(ip netip.Addr) string {
	if ip.IsLoopback() || !ip.IsValid() {
		return ip.String()
	}
	if ip.Is4() {
		return "0.0.0.0"
	}
	return "::"
}

// sortServices orders services by name so that the environment is stable.
func sortServices(s []*api.Service) {
	sort.Slice(s, func(i, j int) bool { return s[i].Metadata.Name < s[j].Metadata.Name })
}

// resolvePort finds a probe's port: a number, or the name of one of the
// container's ports.
func resolvePort(p api.IntOrString, c api.Container) (uint16, error) {
	if !p.IsString {
		if p.IntVal < 1 || p.IntVal > 65535 {
			return 0, fmt.Errorf("port %d out of range", p.IntVal)
		}
		return uint16(p.IntVal), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return uint16(cp.Port), nil
		}
	}
	return 0, fmt.Errorf("container %q has no port named %q", c.Name, p.StrVal)
}

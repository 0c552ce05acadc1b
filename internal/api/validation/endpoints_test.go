package validation_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/api/validation"
)

func validEndpoints() *api.Endpoints {
	return &api.Endpoints{
		Metadata: api.ObjectMeta{Name: "hello"},
		Addresses: []api.EndpointAddress{
			{IP: "127.20.0.7", Pod: "hello-1-abcde", Revision: 1, Ready: true, Ports: []api.EndpointPort{
				{Name: "http", Port: 80, TargetPort: 8080},
				{Name: "dns", Port: 53, TargetPort: 5353, Protocol: "UDP"},
			}},
			{IP: "::1", Ports: []api.EndpointPort{{Port: 80, TargetPort: 8080}}},
		},
	}
}

func TestSetDefaultsEndpoints(t *testing.T) {
	e := validEndpoints()
	api.SetDefaults(e)
	if e.Kind != "Endpoints" || e.APIVersion != api.Version || e.Metadata.Project != api.DefaultProject {
		t.Errorf("type/meta = %+v %+v", e.TypeMeta, e.Metadata)
	}
	var protos []string
	for _, a := range e.Addresses {
		for _, p := range a.Ports {
			protos = append(protos, p.Protocol)
		}
	}
	if diff := cmp.Diff([]string{"TCP", "UDP", "TCP"}, protos); diff != "" {
		t.Errorf("protocols (-want +got):\n%s", diff)
	}
	if errs := validation.Validate(e); len(errs) != 0 {
		t.Errorf("valid endpoints rejected: %v", messages(errs))
	}
	if k, ok := api.LookupKind("ep"); !ok || k.Kind != "Endpoints" || k.Status || !k.Projects {
		t.Errorf("LookupKind(ep) = %+v, %v", k, ok)
	}
}

func TestValidateEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(e *api.Endpoints)
		want   []string
	}{
		{"bad name", func(e *api.Endpoints) { e.Metadata.Name = "Hello" }, []string{
			`metadata.name: Invalid value: "Hello": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`,
		}},
		{"bad addresses", func(e *api.Endpoints) {
			e.Addresses[0].IP = "127.20.0.300"
			e.Addresses[0].Pod = "Pod_1"
			e.Addresses[1].IP = ""
		}, []string{
			`addresses[0].ip: Invalid value: "127.20.0.300": must be a valid IP address (e.g. 127.20.0.1)`,
			`addresses[0].pod: Invalid value: "Pod_1": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc')`,
			`addresses[1].ip: Required value`,
		}},
		{"bad ports", func(e *api.Endpoints) {
			e.Addresses[0].Ports[0].Port = 0
			e.Addresses[0].Ports[0].TargetPort = 70000
			e.Addresses[0].Ports[1].Protocol = "SCTP"
			e.Addresses[1].Ports = append(e.Addresses[1].Ports, api.EndpointPort{Port: 80, TargetPort: 1, Protocol: "TCP"})
		}, []string{
			`addresses[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
			`addresses[0].ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive`,
			`addresses[0].ports[1].protocol: Unsupported value: "SCTP": supported values: "TCP", "UDP"`,
			`addresses[1].ports[1].port: Duplicate value: 80`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := validEndpoints()
			api.SetDefaults(e)
			tc.mutate(e)
			if diff := cmp.Diff(tc.want, messages(validation.Validate(e)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

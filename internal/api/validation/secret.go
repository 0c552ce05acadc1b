package validation

import (
	"fmt"

	"slipway.dev/slipway/internal/api"
)

func (v *validator) secret(s *api.Secret) {
	v.maxLen("type", s.Type, 253)
	total := 0
	for _, k := range sortedKeys(s.Data) {
		switch {
		case len(k) > 253:
			v.tooLong(key("data", k[:32]+"..."), 253, "")
		case !secretKeyRe.MatchString(k):
			v.invalid(key("data", k), k, "key: "+secretKeyMsg)
		}
		total += len(k) + len(s.Data[k])
	}
	// Never the values themselves, in no message: only their total size.
	if total > api.MaxSecretBytes {
		v.add(api.FieldTooLong, "data", nil, fmt.Sprintf("may not be longer than %d bytes in total (keys and values)", api.MaxSecretBytes))
	}
}

func (v *validator) event(e *api.Event) {
	ref := e.InvolvedObject
	if ref.Kind == "" {
		v.required("involvedObject.kind", "")
	} else {
		v.oneOf("involvedObject.kind", ref.Kind, api.KindNames()...)
	}
	if ref.Name == "" {
		v.required("involvedObject.name", "")
	}
	if ref.Project != "" {
		v.label("involvedObject.project", ref.Project, api.MaxNameLength, "")
	}
	if e.Type != "" {
		v.oneOf("type", e.Type, api.EventNormal, api.EventWarning)
	}
	v.maxLen("reason", e.Reason, 128)
	v.maxLen("message", e.Message, api.MaxEventMessageBytes)
	v.maxLen("source", e.Source, 253)
	v.min("count", int64(e.Count), 0)
}

func (v *validator) configMap(c *api.ConfigMap) {
	total := 0
	for _, k := range sortedKeys(c.Data) {
		switch {
		case len(k) > 253:
			v.tooLong(key("data", k[:32]+"..."), 253, "")
		case !secretKeyRe.MatchString(k):
			v.invalid(key("data", k), k, "key: a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name')")
		}
		total += len(k) + len(c.Data[k])
	}
	if total > api.MaxSecretBytes {
		v.add(api.FieldTooLong, "data", nil, fmt.Sprintf("may not be longer than %d bytes in total (keys and values)", api.MaxSecretBytes))
	}
}

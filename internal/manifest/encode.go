package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"

	"go.yaml.in/yaml/v3"

	"slipway.dev/slipway/internal/api"
)

// list is what several objects are written as, like kubectl's List.
type list struct {
	APIVersion string       `json:"apiVersion"`
	Kind       string       `json:"kind"`
	Items      []api.Object `json:"items"`
}

func wrap(objs []api.Object) any {
	if len(objs) == 1 {
		return objs[0]
	}
	return list{APIVersion: api.Version, Kind: "List", Items: append([]api.Object{}, objs...)}
}

// EncodeJSON writes one object as an indented JSON object, and any other
// number of objects as a List. Secrets are written as they are: callers that
// show objects to people call RedactSecrets first.
func EncodeJSON(objs ...api.Object) ([]byte, error) {
	b, err := json.MarshalIndent(wrap(objs), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// EncodeYAML writes one object as a YAML document, and any other number of
// objects as a List. Keys come in the order of the JSON form (the order of
// the struct fields), so the output reads like the manifests users write.
func EncodeYAML(objs ...api.Object) ([]byte, error) {
	return encodeYAML(wrap(objs))
}

// EncodeYAMLList writes objs as a List whatever their number, as
// `kubectl get KIND -o yaml` does.
func EncodeYAMLList(objs []api.Object) ([]byte, error) {
	return encodeYAML(list{APIVersion: api.Version, Kind: "List", Items: append([]api.Object{}, objs...)})
}

func encodeYAML(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	docs, err := jsonDocs(b, 1<<30, 1)
	if err != nil || len(docs) != 1 {
		return nil, fmt.Errorf("manifest: re-reading own JSON: %v", err)
	}
	quoteOldScalars(docs[0])
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(docs[0]); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// RedactSecrets returns obj with every value of a Secret's data replaced by
// `<redacted: N bytes>`, as a copy that shares nothing mutable with obj;
// any other object is returned as it is. `get` and `describe` show secrets
// through it.
func RedactSecrets(obj api.Object) api.Object {
	s, ok := obj.(*api.Secret)
	if !ok || s == nil {
		return obj
	}
	c := *s
	c.Metadata.Labels = maps.Clone(s.Metadata.Labels)
	c.Metadata.Annotations = maps.Clone(s.Metadata.Annotations)
	if s.Data != nil {
		c.Data = make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			c.Data[k] = fmt.Sprintf("<redacted: %d bytes>", len(v))
		}
	}
	return &c
}

// yaml11Special matches strings that YAML 1.1 readers (PyYAML, yaml.v2 and
// the tools built on them) take for booleans or sexagesimal numbers, which
// the YAML 1.2 encoder would otherwise write bare.
var yaml11Special = regexp.MustCompile(`^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?)$`)

func quoteOldScalars(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == tagStr && yaml11Special.MatchString(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteOldScalars(c)
	}
}

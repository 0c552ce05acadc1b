package apiserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"slipway.dev/slipway/internal/api"
)

// readBody reads the whole request body, refusing more than limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, api.Errorf(api.ReasonTooLarge, "request body is larger than the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, api.Errorf(api.ReasonBadRequest, "cannot read the request body: %v", err)
	}
	return b, nil
}

// decodeStrict decodes one JSON object into v, refusing unknown fields and
// trailing data. Errors are BadRequest and say where: the byte offset of a
// syntax error, the field path of an unknown field or a wrong type.
func decodeStrict(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return api.Errorf(api.ReasonBadRequest, "the request body is empty: expected a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeJSONError(data, reflect.TypeOf(v), err)
	}
	if off := dec.InputOffset(); len(bytes.TrimSpace(data[off:])) > 0 {
		idx := off + int64(len(data[off:])-len(bytes.TrimLeft(data[off:], " \t\r\n")))
		return api.Errorf(api.ReasonBadRequest, "invalid JSON at byte %d%s: unexpected data after the object", idx+1, lineCol(data, idx))
	}
	return nil
}

// lineCol renders " (line L, column C)", 1-based, for the byte at index
// idx (len(data) for the end of input). Messages count bytes from 1 too,
// so "byte 27" is the 27th byte, the one at fault.
func lineCol(data []byte, idx int64) string {
	if idx < 0 || idx > int64(len(data)) {
		return ""
	}
	before := data[:idx]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(idx) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf(" (line %d, column %d)", line, col)
}

func describeJSONError(data []byte, t reflect.Type, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		// Offset counts the bytes read, the bad one included.
		return api.Errorf(api.ReasonBadRequest, "invalid JSON at byte %d%s: %s", syn.Offset, lineCol(data, syn.Offset-1), strings.TrimPrefix(syn.Error(), "json: "))
	case errors.Is(err, io.ErrUnexpectedEOF):
		end := int64(len(data))
		return api.Errorf(api.ReasonBadRequest, "invalid JSON at byte %d%s: unexpected end of input", end+1, lineCol(data, end))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			e := api.Errorf(api.ReasonBadRequest, "invalid JSON at byte %d: cannot use a JSON %s as %s", typ.Offset, typ.Value, describeType(typ.Type))
			return e
		}
		e := api.Errorf(api.ReasonBadRequest, "%s: invalid value at byte %d: cannot use a JSON %s as %s", field, typ.Offset, typ.Value, describeType(typ.Type))
		e.Causes = []api.Cause{{Field: field, Message: fmt.Sprintf("cannot use a JSON %s as %s", typ.Value, describeType(typ.Type))}}
		return e
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		paths := unknownFields(data, t)
		if len(paths) == 0 {
			return api.Errorf(api.ReasonBadRequest, "%s", strings.TrimPrefix(err.Error(), "json: "))
		}
		quoted := make([]string, len(paths))
		e := api.Errorf(api.ReasonBadRequest, "")
		for i, p := range paths {
			quoted[i] = fmt.Sprintf("%q", p)
			e.Causes = append(e.Causes, api.Cause{Field: p, Message: api.FieldUnknown})
		}
		noun := "unknown field"
		if len(paths) > 1 {
			noun = "unknown fields"
		}
		e.Message = fmt.Sprintf("%s %s: the schema of %s has no such field (strict decoding)", noun, strings.Join(quoted, ", "), api.Version)
		return e
	}
	// Errors of custom decoders (IntOrString, time) carry no position.
	return api.Errorf(api.ReasonBadRequest, "invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Int:
		return fmt.Sprintf("an integer (%s)", t.Kind())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uint:
		return fmt.Sprintf("a non-negative integer (%s)", t.Kind())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return t.String()
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// unknownFields lists, sorted, the paths of every key in data that t has
// no field for: the decoder stops at the first and does not say where.
func unknownFields(data []byte, t reflect.Type) []string {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil
	}
	var out []string
	walkUnknown(v, t, "", &out)
	slices.Sort(out)
	return out
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func walkUnknown(v any, t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		fields := jsonFields(t)
		for k, val := range m {
			ft, ok := fields[k]
			if !ok {
				// encoding/json matches names case-insensitively.
				for name, f := range fields {
					if strings.EqualFold(name, k) {
						ft, ok = f, true
						break
					}
				}
			}
			if !ok {
				*out = append(*out, joinPath(path, k))
				continue
			}
			walkUnknown(val, ft, joinPath(path, k), out)
		}
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			for k, val := range m {
				walkUnknown(val, t.Elem(), joinPath(path, k), out)
			}
		}
	case reflect.Slice, reflect.Array:
		if l, ok := v.([]any); ok {
			for i, val := range l {
				walkUnknown(val, t.Elem(), fmt.Sprintf("%s[%d]", path, i), out)
			}
		}
	}
}

// jsonFields maps the JSON names of t's fields (embedded structs
// flattened, as encoding/json does) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	fields := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for n, typ := range jsonFields(ft) {
					if _, shadowed := fields[n]; !shadowed {
						fields[n] = typ
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = f.Type
	}
	return fields
}

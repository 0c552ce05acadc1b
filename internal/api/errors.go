package api

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Reasons: the few error kinds every package maps to. The HTTP edge turns
// them into statuses once (see Error.Code).
const (
	ReasonBadRequest      = "BadRequest"
	ReasonUnauthorized    = "Unauthorized"
	ReasonForbidden       = "Forbidden"
	ReasonNotFound        = "NotFound"
	ReasonAlreadyExists   = "AlreadyExists"
	ReasonConflict        = "Conflict"
	ReasonInvalid         = "Invalid"
	ReasonTooLarge        = "RequestEntityTooLarge"
	ReasonGone            = "Gone" // watch from a compacted revision
	ReasonMethodNotAllowd = "MethodNotAllowed"
	ReasonInternal        = "InternalError"
	ReasonUnavailable     = "ServiceUnavailable"
	// ReasonInsufficientStorage: the store's disk is full; nothing was
	// written, and the same request succeeds once space is freed.
	ReasonInsufficientStorage = "InsufficientStorage"
)

var reasonCodes = map[string]int{
	ReasonBadRequest:      http.StatusBadRequest,
	ReasonUnauthorized:    http.StatusUnauthorized,
	ReasonForbidden:       http.StatusForbidden,
	ReasonNotFound:        http.StatusNotFound,
	ReasonAlreadyExists:   http.StatusConflict,
	ReasonConflict:        http.StatusConflict,
	ReasonInvalid:         http.StatusUnprocessableEntity,
	ReasonTooLarge:        http.StatusRequestEntityTooLarge,
	ReasonGone:            http.StatusGone,
	ReasonMethodNotAllowd: http.StatusMethodNotAllowed,
	ReasonInternal:        http.StatusInternalServerError,
	ReasonUnavailable:     http.StatusServiceUnavailable,

	ReasonInsufficientStorage: http.StatusInsufficientStorage,
}

// Error is the structured error of the API: what the server answers and what
// the client decodes.
type Error struct {
	Code    int     `json:"code"`
	Reason  string  `json:"reason"`
	Message string  `json:"message"`
	Causes  []Cause `json:"causes,omitempty"`
}

// Cause is one field-level reason of an Error.
type Cause struct {
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Errorf returns an *Error of the given reason with its HTTP code.
func Errorf(reason, format string, args ...any) *Error {
	code, ok := reasonCodes[reason]
	if !ok {
		code = http.StatusInternalServerError
	}
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of the first *Error in err's chain, or
// ReasonInternal when there is none.
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternal
}

// IsNotFound, IsConflict, IsAlreadyExists and IsInvalid test an error's reason.
func IsNotFound(err error) bool      { return err != nil && ReasonOf(err) == ReasonNotFound }
func IsConflict(err error) bool      { return err != nil && ReasonOf(err) == ReasonConflict }
func IsAlreadyExists(err error) bool { return err != nil && ReasonOf(err) == ReasonAlreadyExists }
func IsInvalid(err error) bool       { return err != nil && ReasonOf(err) == ReasonInvalid }

// Field error types, worded as Kubernetes words them.
const (
	FieldInvalid     = "Invalid value"
	FieldRequired    = "Required value"
	FieldUnsupported = "Unsupported value"
	FieldDuplicate   = "Duplicate value"
	FieldForbidden   = "Forbidden"
	FieldTooLong     = "Too long"
	FieldUnknown     = "Unknown field"
)

// FieldError is one problem with one field of an object.
type FieldError struct {
	Type     string // one of the Field* constants
	Field    string // path such as spec.template.containers[0].ports[1].port
	BadValue any    // printed for Invalid, Unsupported, Duplicate
	Detail   string // the rule
}

// Error renders `spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Type)
	switch e.Type {
	case FieldInvalid, FieldUnsupported, FieldDuplicate:
		b.WriteString(": ")
		b.WriteString(formatBadValue(e.BadValue))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func formatBadValue(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 64 {
			return fmt.Sprintf("%q", x[:64]+"...")
		}
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	default:
		return fmt.Sprint(x)
	}
}

// FieldErrors is every problem found in one object.
type FieldErrors []*FieldError

func (l FieldErrors) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// ToError turns the field errors of an object into an Invalid *Error, or nil.
func (l FieldErrors) ToError(kind, name string) error {
	if len(l) == 0 {
		return nil
	}
	e := Errorf(ReasonInvalid, "%s %q is invalid: %s", kind, name, l.Error())
	for _, fe := range l {
		e.Causes = append(e.Causes, Cause{Field: fe.Field, Message: strings.TrimPrefix(fe.Error(), fe.Field+": ")})
	}
	return e
}

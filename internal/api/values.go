package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// IntOrString holds a port number or name, or a count or percentage.
type IntOrString struct {
	IsString bool
	IntVal   int32
	StrVal   string
}

// FromInt returns an IntOrString holding n.
func FromInt(n int32) IntOrString { return IntOrString{IntVal: n} }

// FromString returns an IntOrString holding s.
func FromString(s string) IntOrString { return IntOrString{IsString: true, StrVal: s} }

// IsZero reports whether v holds nothing (used by omitzero).
func (v IntOrString) IsZero() bool { return !v.IsString && v.IntVal == 0 }

// String renders the value as it is written in a manifest.
func (v IntOrString) String() string {
	if v.IsString {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// MarshalJSON writes a number or a string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsString {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// UnmarshalJSON reads a number or a string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*v = FromString(s)
		return nil
	}
	var n int32
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("must be an integer or a string: %s", b)
	}
	*v = FromInt(n)
	return nil
}

// Percent returns the value scaled against total: a count as is, "25%" as
// the share of total rounded up (roundUp) or down.
func (v IntOrString) Percent(total int32, roundUp bool) (int32, error) {
	if !v.IsString {
		return v.IntVal, nil
	}
	s, ok := strings.CutSuffix(v.StrVal, "%")
	if !ok {
		return 0, fmt.Errorf("must be an integer or a percentage such as 25%%")
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 0 {
		return 0, fmt.Errorf("must be an integer or a percentage such as 25%%")
	}
	n := int64(p) * int64(total)
	if roundUp {
		return int32((n + 99) / 100), nil
	}
	return int32(n / 100), nil
}

// Quantity is a Kubernetes resource quantity such as "500m", "2", "256Mi" or "1G".
type Quantity string

var binarySuffixes = map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
var decimalSuffixes = map[string]int64{"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}

// MilliValue returns the quantity in thousandths (CPU: millicores).
func (q Quantity) MilliValue() (int64, error) {
	s := string(q)
	if m, ok := strings.CutSuffix(s, "m"); ok {
		n, err := strconv.ParseInt(m, 10, 64)
		if err != nil || n < 0 {
			return 0, q.invalid()
		}
		return n, nil
	}
	v, err := q.Value()
	if err != nil {
		return 0, err
	}
	if v > (1<<63-1)/1000 {
		return 0, q.invalid()
	}
	return v * 1000, nil
}

// Value returns the quantity as a whole number (memory: bytes), rounding up.
func (q Quantity) Value() (int64, error) {
	s := string(q)
	if s == "" {
		return 0, q.invalid()
	}
	mult := int64(1)
	for suf, m := range binarySuffixes {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
			break
		}
	}
	if mult == 1 {
		for suf, m := range decimalSuffixes {
			if strings.HasSuffix(s, suf) {
				s, mult = strings.TrimSuffix(s, suf), m
				break
			}
		}
	}
	if strings.HasSuffix(s, "m") {
		m, err := q.MilliValue()
		if err != nil {
			return 0, err
		}
		return (m + 999) / 1000, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || s == "" || strings.ContainsAny(s, "eEinN") {
		return 0, q.invalid()
	}
	v := f * float64(mult)
	if v > 1<<62 {
		return 0, q.invalid()
	}
	n := int64(v)
	if float64(n) < v {
		n++
	}
	return n, nil
}

func (q Quantity) invalid() error {
	return fmt.Errorf("must be a quantity such as 500m, 2, 256Mi or 1G")
}

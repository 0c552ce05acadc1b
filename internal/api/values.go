package api

import (
	"encoding/json"
	"fmt"
	"math/big"
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

// quantitySuffixes are the multipliers of the suffixes Kubernetes accepts
// (without its exponent forms such as 1e3), as numerator/denominator.
var quantitySuffixes = map[string][2]int64{
	"":   {1, 1},
	"m":  {1, 1000},
	"k":  {1e3, 1},
	"M":  {1e6, 1},
	"G":  {1e9, 1},
	"T":  {1e12, 1},
	"P":  {1e15, 1},
	"E":  {1e18, 1},
	"Ki": {1 << 10, 1},
	"Mi": {1 << 20, 1},
	"Gi": {1 << 30, 1},
	"Ti": {1 << 40, 1},
	"Pi": {1 << 50, 1},
	"Ei": {1 << 60, 1},
}

// maxQuantity bounds parsed quantities so that MilliValue cannot overflow.
var maxQuantity = big.NewRat(1<<62/1000, 1)

// Rat parses the quantity exactly: "0.5" CPU is 500 millicores, not a
// rounded-up whole core.
func (q Quantity) Rat() (*big.Rat, error) {
	s := string(q)
	end := 0
	dot := false
	for end < len(s) && (s[end] >= '0' && s[end] <= '9' || s[end] == '.' && !dot) {
		dot = dot || s[end] == '.'
		end++
	}
	num, suffix := s[:end], s[end:]
	mult, ok := quantitySuffixes[suffix]
	if !ok || num == "" || num == "." || len(num) > 30 {
		return nil, q.invalid()
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return nil, q.invalid()
	}
	r.Mul(r, big.NewRat(mult[0], mult[1]))
	if r.Cmp(maxQuantity) > 0 {
		return nil, fmt.Errorf("must be at most %d", maxQuantity.Num())
	}
	return r, nil
}

// ceil rounds a non-negative rational up to an integer.
func ceil(r *big.Rat) int64 {
	n, rem := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if rem.Sign() != 0 {
		n.Add(n, big.NewInt(1))
	}
	return n.Int64()
}

// MilliValue returns the quantity in thousandths (CPU: millicores), rounding up.
func (q Quantity) MilliValue() (int64, error) {
	r, err := q.Rat()
	if err != nil {
		return 0, err
	}
	return ceil(r.Mul(r, big.NewRat(1000, 1))), nil
}

// Value returns the quantity as a whole number (memory: bytes), rounding up.
func (q Quantity) Value() (int64, error) {
	r, err := q.Rat()
	if err != nil {
		return 0, err
	}
	return ceil(r), nil
}

func (q Quantity) invalid() error {
	return fmt.Errorf("must be a quantity such as 500m, 0.5, 2, 256Mi or 1G")
}

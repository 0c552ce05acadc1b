package api_test

import (
	"testing"

	"slipway.dev/slipway/internal/api"
)

func TestQuantity(t *testing.T) {
	for _, tc := range []struct {
		q           api.Quantity
		milli, val  int64
		wantInvalid bool
	}{
		{q: "500m", milli: 500, val: 1},
		{q: "0.5", milli: 500, val: 1},
		{q: "2", milli: 2000, val: 2},
		{q: "1.5Gi", milli: 1610612736000, val: 1610612736},
		{q: "256Mi", milli: 268435456000, val: 268435456},
		{q: "1G", milli: 1e12, val: 1e9},
		{q: "100k", milli: 1e8, val: 1e5},
		{q: "0.0001", milli: 1, val: 1},
		{q: "", wantInvalid: true},
		{q: "-1", wantInvalid: true},
		{q: "1e3", wantInvalid: true},
		{q: "0x10", wantInvalid: true},
		{q: "Mi", wantInvalid: true},
		{q: "1.2.3", wantInvalid: true},
		{q: "1mi", wantInvalid: true},
		{q: "99999999999Ei", wantInvalid: true},
	} {
		m, err1 := tc.q.MilliValue()
		v, err2 := tc.q.Value()
		if tc.wantInvalid {
			if err1 == nil || err2 == nil {
				t.Errorf("%q: want errors, got %d, %d", tc.q, m, v)
			}
			continue
		}
		if err1 != nil || err2 != nil || m != tc.milli || v != tc.val {
			t.Errorf("%q: MilliValue = %d, %v; Value = %d, %v; want %d, %d", tc.q, m, err1, v, err2, tc.milli, tc.val)
		}
	}
}

package bolt

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"slipway.dev/slipway/internal/store"
)

func TestEventRoundTrip(t *testing.T) {
	prev := store.KeyValue{Key: "/k", Value: []byte("old"), CreateRevision: 3, ModRevision: 7}
	tests := []store.Event{
		{Type: store.EventPut, KV: store.KeyValue{Key: "/k", Value: []byte("v"), CreateRevision: 9, ModRevision: 9}},
		{Type: store.EventPut, KV: store.KeyValue{Key: "/k", Value: []byte("new"), CreateRevision: 3, ModRevision: 9}, PrevKV: &prev},
		{Type: store.EventDelete, KV: store.KeyValue{Key: "/k", Value: []byte("old"), CreateRevision: 3, ModRevision: 9}, PrevKV: &prev},
		{Type: store.EventPut, KV: store.KeyValue{Key: "/empty", Value: []byte{}, CreateRevision: 1 << 40, ModRevision: 1 << 40}},
	}
	for _, ev := range tests {
		got, err := decodeEvent(ev.KV.ModRevision, encodeEvent(ev))
		if err != nil {
			t.Fatalf("decode %v %q: %v", ev.Type, ev.KV.Key, err)
		}
		if diff := cmp.Diff(ev, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the record decoders: a damaged file
// must give an error, never a panic.
func FuzzDecode(f *testing.F) {
	prev := store.KeyValue{Key: "/k", Value: []byte("old"), CreateRevision: 3, ModRevision: 7}
	f.Add(encodeEvent(store.Event{Type: store.EventPut, KV: store.KeyValue{Key: "/k", Value: []byte("new"), CreateRevision: 3, ModRevision: 9}, PrevKV: &prev}))
	f.Add(encodeEvent(store.Event{Type: store.EventDelete, KV: store.KeyValue{Key: "/k", Value: []byte("old"), CreateRevision: 3, ModRevision: 9}, PrevKV: &prev}))
	f.Add(encodeKeyRecord(3, 9, []byte("value")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, rec []byte) {
		if ev, err := decodeEvent(9, rec); err == nil {
			// What decodes must survive a round trip unchanged.
			again, err := decodeEvent(9, encodeEvent(ev))
			if err != nil {
				t.Fatalf("re-encoded event does not decode: %v", err)
			}
			if diff := cmp.Diff(ev, again); diff != "" {
				t.Errorf("round trip (-first +second):\n%s", diff)
			}
		}
		_, _ = eventKey(rec)
		_, _ = decodeKeyRecord("/k", rec)
	})
}

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
			// What decodes must encode back to the same bytes.
			if got := encodeEvent(ev); string(got) != string(rec) && canonical(rec) {
				t.Errorf("re-encoded %x, read %x", got, rec)
			}
		}
		_, _ = eventKey(rec)
		_, _ = decodeKeyRecord("/k", rec)
	})
}

// canonical reports whether rec uses minimal varints, the only form
// encodeEvent writes; other forms decode to the same event but re-encode
// shorter.
func canonical(rec []byte) bool {
	for i := 0; i+1 < len(rec); i++ {
		if rec[i] == 0x80 && rec[i+1] == 0x00 {
			return false
		}
	}
	return true
}

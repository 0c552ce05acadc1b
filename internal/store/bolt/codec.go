package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"slipway.dev/slipway/internal/store"
)

// On-disk records. Integers are uvarints so that small revisions cost one
// or two bytes; the value always comes last and runs to the end of the
// record, so it needs no length prefix and decodes without a copy of the
// length. Any change to these layouts needs a new schemaVersion and an
// upgrade step in Open.
//
//	keys bucket:    key -> createRev modRev value
//	history bucket: be64(rev) -> type keyLen key createRev
//	                  put:    hasPrev [prevCreate prevMod prevLen prevValue] value
//	                  delete: prevMod value
//	(for a delete, value is the value the key had when it was deleted)

const (
	recPut    byte = 1
	recDelete byte = 2
)

var errCorrupt = errors.New("bolt store: corrupt record")

func encodeKeyRecord(createRev, modRev int64, value []byte) []byte {
	buf := make([]byte, 0, 2*binary.MaxVarintLen64+len(value))
	buf = binary.AppendUvarint(buf, uint64(createRev))
	buf = binary.AppendUvarint(buf, uint64(modRev))
	return append(buf, value...)
}

// decodeKeyRecord copies the value out of rec, which may be bbolt's mmap
// and is only valid inside the transaction.
func decodeKeyRecord(key string, rec []byte) (store.KeyValue, error) {
	d := decoder{buf: rec}
	createRev := d.revision()
	modRev := d.revision()
	if d.err != nil {
		return store.KeyValue{}, fmt.Errorf("%w: key %q: %v", errCorrupt, key, d.err)
	}
	return store.KeyValue{
		Key:            key,
		Value:          clone(d.buf),
		CreateRevision: createRev,
		ModRevision:    modRev,
	}, nil
}

func encodeEvent(ev store.Event) []byte {
	size := 1 + 5*binary.MaxVarintLen64 + len(ev.KV.Key) + len(ev.KV.Value)
	if ev.PrevKV != nil {
		size += len(ev.PrevKV.Value)
	}
	buf := make([]byte, 0, size)
	switch ev.Type {
	case store.EventPut:
		buf = append(buf, recPut)
	case store.EventDelete:
		buf = append(buf, recDelete)
	}
	buf = binary.AppendUvarint(buf, uint64(len(ev.KV.Key)))
	buf = append(buf, ev.KV.Key...)
	buf = binary.AppendUvarint(buf, uint64(ev.KV.CreateRevision))
	switch ev.Type {
	case store.EventPut:
		if ev.PrevKV == nil {
			buf = append(buf, 0)
		} else {
			buf = append(buf, 1)
			buf = binary.AppendUvarint(buf, uint64(ev.PrevKV.CreateRevision))
			buf = binary.AppendUvarint(buf, uint64(ev.PrevKV.ModRevision))
			buf = binary.AppendUvarint(buf, uint64(len(ev.PrevKV.Value)))
			buf = append(buf, ev.PrevKV.Value...)
		}
	case store.EventDelete:
		buf = binary.AppendUvarint(buf, uint64(ev.PrevKV.ModRevision))
	}
	return append(buf, ev.KV.Value...)
}

// eventKey returns the key of a history record without decoding the rest,
// so that a watcher skips other prefixes cheaply.
func eventKey(rec []byte) ([]byte, error) {
	d := decoder{buf: rec}
	d.byte()
	key := d.bytes()
	return key, d.err
}

// decodeEvent rebuilds the event at rev; it copies everything it keeps.
func decodeEvent(rev int64, rec []byte) (store.Event, error) {
	d := decoder{buf: rec}
	typ := d.byte()
	key := string(d.bytes())
	createRev := d.revision()
	ev := store.Event{KV: store.KeyValue{Key: key, CreateRevision: createRev, ModRevision: rev}}
	switch typ {
	case recPut:
		ev.Type = store.EventPut
		if hasPrev := d.byte(); hasPrev == 1 {
			prev := store.KeyValue{Key: key}
			prev.CreateRevision = d.revision()
			prev.ModRevision = d.revision()
			prev.Value = clone(d.bytes())
			ev.PrevKV = &prev
		} else if hasPrev != 0 && d.err == nil {
			d.err = fmt.Errorf("prev flag %d", hasPrev)
		}
	case recDelete:
		ev.Type = store.EventDelete
		prevMod := d.revision()
		ev.PrevKV = &store.KeyValue{Key: key, CreateRevision: createRev, ModRevision: prevMod}
	default:
		if d.err == nil {
			d.err = fmt.Errorf("event type %d", typ)
		}
	}
	if d.err != nil {
		return store.Event{}, fmt.Errorf("%w: history revision %d: %v", errCorrupt, rev, d.err)
	}
	ev.KV.Value = clone(d.buf)
	if ev.Type == store.EventDelete {
		ev.PrevKV.Value = clone(d.buf)
	}
	return ev, nil
}

// decoder reads fields in order and remembers the first error, so callers
// check once at the end instead of after every field.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.buf) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.err = errors.New("bad varint")
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) revision() int64 {
	v := d.uvarint()
	if d.err == nil && v > 1<<62 {
		d.err = fmt.Errorf("revision %d out of range", v)
		return 0
	}
	return int64(v)
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.buf)) {
		d.err = fmt.Errorf("length %d exceeds remaining %d bytes", n, len(d.buf))
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func be64(v int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v))
}

func fromBE64(b []byte) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: revision key of %d bytes, want 8", errCorrupt, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

package std

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Session tickets: a client that comes back within TicketLifetime resumes
// its TLS session (one round trip, no certificate signature) instead of a
// full handshake. A new key encrypts the tickets issued from every
// TicketRotation on; older keys still decrypt until TicketLifetime (as Go's
// own automatic rotation: a day and a week).
const (
	TicketRotation = 24 * time.Hour
	TicketLifetime = 7 * 24 * time.Hour
)

// TicketKey is one session-ticket key and when it was made.
type TicketKey struct {
	Key     [32]byte
	Created time.Time
}

// TicketKeys holds the HTTPS listener's session-ticket keys in one place:
// every TLS configuration made with it (TLSConfig) encrypts and decrypts
// tickets with the same keys, and a process that takes over the listener
// (a restart's hand-over) takes them with Keys and SetKeys, so that
// clients resume their sessions across it. Its methods are safe for
// concurrent use.
type TicketKeys struct {
	mu   sync.Mutex
	keys []TicketKey
	cfgs []*tls.Config
	// next is when the keys are next due for rotation (Unix nanoseconds),
	// read without the lock by every handshake.
	next atomic.Int64
	now  func() time.Time
	rand func() ([32]byte, error)
}

// NewTicketKeys returns a set of one new random key.
func NewTicketKeys() *TicketKeys {
	k := &TicketKeys{now: time.Now, rand: randomKey}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rotateLocked(k.now())
	return k
}

func randomKey() ([32]byte, error) {
	var b [32]byte
	_, err := rand.Read(b[:])
	return b, err
}

// Keys returns the keys, the one encrypting new tickets first: what a
// successor needs to resume this process's sessions. They are secrets:
// hand them over in memory or a file of mode 0600, never a log.
func (k *TicketKeys) Keys() []TicketKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.keys)
}

// SetKeys replaces the keys with keys (a predecessor's Keys), first one
// encrypting, and applies them to every configuration at once; keys past
// TicketLifetime are dropped.
func (k *TicketKeys) SetKeys(keys []TicketKey) error {
	now := k.now()
	keys = slices.DeleteFunc(slices.Clone(keys), func(t TicketKey) bool { return now.Sub(t.Created) >= TicketLifetime })
	if len(keys) == 0 {
		return errors.New("router: session ticket keys: none left that is younger than " + TicketLifetime.String())
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.keys = keys
	k.rotateLocked(now)
	return nil
}

// bind makes cfg use the keys, now and whenever they change.
func (k *TicketKeys) bind(cfg *tls.Config) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cfgs = append(k.cfgs, cfg)
	cfg.SetSessionTicketKeys(rawKeys(k.keys))
}

// maybeRotate rotates the keys when they are due; it costs an atomic load
// otherwise, as it runs before every handshake.
func (k *TicketKeys) maybeRotate() {
	if k.now().UnixNano() < k.next.Load() {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rotateLocked(k.now())
}

func (k *TicketKeys) rotateLocked(now time.Time) {
	keys, due := RotateTicketKeys(k.keys, now)
	if keys == nil {
		b, err := k.rand()
		if err != nil {
			// crypto/rand does not fail on Linux; keep the old keys and
			// try again at the next handshake.
			return
		}
		keys = append([]TicketKey{{Key: b, Created: now}}, k.keys...)
		keys, due = RotateTicketKeys(keys, now)
	}
	k.keys = keys
	k.next.Store(due.UnixNano())
	for _, cfg := range k.cfgs {
		cfg.SetSessionTicketKeys(rawKeys(keys))
	}
}

// RotateTicketKeys decides a rotation at now: it returns nil when a new key
// must encrypt (none, or the first is TicketRotation old), and otherwise
// keys without those past TicketLifetime and when to decide again.
func RotateTicketKeys(keys []TicketKey, now time.Time) ([]TicketKey, time.Time) {
	if len(keys) == 0 || now.Sub(keys[0].Created) >= TicketRotation {
		return nil, now
	}
	kept := slices.DeleteFunc(slices.Clone(keys), func(t TicketKey) bool { return now.Sub(t.Created) >= TicketLifetime })
	due := keys[0].Created.Add(TicketRotation)
	for _, t := range kept {
		due = minTime(due, t.Created.Add(TicketLifetime))
	}
	return kept, due
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func rawKeys(keys []TicketKey) [][32]byte {
	out := make([][32]byte, len(keys))
	for i, t := range keys {
		out[i] = t.Key
	}
	return out
}

package etcd

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"slipway.dev/slipway/internal/store"
)

// etcd refuses every write once its database passes its quota
// (--quota-backend-bytes) and raises a NOSPACE alarm, which stays until an
// operator compacts, defragments and disarms it. That is the contract's
// ErrNoSpace: nothing was written, the same write may succeed later.

// noSpace maps etcd's "database space exceeded" to store.ErrNoSpace and
// remembers it for CheckWritable; other errors pass through.
func (s *Store) noSpace(err error) error {
	if !errorIs(err, rpctypes.ErrNoSpace) {
		return err
	}
	s.full.Store(true)
	return fmt.Errorf("etcd's database is over its quota (NOSPACE alarm: compact, defragment and disarm it): %w", store.ErrNoSpace)
}

// CheckWritable returns nil unless a write was refused for want of space
// and etcd still has its NOSPACE alarm raised (then store.ErrNoSpace). It
// asks etcd only in that state.
func (s *Store) CheckWritable(ctx context.Context) error {
	if !s.full.Load() {
		return nil
	}
	if err := s.enter(ctx); err != nil {
		return err
	}
	resp, err := s.cli.AlarmList(ctx)
	if err != nil {
		return s.fail("alarm list", err)
	}
	for _, a := range resp.Alarms {
		if a.Alarm == etcdserverpb.AlarmType_NOSPACE {
			return fmt.Errorf("etcd store: member %x has a NOSPACE alarm: writes are refused: %w", a.MemberID, store.ErrNoSpace)
		}
	}
	s.full.Store(false)
	s.log.Info("writes should succeed again: etcd's NOSPACE alarm is gone")
	return nil
}

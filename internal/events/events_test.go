package events

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"slipway.dev/slipway/internal/api"
	"slipway.dev/slipway/internal/clock"
	"slipway.dev/slipway/internal/registry"
	"slipway.dev/slipway/internal/store/bolt"
)

func newRegistry(t *testing.T) *registry.Registry {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "slipway.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := registry.New(st, registry.Options{})
	if err := reg.EnsureDefaultProject(context.Background()); err != nil {
		t.Fatal(err)
	}
	return reg
}

func listEvents(t *testing.T, reg *registry.Registry) []*api.Event {
	t.Helper()
	objs, _, err := reg.List(context.Background(), eventKind, api.DefaultProject, registry.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Event
	for _, o := range objs {
		out = append(out, o.(*api.Event))
	}
	return out
}

// TestRecordAggregatesRepeats: the same reason and message on the same
// object within an hour count on one Event; another message, or a repeat
// after the hour, makes a new one.
func TestRecordAggregatesRepeats(t *testing.T) {
	reg := newRegistry(t)
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clk := clock.NewFake(t0)
	r := &Recorder{Reg: reg, Source: "node", Clock: clk}
	ctx := context.Background()
	pod := &api.Pod{TypeMeta: api.TypeMeta{Kind: "Pod"}, Metadata: api.ObjectMeta{Name: "web-1-abcde", Project: api.DefaultProject, UID: "u1"}}

	r.Record(ctx, pod, api.EventWarning, "BackOff", "back-off restarting container web")
	clk.Advance(time.Minute)
	r.Record(ctx, pod, api.EventWarning, "BackOff", "back-off restarting container web")
	r.Record(ctx, pod, api.EventNormal, "Started", "started container web")
	evs := listEvents(t, reg)
	if len(evs) != 2 {
		t.Fatalf("%d events, want 2 (one BackOff counted twice, one Started): %+v", len(evs), evs)
	}
	for _, ev := range evs {
		want := int32(1)
		if ev.Reason == "BackOff" {
			want = 2
			if !ev.LastTimestamp.Equal(t0.Add(time.Minute)) || !ev.FirstTimestamp.Equal(t0) {
				t.Errorf("BackOff first %s last %s, want %s and %s", ev.FirstTimestamp, ev.LastTimestamp, t0, t0.Add(time.Minute))
			}
		}
		if ev.Count != want || ev.Source != "node" || ev.InvolvedObject.Name != pod.Metadata.Name || ev.InvolvedObject.UID != "u1" || ev.InvolvedObject.Kind != "Pod" {
			t.Errorf("event %+v: want count %d, source node, involving the pod", ev, want)
		}
	}
	clk.Advance(2 * time.Hour)
	r.Record(ctx, pod, api.EventWarning, "BackOff", "back-off restarting container web")
	if n := len(listEvents(t, reg)); n != 3 {
		t.Errorf("%d events after the hour, want 3 (a new BackOff)", n)
	}
}

// TestRecordNeverFailsTheCaller: an Event that cannot be written (its
// project does not exist) is dropped without a panic, even with no logger.
func TestRecordNeverFailsTheCaller(t *testing.T) {
	reg := newRegistry(t)
	r := &Recorder{Reg: reg, Source: "deploy", Clock: clock.Real{}}
	app := &api.App{TypeMeta: api.TypeMeta{Kind: "App"}, Metadata: api.ObjectMeta{Name: "web", Project: "nowhere", UID: "u2"}}
	r.Record(context.Background(), app, api.EventNormal, "Scaled", "scaled to 2")
	objs, _, err := reg.List(context.Background(), eventKind, "nowhere", registry.ListOptions{})
	if err == nil && len(objs) != 0 {
		t.Errorf("an event was written into a project that does not exist: %+v", objs)
	}
}

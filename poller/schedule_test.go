package poller_test

import (
	"context"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

var t0 = time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)

// obs is a reading at minute m with entities done of estimated.
func obs(m float64, state poller.State, done, estimated int64) poller.Observation {
	return poller.Observation{At: t0.Add(time.Duration(m * float64(time.Minute))), State: state,
		EntitiesCompleted: done, EntitiesEstimated: estimated, BytesCompleted: done * 100, BytesEstimated: estimated * 100}
}

func TestAdaptiveSchedule(t *testing.T) {
	a := poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	at := func(m float64) time.Time { return t0.Add(time.Duration(m * float64(time.Minute))) }
	tests := []struct {
		name     string
		seen     []poller.Observation
		now      float64 // minutes after the start
		min, max time.Duration
	}{
		{"just started", []poller.Observation{obs(0, poller.StateInitializing, 0, 0)}, 0, 5 * time.Second, 5 * time.Second},
		{"initializing probes by half the elapsed time", []poller.Observation{obs(0, poller.StateInitializing, 0, 0), obs(4, poller.StateInitializing, 0, 0)},
			4, 2 * time.Minute, 2 * time.Minute},
		{"initializing a long time: at most Max", []poller.Observation{obs(0, poller.StateInitializing, 0, 0), obs(120, poller.StateInitializing, 0, 0)},
			120, 15 * time.Minute, 15 * time.Minute},
		{"far from the end: long waits", []poller.Observation{obs(10, poller.StateProcessing, 100, 10000), obs(30, poller.StateProcessing, 1100, 10000)},
			30, 10 * time.Minute, 15 * time.Minute},
		{"one reading with progress: no further than watched", []poller.Observation{obs(1, poller.StateProcessing, 10, 100000)},
			1, 5 * time.Second, 30 * time.Second},
		{"near the end: short waits", []poller.Observation{obs(10, poller.StateProcessing, 1000, 10000), obs(58, poller.StateProcessing, 9800, 10000)},
			58, 5 * time.Second, 20 * time.Second},
		{"estimate exceeded", []poller.Observation{obs(10, poller.StateProcessing, 1000, 10000), obs(60, poller.StateProcessing, 10200, 10000)},
			60, 5 * time.Second, 20 * time.Second},
		{"finalizing, no more progress", []poller.Observation{obs(10, poller.StateProcessing, 1000, 10000), obs(60, poller.StateFinalizing, 10000, 10000), obs(61, poller.StateFinalizing, 10000, 10000)},
			61, 5 * time.Second, 20 * time.Second},
		{"estimate shrank", []poller.Observation{obs(10, poller.StateProcessing, 1000, 20000), obs(40, poller.StateProcessing, 7000, 10000)},
			40, 30 * time.Second, 15 * time.Minute},
		{"no entity estimate: by bytes", []poller.Observation{
			{At: at(10), State: poller.StateProcessing, EntitiesCompleted: 1000, BytesCompleted: 1e5, BytesEstimated: 1e6},
			{At: at(58), State: poller.StateProcessing, EntitiesCompleted: 9800, BytesCompleted: 9.8e5, BytesEstimated: 1e6}},
			58, 5 * time.Second, 20 * time.Second},
		{"no estimate at all", []poller.Observation{obs(0, poller.StateProcessing, 0, 0), {At: at(30), State: poller.StateProcessing, EntitiesCompleted: 500}},
			30, 15 * time.Minute, 15 * time.Minute},
		{"stalled: the rate since the first progress keeps the wait sane", []poller.Observation{obs(10, poller.StateProcessing, 1000, 10000), obs(30, poller.StateProcessing, 5000, 10000), obs(50, poller.StateProcessing, 5000, 10000)},
			50, 5 * time.Second, 15 * time.Minute},
	}
	for _, tt := range tests {
		got := a.Next(t0, tt.seen, at(tt.now), 0)
		if got < tt.min || got > tt.max {
			t.Errorf("%s: Next = %v; want between %v and %v", tt.name, got, tt.min, tt.max)
		}
	}
	if got := (poller.Fixed{Every: time.Minute}).Next(t0, nil, t0, 0); got != time.Minute {
		t.Errorf("Fixed.Next = %v; want 1m", got)
	}
}

// TestAdaptivePolling runs the poller with the adaptive schedule on the
// virtual clock: it follows an export to its end in fewer GETs than the
// fixed schedule, and its wall-clock budget still ends a long one.
func TestAdaptivePolling(t *testing.T) {
	ctx := context.Background()
	r := &rig{testrig.New(t, 60, func(c *poller.Config) {
		c.Schedule = poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	})}
	// An export that progresses: each GET sees more done (the fake moves
	// with GETs, not time, so a few steps).
	var steps []adminfake.Step
	for i := 1; i <= 6; i++ {
		steps = append(steps, adminfake.Running("PROCESSING", int64(i*1500), 10000, int64(i*1500), 10000))
	}
	started := r.start(t, append(steps, adminfake.Successful(10000, 10000))...)
	res, err := r.Poller.Poll(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	rec := res.Record
	if rec.Outcome != poller.OutcomeSuccess {
		t.Fatalf("outcome = %q; want success", rec.Outcome)
	}
	waits := r.Clock.Waits()
	if len(waits) < 2 || waits[0] != 5*time.Second {
		t.Fatalf("waits = %v; want the first at Min", waits)
	}
	varied := false
	for _, w := range waits[1:] {
		if w != waits[0] {
			varied = true
		}
		if w < 5*time.Second || w > 15*time.Minute {
			t.Errorf("wait %v outside [5s, 15m]", w)
		}
	}
	if !varied {
		t.Errorf("waits %v never changed", waits)
	}

	// A long export ends in a timeout when the wall-clock budget is spent,
	// with no more than MaxPolls GETs.
	long := r.start(t, adminfake.Running("INITIALIZING", 0, 0, 0, 0))
	res, err = r.Poller.Poll(ctx, long.Name)
	if err != nil {
		t.Fatal(err)
	}
	rec = res.Record
	if rec.Outcome != poller.OutcomeTimeout || rec.Polls > 60 {
		t.Fatalf("long export = outcome %q after %d polls; want a timeout within 60", rec.Outcome, rec.Polls)
	}
	if elapsed := r.Clock.Now().Sub(long.Created); elapsed < 60*time.Minute || elapsed > 61*time.Minute {
		t.Errorf("timed out %v after it was recorded; want the wall-clock budget, 60m", elapsed)
	}
}

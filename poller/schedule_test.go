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

// TestAdaptiveScheduleTinyFirstReading holds the adaptive schedule to the
// progress it has watched: a first reading with progress, however tiny the
// fraction it shows and however far the end it suggests, brings the next
// GET at the near-end pace (at most NearMax, 20s), not minutes away. The
// first two cases were measured: the schedule waited 5m45s and 15m.
func TestAdaptiveScheduleTinyFirstReading(t *testing.T) {
	a := poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	sec := func(s float64) float64 { return s / 60 }
	start := obs(0, poller.StateProcessing, 0, 0)
	tests := []struct {
		name      string
		seen      []poller.Observation
		now       float64 // minutes after the start
		pollsLeft int
	}{
		{"3 of 119,972 entities at 5s", []poller.Observation{start, obs(sec(5), poller.StateProcessing, 3, 119972)}, sec(5), 58},
		{"100 of 20,000,000 entities at 20s", []poller.Observation{start, obs(sec(20), poller.StateProcessing, 100, 20000000)}, sec(20), 59},
		{"tiny, with no polling budget", []poller.Observation{start, obs(sec(5), poller.StateProcessing, 3, 119972)}, sec(5), 0},
		{"first progress after 10 minutes INITIALIZING", []poller.Observation{obs(0, poller.StateInitializing, 0, 0),
			obs(6.7, poller.StateInitializing, 0, 0), obs(10, poller.StateProcessing, 2000, 1000000)}, 10, 50},
		{"first progress at half the estimate, after INITIALIZING", []poller.Observation{obs(0, poller.StateInitializing, 0, 0),
			obs(6.7, poller.StateInitializing, 0, 0), obs(10, poller.StateProcessing, 500000, 1000000)}, 10, 50},
		{"a lone tiny reading resumed from its record", []poller.Observation{obs(5, poller.StateProcessing, 3, 119972)}, 5, 40},
		{"a tiny first reading, FINALIZING", []poller.Observation{start, obs(sec(20), poller.StateFinalizing, 100, 20000000)}, sec(20), 59},
	}
	for _, tt := range tests {
		now := t0.Add(time.Duration(tt.now * float64(time.Minute)))
		if got := a.Next(t0, tt.seen, now, tt.pollsLeft); got > 20*time.Second {
			t.Errorf("%s: Next = %v; want at most the near-end pace, 20s", tt.name, got)
		}
	}
}

// TestAdaptiveScheduleLooksNoFurtherThanWatched follows an export that
// starts with a trickle (a few entities in its first 30s) and then runs
// steadily for hours, with a budget of 400 polls: every wait is at most the
// near-end pace or twice the time progress has been watched, and once
// progress has been watched long enough the waits are long again.
func TestAdaptiveScheduleLooksNoFurtherThanWatched(t *testing.T) {
	a := poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	const total = 20000000
	length := 4 * time.Hour
	done := func(d time.Duration) int64 {
		if d < 30*time.Second {
			return int64(d.Seconds() * 5) // a trickle: 5 entities a second
		}
		return 150 + int64(float64(total)*float64(d-30*time.Second)/float64(length))
	}
	seen := []poller.Observation{{At: t0, State: poller.StateProcessing}}
	var firstProgress time.Time
	now, longest := time.Duration(0), time.Duration(0)
	for polls := 0; now < 2*time.Hour; polls++ {
		wait := a.Next(t0, seen, t0.Add(now), 400-polls)
		if limit := max(20*time.Second, 2*t0.Add(now).Sub(firstProgress)); !firstProgress.IsZero() && wait > limit {
			t.Fatalf("at %v, %v after the first progress: wait %v; want at most %v", now, t0.Add(now).Sub(firstProgress), wait, limit)
		}
		longest = max(longest, wait)
		now += wait
		o := poller.Observation{At: t0.Add(now), State: poller.StateProcessing, EntitiesCompleted: done(now), EntitiesEstimated: total}
		if firstProgress.IsZero() && o.EntitiesCompleted > 0 {
			firstProgress = o.At
		}
		seen = append(seen, o)
	}
	if longest < 10*time.Minute {
		t.Errorf("longest wait over the first 2h of a steady 4h export = %v; want at least 10m", longest)
	}
}

// TestAdaptiveScheduleLongExportsWaitLong: where enough progress has been
// watched, the schedule still saves GETs with long waits, within a polling
// budget too, and a continuation that has only its record's reading (40%
// done after 2h) extrapolates from the rate since the start as before.
func TestAdaptiveScheduleLongExportsWaitLong(t *testing.T) {
	a := poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	steady := []poller.Observation{obs(0, poller.StateInitializing, 0, 0), obs(10, poller.StateProcessing, 300, 10000),
		obs(25, poller.StateProcessing, 700, 10000), obs(40, poller.StateProcessing, 1100, 10000)}
	tests := []struct {
		name      string
		seen      []poller.Observation
		now       float64
		pollsLeft int
	}{
		{"steady for 30 minutes of a 6h export", steady, 40, 0},
		{"steady, 50 polls left", steady, 40, 50},
		{"a continuation at 40% after 2h", []poller.Observation{obs(120, poller.StateProcessing, 4000, 10000)}, 120, 30},
	}
	for _, tt := range tests {
		now := t0.Add(time.Duration(tt.now * float64(time.Minute)))
		if got := a.Next(t0, tt.seen, now, tt.pollsLeft); got < 10*time.Minute {
			t.Errorf("%s: Next = %v; want at least 10m", tt.name, got)
		}
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

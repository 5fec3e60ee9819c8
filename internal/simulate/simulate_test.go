package simulate

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// TestDefaultBudget holds the adaptive schedule to the service's default
// budget (60 polls, 60 minutes): it may not run out of GETs where the fixed
// schedule does not, and it reports sooner.
func TestDefaultBudget(t *testing.T) {
	exports := Exports(3000, 11)
	budget := Budget{MaxPolls: 60, Wall: time.Hour}
	fixed := Run(exports, poller.Fixed{Every: time.Minute}, budget)
	adaptive := Run(exports, poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}, budget)
	if adaptive.TimedOut > fixed.TimedOut {
		t.Errorf("adaptive timed out %d exports, fixed %d; want no more", adaptive.TimedOut, fixed.TimedOut)
	}
	if adaptive.P50LatencySeconds >= fixed.P50LatencySeconds || adaptive.P95LatencySeconds >= fixed.P95LatencySeconds {
		t.Errorf("adaptive %+v is not sooner than fixed %+v", adaptive, fixed)
	}
	if adaptive.CallsPerExport > fixed.CallsPerExport {
		t.Errorf("adaptive makes %.1f calls per export, fixed %.1f", adaptive.CallsPerExport, fixed.CallsPerExport)
	}
}

// TestStalledShortOfTheEstimate: progress that stops below an estimate that
// was too high (FINALIZING at 90%) is polled at the near-end pace, not
// ever more rarely.
func TestStalledShortOfTheEstimate(t *testing.T) {
	a := poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}
	t0 := time.Unix(0, 0)
	o := func(m int, state poller.State, done int64) poller.Observation {
		return poller.Observation{At: t0.Add(time.Duration(m) * time.Minute), State: state, EntitiesCompleted: done, EntitiesEstimated: 1000}
	}
	seen := []poller.Observation{o(10, poller.StateProcessing, 100), o(150, poller.StateProcessing, 900), o(160, poller.StateProcessing, 900)}
	if w := a.Next(t0, seen, t0.Add(160*time.Minute), 0); w > 20*time.Second {
		t.Errorf("stalled at 90%%: wait %v; want the near-end pace", w)
	}
	seen = append(seen[:2], o(160, poller.StateFinalizing, 900))
	if w := a.Next(t0, seen, t0.Add(160*time.Minute), 0); w > 20*time.Second {
		t.Errorf("FINALIZING at 90%%: wait %v; want the near-end pace", w)
	}
}

func TestBand(t *testing.T) {
	tests := []struct {
		length time.Duration
		want   string
	}{
		{time.Minute, "<2m"}, {2*time.Minute - 1, "<2m"}, {2 * time.Minute, "2m-10m"}, {10 * time.Minute, "10m-1h"},
		{59 * time.Minute, "10m-1h"}, {time.Hour, "1h-6h"}, {6*time.Hour - 1, "1h-6h"}, {6 * time.Hour, ">=6h"}, {48 * time.Hour, ">=6h"},
	}
	for _, tt := range tests {
		if got := bands[band(tt.length)].name; got != tt.want {
			t.Errorf("band(%v) = %q; want %q", tt.length, got, tt.want)
		}
	}
}

// TestSummarize: the maximum is the longest latency of the exports that did
// not time out, calls count every export, and each band and kind has only
// its own exports; empty ones are left out.
func TestSummarize(t *testing.T) {
	outcomes := []outcome{
		{length: time.Minute, kind: 2, latency: 4, calls: 10},
		{length: 90 * time.Second, kind: 0, latency: 300, calls: 4},
		{length: 30 * time.Minute, kind: 2, latency: 10, calls: 20},
		{length: 40 * time.Minute, kind: 1, latency: 700, calls: 30, timedOut: true},
		{length: 7 * time.Hour, kind: 2, latency: 2, calls: 200},
	}
	res := summarize(outcomes)
	if got, want := res.MaxLatencySeconds, 300.0; got != want {
		t.Errorf("max latency = %v; want %v", got, want)
	}
	if got, want := res.CallsPerExport, 52.8; got != want {
		t.Errorf("calls per export = %v; want %v", got, want)
	}
	if got, want := res.TimedOut, 1; got != want {
		t.Errorf("timed out = %d; want %d", got, want)
	}
	want := []Figures{
		{Name: "<2m", Exports: 2, P50LatencySeconds: 4, P95LatencySeconds: 300, MaxLatencySeconds: 300, CallsPerExport: 7},
		{Name: "10m-1h", Exports: 2, P50LatencySeconds: 10, P95LatencySeconds: 10, MaxLatencySeconds: 10, CallsPerExport: 25, TimedOut: 1},
		{Name: ">=6h", Exports: 1, P50LatencySeconds: 2, P95LatencySeconds: 2, MaxLatencySeconds: 2, CallsPerExport: 200},
	}
	if !reflect.DeepEqual(res.Bands, want) {
		t.Errorf("bands = %+v; want %+v", res.Bands, want)
	}
	var kindNames []string
	for _, k := range res.Kinds {
		kindNames = append(kindNames, fmt.Sprintf("%s:%d", k.Name, k.Exports))
	}
	if got, want := strings.Join(kindNames, " "), "slow start:1 no estimate:1 others:3"; got != want {
		t.Errorf("kinds = %s; want %s", got, want)
	}
}

// TestSlowStarts: about 1% of the exports start with a trickle, and a GET
// every 5s sees a tiny fraction done (under 1%) when it first sees
// progress, the tail case of the adaptive schedule.
func TestSlowStarts(t *testing.T) {
	exports := Exports(10000, 1)
	n := 0
	for _, e := range exports {
		if e.warmup == 0 {
			continue
		}
		n++
		for at := 5 * time.Second; at < e.length; at += 5 * time.Second {
			if o := e.at(at); o.BytesCompleted > 0 {
				if f := float64(o.BytesCompleted) / float64(o.BytesEstimated); f >= 0.01 {
					t.Errorf("slow start of %v: first progress at %v is %.4f done; want a tiny fraction", e.length, at, f)
				}
				break
			}
		}
	}
	if n < 50 || n > 150 {
		t.Errorf("%d of 10000 exports start slowly; want about 100", n)
	}
}

// TestAdaptiveTail: over the simulated exports, slow starts included, no
// export with an estimate is reported more than NearMax (20s) after its end
// by the adaptive schedule, with simulate's budget of 400 polls; with the
// service's default of 60, where the near-end pace stretches as the polls
// left run short, no later than the fixed schedule's 60s. Before the
// schedule looked no further than it had watched, the worst waited 8 and 10
// minutes. Exports with no estimate at all are probed at half the time
// elapsed and have no such bound.
func TestAdaptiveTail(t *testing.T) {
	exports := Exports(10000, 1)
	for _, tt := range []struct {
		budget Budget
		want   float64
	}{{Budget{MaxPolls: 400, Wall: 400 * time.Minute}, 20}, {Budget{MaxPolls: 60, Wall: time.Hour}, 60}} {
		res := Run(exports, poller.Adaptive{Min: 5 * time.Second, Max: 15 * time.Minute}, tt.budget)
		for _, k := range res.Kinds {
			if k.Name != "no estimate" && k.MaxLatencySeconds > tt.want {
				t.Errorf("budget %d polls: %s: max latency %.1fs; want at most %.0fs", tt.budget.MaxPolls, k.Name, k.MaxLatencySeconds, tt.want)
			}
		}
		var max float64
		for _, b := range res.Bands {
			max = math.Max(max, b.MaxLatencySeconds)
		}
		if max != res.MaxLatencySeconds {
			t.Errorf("budget %d polls: max latency %.1fs; the bands' is %.1fs", tt.budget.MaxPolls, res.MaxLatencySeconds, max)
		}
	}
}

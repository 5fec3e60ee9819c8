package simulate

import (
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

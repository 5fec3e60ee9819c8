package poller

import "time"

// Observation is one reading of an operation, as a Schedule sees it.
type Observation struct {
	At    time.Time
	State State
	Done  bool

	EntitiesCompleted, EntitiesEstimated int64
	BytesCompleted, BytesEstimated       int64
}

// ObservationOf is op read at t.
func ObservationOf(op Operation, t time.Time) Observation {
	return Observation{At: t, State: op.State, Done: op.Done,
		EntitiesCompleted: op.EntitiesCompleted, EntitiesEstimated: op.EntitiesEstimated,
		BytesCompleted: op.BytesCompleted, BytesEstimated: op.BytesEstimated}
}

// Schedule decides how long the poller waits before its next GET.
type Schedule interface {
	// Next is the wait before the next poll of an operation that started
	// at start, given its readings so far (oldest first, at least one), the
	// time now, and how many polls its budget has left (0: no limit).
	Next(start time.Time, seen []Observation, now time.Time, pollsLeft int) time.Duration
	// Longest is the longest wait Next can return: a poller's lease must
	// outlive it.
	Longest() time.Duration
}

// Fixed polls every Every, as the original design did.
type Fixed struct{ Every time.Duration }

// Next returns Every.
func (f Fixed) Next(time.Time, []Observation, time.Time, int) time.Duration { return f.Every }

// Longest returns Every.
func (f Fixed) Longest() time.Duration { return f.Every }

// Adaptive polls rarely while the end of an export is far and often when it
// is near. From the progress so far (entities, or bytes when entities have no
// estimate) it estimates when the export ends, and halves its distance to a
// margin before that time; inside the margin, and once the estimate is passed
// (FINALIZING, an estimate that was too low), it polls every Near. With no
// progress to go by (INITIALIZING, no estimates at all, a stall from the
// start) it waits half the time elapsed, so probing costs a few calls
// whatever the export's length. Every wait lies within [Min, Max].
type Adaptive struct {
	Min, Max time.Duration
	// NearMax caps the wait near the end: the report comes at most NearMax
	// after the export ends, when the estimate was right. Zero means 20s.
	NearMax time.Duration
}

// Near-end behaviour: the wait near the end is this fraction of the export's
// expected length (so a long export, whose end is less sharply known, is
// polled a little less often), between Min and NearMax; the margin is this
// fraction of the expected length, the uncertainty of an estimate.
const (
	nearFraction   = 0.002
	marginFraction = 0.05
)

// Longest returns Max: every wait lies within [Min, Max].
func (a Adaptive) Longest() time.Duration { return a.Max }

// Next implements Schedule.
func (a Adaptive) Next(start time.Time, seen []Observation, now time.Time, pollsLeft int) time.Duration {
	nearMax := a.NearMax
	if nearMax <= 0 {
		nearMax = 20 * time.Second
	}
	elapsed := now.Sub(start)
	if elapsed < 0 {
		elapsed = 0
	}
	last := seen[len(seen)-1]
	frac, measure := fraction(last)
	if measure == noMeasure || frac <= 0 {
		return clamp(elapsed/2, a.Min, a.Max)
	}
	// The rate since progress was first seen on the same measure smooths
	// noise and takes stalls into account; with a single reading, the rate
	// since the start.
	rate := frac / elapsed.Seconds()
	// span is how long progress has been watched: no wait looks further
	// ahead than that, so a rate read from one early reading (which may
	// count an initializing phase as slow progress) is checked again soon.
	span := elapsed / 2
	for _, o := range seen {
		f0, m0 := fraction(o)
		if m0 == measure && f0 > 0 && o.At.Before(last.At) && frac > f0 {
			rate = (frac - f0) / last.At.Sub(o.At).Seconds()
			span = now.Sub(o.At)
			break
		}
	}
	remaining := time.Duration(0)
	if frac < 1 && rate > 0 {
		remaining = time.Duration((1 - frac) / rate * float64(time.Second))
	}
	total := elapsed + remaining
	near := clamp(time.Duration(float64(total)*nearFraction), a.Min, min(nearMax, a.Max))
	margin := time.Duration(float64(total)*marginFraction) + near
	if pollsLeft > 0 {
		// The near end (the margin and a finalizing phase of up to as long)
		// must not spend more polls than are left: the budget of GETs is
		// the fixed schedule's, and running out means a timeout report.
		near = min(max(near, 2*margin/time.Duration(pollsLeft)), a.Max)
	}
	// FINALIZING, or progress that stopped short of an estimate that was
	// too high: the end can come at any poll.
	if last.State == StateFinalizing || (frac > 0.8 && stalled(seen, measure)) {
		return near
	}
	if remaining <= margin {
		return near
	}
	return clamp(min((remaining-margin)/2, span), near, a.Max)
}

// stalled tells whether the last two readings show the same progress.
func stalled(seen []Observation, m progressMeasure) bool {
	if len(seen) < 2 {
		return false
	}
	a, ma := fraction(seen[len(seen)-2])
	b, mb := fraction(seen[len(seen)-1])
	return ma == m && mb == m && a == b
}

type progressMeasure int

const (
	noMeasure progressMeasure = iota
	entityMeasure
	byteMeasure
)

// fraction is how far along an observation is, by entities when they have an
// estimate, else by bytes. It may exceed 1: estimates are only that.
func fraction(o Observation) (float64, progressMeasure) {
	switch {
	case o.EntitiesEstimated > 0:
		return float64(o.EntitiesCompleted) / float64(o.EntitiesEstimated), entityMeasure
	case o.BytesEstimated > 0:
		return float64(o.BytesCompleted) / float64(o.BytesEstimated), byteMeasure
	}
	return 0, noMeasure
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

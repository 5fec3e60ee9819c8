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
//
// No wait looks further ahead than progress has been watched: it is at most
// the near-end pace (at most NearMax) or twice the time since the first
// reading that showed progress, whichever is longer (the span alone while
// less than minFraction was done in it). A first reading with progress has
// been watched for no time, so however tiny the fraction it shows (3 of
// 119,972 entities after 5s) and however far the end it suggests, the next
// GET comes at the near-end pace; long waits need progress watched for
// long. A lone reading with no history (a continuation, an operation
// resumed from its record) that shows at least minFraction done may look
// half the time elapsed ahead, its rate being the rate since the start.
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
// minFraction is the least fraction done from which a rate is trusted to
// look far ahead: below it, a lone reading's rate since the start may count
// mostly the time before progress began (INITIALIZING, a slow start), and
// progress watched may be a slow start still.
const (
	nearFraction   = 0.002
	marginFraction = 0.05
	minFraction    = 0.01
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
	rate, ahead := progress(seen, measure, elapsed, now)
	remaining := time.Duration(0)
	if frac < 1 && rate > 0 {
		remaining = time.Duration((1 - frac) / rate * float64(time.Second))
	}
	total := elapsed + remaining
	near := clamp(time.Duration(float64(total)*nearFraction), a.Min, min(nearMax, a.Max))
	// longest is the longest wait the progress watched justifies.
	longest := min(max(near, ahead), a.Max)
	margin := time.Duration(float64(total)*marginFraction) + near
	if pollsLeft > 0 {
		// The near end (the margin and a finalizing phase of up to as long)
		// must not spend more polls than are left: the budget of GETs is
		// the fixed schedule's, and running out means a timeout report. An
		// estimate read from little progress may be far too long, and its
		// margin with it: the pace is no longer than the progress watched.
		near = min(max(near, 2*margin/time.Duration(pollsLeft)), longest)
	}
	// FINALIZING, or progress that stopped short of an estimate that was
	// too high: the end can come at any poll.
	if last.State == StateFinalizing || (frac > 0.8 && stalled(seen, measure)) {
		return near
	}
	if remaining <= margin {
		return near
	}
	return clamp((remaining-margin)/2, near, longest)
}

// progress is the rate of progress (fraction per second) on measure m, and
// the longest wait the readings justify. The rate since progress was first
// seen on m smooths noise and takes stalls into account; with a single
// reading with progress, it is the rate since the start. Progress watched
// for a span justifies a wait of twice that span, or of the span alone
// while less than minFraction was done in it; a single reading with
// progress has been watched for no time, unless it is all the history there
// is and shows at least minFraction done: then half the time elapsed.
func progress(seen []Observation, m progressMeasure, elapsed time.Duration, now time.Time) (rate float64, ahead time.Duration) {
	last := seen[len(seen)-1]
	frac, _ := fraction(last)
	rate = frac / elapsed.Seconds()
	if len(seen) == 1 && frac >= minFraction {
		ahead = elapsed / 2
	}
	first, moved := false, false
	for _, o := range seen[:len(seen)-1] {
		f0, m0 := fraction(o)
		if m0 != m || f0 <= 0 || !o.At.Before(last.At) {
			continue
		}
		if !first {
			first, ahead = true, now.Sub(o.At)
			if frac-f0 >= minFraction {
				ahead *= 2
			}
		}
		if !moved && frac > f0 {
			moved, rate = true, (frac-f0)/last.At.Sub(o.At).Seconds()
		}
	}
	return rate, ahead
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

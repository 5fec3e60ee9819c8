package poller

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound is returned by a Store that has no record of an operation.
var ErrNotFound = errors.New("operation not recorded")

// Record is what the store keeps about one operation: its latest snapshot and
// how following it went.
type Record struct {
	Operation
	// Polls is how many GETs of the operation were made after it was started,
	// failed ones included; it bounds the polling across restarts.
	Polls int
	// LastError is why the latest poll failed, if it did.
	LastError string
	Outcome   Outcome
	// ReportClaimed is when a poller claimed the report to send it; zero when unclaimed.
	ReportClaimed time.Time
	// Created is when dsexport recorded the operation, Updated the last change.
	Created, Updated time.Time
	// ReportedAt is when the report was delivered; zero while it is not.
	ReportedAt time.Time
}

// Reported tells whether the record's report was delivered.
func (r Record) Reported() bool { return !r.ReportedAt.IsZero() }

// Snapshot is one reading of an operation, kept as its history.
type Snapshot struct {
	// Poll is 0 for the reading returned by the start call, then 1, 2, ….
	Poll  int
	Time  time.Time
	State State
	Done  bool

	EntitiesCompleted, EntitiesEstimated int64
	BytesCompleted, BytesEstimated       int64
}

// SnapshotOf is the history entry for op read at t as poll number poll.
func SnapshotOf(op Operation, poll int, t time.Time) Snapshot {
	return Snapshot{
		Poll: poll, Time: t, State: op.State, Done: op.Done,
		EntitiesCompleted: op.EntitiesCompleted, EntitiesEstimated: op.EntitiesEstimated,
		BytesCompleted: op.BytesCompleted, BytesEstimated: op.BytesEstimated,
	}
}

// Store is the persistence the poller needs (a subset of store.Store).
type Store interface {
	// Create records a newly started operation and its first snapshot (poll 0).
	// Creating a name that exists already leaves the record as it is and returns it.
	Create(ctx context.Context, op Operation, at time.Time) (Record, error)
	// Get returns the record of name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Record, error)
	// AddSnapshot counts one poll, stores op as its snapshot and as the latest
	// state, all in one transaction, and returns the updated record.
	AddSnapshot(ctx context.Context, name string, op Operation, at time.Time) (Record, error)
	// CountPoll counts one poll that returned no snapshot (a failed GET) and
	// keeps pollErr as the record's LastError.
	CountPoll(ctx context.Context, name, pollErr string, at time.Time) (Record, error)
	// SetOutcome records how the operation ended; an outcome once set stays.
	SetOutcome(ctx context.Context, name string, outcome Outcome, at time.Time) (Record, error)
	// ClaimReport takes the right to send the report, in a transaction. It
	// returns false when the report was sent or another claim younger than
	// ttl holds it.
	ClaimReport(ctx context.Context, name string, at time.Time, ttl time.Duration) (Record, bool, error)
	// ReleaseReport gives a claim up after a failed send.
	ReleaseReport(ctx context.Context, name string, at time.Time) error
	// MarkReported records that the report was delivered at at, ending the claim.
	MarkReported(ctx context.Context, name string, at time.Time) error
}

// Notifier delivers reports (notifier.Slack, notifier.Text).
type Notifier interface {
	Notify(ctx context.Context, r Report) error
}

// Clock is the time source of the poll loop; tests move a fake one instead of sleeping.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real Clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

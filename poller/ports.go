package poller

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
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
	// ReportClaimed is when a poller claimed the report to send it; zero
	// when unclaimed. ReportClaimer names the Poll call (or sweep) that did.
	ReportClaimed time.Time
	ReportClaimer string
	// LeaseHolder is the poller that follows the operation until LeaseExpires.
	LeaseHolder  string
	LeaseExpires time.Time
	// Message is the progress message that follows the operation, if any.
	Message MessageRef
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

// Records is the persistence of operations and their history.
type Records interface {
	// Create records a newly started operation and its first snapshot (poll 0).
	// Creating a name that exists already leaves the record as it is and returns it.
	Create(ctx context.Context, op Operation, at time.Time) (Record, error)
	// Get returns the record of name, or an error wrapping ErrNotFound.
	Get(ctx context.Context, name string) (Record, error)
	// AddSnapshot records poll number poll: it counts it, stores op as its
	// snapshot and as the latest state, all in one transaction, and returns
	// the updated record. When the record has counted poll already (a retry
	// of a write that committed but answered late, or another poller's),
	// nothing changes and the record is returned as it is.
	AddSnapshot(ctx context.Context, name string, poll int, op Operation, at time.Time) (Record, error)
	// CountPoll records poll number poll as one that returned no snapshot (a
	// failed GET) and keeps pollErr as the record's LastError; like
	// AddSnapshot, a poll counted already changes nothing.
	CountPoll(ctx context.Context, name string, poll int, pollErr string, at time.Time) (Record, error)
	// SetOutcome records how the operation ended; an outcome once set stays.
	SetOutcome(ctx context.Context, name string, outcome Outcome, at time.Time) (Record, error)
	// SetMessage records the progress message that follows the operation.
	SetMessage(ctx context.Context, name string, ref MessageRef, at time.Time) error
	// Pending returns every operation whose report was not delivered.
	Pending(ctx context.Context) ([]Record, error)
}

// Leases keep two pollers from following one operation at once.
type Leases interface {
	// AcquireLease makes holder the operation's poller until at+ttl, in a
	// transaction, when LeaseFree allows it; false (and the record as it
	// is) otherwise.
	AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (Record, bool, error)
	// RenewLease extends holder's lease; ErrLeaseLost when it is not holder's.
	RenewLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) error
	// ReleaseLease ends holder's lease so the next sweep resumes the operation at once.
	ReleaseLease(ctx context.Context, name, holder string, at time.Time) error
}

// Reports keep a report from being sent twice.
type Reports interface {
	// ClaimReport takes the right to send the report for holder, in a
	// transaction, when CanClaimReport allows it; false (and the record as
	// it is) otherwise. holder's own claim is claimed again: a retry of a
	// claim that committed but answered late goes on.
	ClaimReport(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (Record, bool, error)
	// ReleaseReport gives holder's claim up after a failed send; a claim
	// that is no longer holder's is left alone.
	ReleaseReport(ctx context.Context, name, holder string, at time.Time) error
	// MarkReported records that the report was delivered at at, ending the claim.
	MarkReported(ctx context.Context, name string, at time.Time) error
}

// Health is the persistence of each project's successes and staleness alarm.
type Health interface {
	// RecordSuccess makes rec the latest success of its project and filter,
	// as OrderSuccess places it, and returns the one before it (ok false
	// when there was none). Called again for the same operation it returns
	// the same previous success. It writes the filter's record alone: no
	// record is written by every success of a project, so that a burst of
	// them does not queue on one (the project's last success is the newest
	// of its filters', LatestSuccess).
	RecordSuccess(ctx context.Context, rec Record, at time.Time) (previous Success, ok bool, err error)
	// Health returns the project's staleness record, creating it at at (or
	// when the project's first success was recorded, if earlier).
	Health(ctx context.Context, project string, at time.Time) (ProjectHealth, error)
	// ClaimStaleAlarm records, in a transaction, that holder is raising the
	// alarm for forTime; false when it was raised already by another holder.
	// holder's own claim is claimed again.
	ClaimStaleAlarm(ctx context.Context, project, holder string, forTime, at time.Time) (bool, error)
	// ReleaseStaleAlarm undoes holder's claim whose alarm could not be sent;
	// with no claim of holder's (or no staleness record) it does nothing.
	ReleaseStaleAlarm(ctx context.Context, project, holder string, forTime time.Time) error
}

// BackupStore is the persistence of the backup watch (store.Store,
// memstore.Store): what it remembers of each target, the backups it
// recorded, and the claims that send each notice once. It is apart from
// Store so that a store without it still serves the exports.
type BackupStore interface {
	// WatchState returns what the watch remembers of target; a zero state
	// (First) naming target when it was never watched.
	WatchState(ctx context.Context, target string) (WatchState, error)
	// SaveWatchState replaces the target's state with st.
	SaveWatchState(ctx context.Context, st WatchState) error
	// RecordBackup records b as one of target's backups, keyed by target
	// and its name (each target its own record; CheckBackupRecord says
	// which names fit); recording it again changes nothing, but a backup
	// recorded NOT_AVAILABLE stays so.
	RecordBackup(ctx context.Context, target string, b Backup, at time.Time) error
	// ClaimNotice takes the right to send target's notice key for holder,
	// in a transaction, when CanClaimNotice allows it; false (and the
	// claim as it is) otherwise.
	ClaimNotice(ctx context.Context, target, key, holder string, at time.Time, ttl time.Duration) (NoticeClaim, bool, error)
	// ReleaseNotice gives holder's claim up after a failed send; another's
	// claim, or a sent notice, is left alone.
	ReleaseNotice(ctx context.Context, target, key, holder string) error
	// MarkNoticeSent records that the notice was delivered at at, ending
	// the claim; a sent notice stays sent.
	MarkNoticeSent(ctx context.Context, target, key string, at time.Time) error
}

// Store is all the persistence the poller needs (store.Store, memstore.Store).
type Store interface {
	Records
	Leases
	Reports
	Starts
	Health
}

// ErrLeaseLost is returned when a lease was taken over by another poller.
var ErrLeaseLost = errors.New("lease held by another poller")

// ErrRateLimited is returned when a project had its starts for this minute.
var ErrRateLimited = errors.New("too many export starts this minute")

// ErrBusy is returned when the store could not take a start for contention:
// the caller may try again in a moment.
var ErrBusy = errors.New("too many starts at once")

// ErrStartInProgress is returned while another request is starting the same export.
var ErrStartInProgress = errors.New("another request is starting the same export")

// FilterKey names a project and entity filter, independently of the order
// of kinds and namespaces. It is JSON, so no kind can make two filters share
// a key.
func FilterKey(project string, kinds, namespaces []string) string {
	k := slices.Clone(kinds)
	n := slices.Clone(namespaces)
	slices.Sort(k)
	slices.Sort(n)
	b, _ := json.Marshal([]any{project, k, n}) // strings always marshal
	return string(b)
}

// Success is the latest successful export of one project and filter.
type Success struct {
	Name     string
	Entities int64
	At       time.Time
}

// ProjectHealth is what the staleness alarm needs to know about a project.
type ProjectHealth struct {
	Project string
	// Since is when dsexport first looked at the project: without any
	// success, staleness counts from there.
	Since       time.Time
	LastSuccess Success
	// AlarmFor is the LastSuccess.At (or Since) the staleness alarm was
	// raised for; the alarm is not raised again until a newer success.
	// AlarmBy names the sweep that raised it.
	AlarmFor time.Time
	AlarmBy  string
}

// StartRequest is what BeginStart decides on.
type StartRequest struct {
	Project   string
	FilterKey string
	Trigger   Trigger
	// Force starts even while an export of the same filter is running.
	Force bool
	// CronWindow: a cron start within this long of the previous cron start
	// of the same filter is a retry of it, not a new export.
	CronWindow time.Duration
	// PerMinute caps the starts of one project in a minute.
	PerMinute int
	// Holder names the Start call: its reservation is its own, so a retry
	// of a BeginStart that committed but answered late goes on, and
	// EndStart ends only its own reservation.
	Holder string
}

// Starts is the persistence that keeps exports from starting twice.
type Starts interface {
	// BeginStart decides on a start with DecideStart, in one transaction
	// over what it reads, and reserves it when the decision is to start.
	// It returns ErrStartInProgress or ErrRateLimited as DecideStart does,
	// and ErrBusy when contention kept it from deciding.
	BeginStart(ctx context.Context, req StartRequest, at time.Time) (StartDecision, error)
	// EndStart records the started operation (name empty: the start failed)
	// and ends req.Holder's reservation; another's is left alone.
	EndStart(ctx context.Context, req StartRequest, name string, at time.Time) error
}

// Notifier delivers reports (notifier.Slack, notifier.Text).
type Notifier interface {
	Notify(ctx context.Context, r Report) error
}

// MessageRef locates a posted message that can be updated later.
type MessageRef struct {
	Channel string
	TS      string
}

// IsZero tells whether r refers to no message.
func (r MessageRef) IsZero() bool { return r.TS == "" }

// ProgressNotifier follows an export in one message: posted when the export
// starts, updated as polls come in, and turned into the final report by
// Notify when the Report carries its MessageRef (notifier.Slack with a bot
// token).
type ProgressNotifier interface {
	Notifier
	// Started posts the "export started" message and says where it is.
	Started(ctx context.Context, r Report) (MessageRef, error)
	// Progress updates the message with r's latest snapshot.
	Progress(ctx context.Context, ref MessageRef, r Report) error
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

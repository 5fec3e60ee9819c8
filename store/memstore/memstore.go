// Package memstore keeps dsexport's operations in memory, for tests and
// local runs: the same behaviour as store.Store on Datastore, without one.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the poller's port.
var _ poller.Store = (*Store)(nil)

// Store is an in-memory record of export operations. It implements
// poller.Store and the read methods of store.Store, calling the poller's
// rules where store.Store does. One mutex guards everything, so each call is
// a transaction of its own.
type Store struct {
	mu        sync.Mutex
	ops       map[string]*entry
	successes map[string]successPair // by poller.FilterKey
	health    map[string]healthEntry // by project
	starts    map[string]startEntry  // by poller.FilterKey
	rates     map[rateKey]int        // starts of a project in a minute
	watch     watchData              // the backup watch's (backups.go)
	checks    checkData              // verifications and drills (verifications.go, drills.go)
}

// entry is one operation: its record, whether its report is still to be
// delivered (kept apart from ReportedAt as store.Store keeps it), and its
// history in poll order.
type entry struct {
	rec     poller.Record
	pending bool
	snaps   []poller.Snapshot
}

// successPair is a filter's last two successes, its project, and when its
// first success was recorded.
type successPair struct {
	last, prev poller.Success
	project    string
	firstSeen  time.Time
}

type healthEntry struct {
	since, alarmFor time.Time
	alarmBy         string
}

type startEntry struct {
	reserved     time.Time
	reservedBy   string
	running      string
	lastCronAt   time.Time
	lastCronName string
}

type rateKey struct{ project, minute string }

// New returns an empty Store.
func New() *Store {
	return &Store{
		ops:       make(map[string]*entry),
		successes: make(map[string]successPair),
		health:    make(map[string]healthEntry),
		starts:    make(map[string]startEntry),
		rates:     make(map[rateKey]int),
	}
}

// Close does nothing: the Store holds no connection. It is there so that
// code closing a store.Store can close a Store too.
func (s *Store) Close() error { return nil }

// storedTime is t as store.Store gives it back: UTC, whole microseconds.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// nilIfEmpty copies s, or returns nil when it is empty, as Datastore, which
// does not store empty arrays, gives it back.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// storedOperation is op as store.Store keeps it, named name.
func storedOperation(name string, op poller.Operation) poller.Operation {
	op.Name = name
	op.Kinds = nilIfEmpty(op.Kinds)
	op.Namespaces = nilIfEmpty(op.Namespaces)
	op.StartTime = storedTime(op.StartTime)
	op.EndTime = storedTime(op.EndTime)
	return op
}

// clone is rec without slices shared with the Store.
func clone(rec poller.Record) poller.Record {
	rec.Kinds = nilIfEmpty(rec.Kinds)
	rec.Namespaces = nilIfEmpty(rec.Namespaces)
	return rec
}

func storedSuccess(v poller.Success) poller.Success {
	v.At = storedTime(v.At)
	return v
}

// Create records a newly started operation with polls 0 and its poll-0
// snapshot taken at at. If op.Name is recorded already, the existing record is
// returned unchanged: a retried start must not reset the poll count.
func (s *Store) Create(ctx context.Context, op poller.Operation, at time.Time) (poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, err
	}
	if op.Name == "" {
		return poller.Record{}, errors.New("create operation: empty name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.ops[op.Name]; ok {
		return clone(e.rec), nil
	}
	e := &entry{pending: true}
	e.rec.Operation = storedOperation(op.Name, op)
	e.rec.Created = storedTime(at)
	e.rec.Updated = e.rec.Created
	e.snaps = []poller.Snapshot{poller.SnapshotOf(op, 0, storedTime(at))}
	s.ops[op.Name] = e
	return clone(e.rec), nil
}

// Get returns the record of name, or an error wrapping poller.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[name]
	if !ok {
		return poller.Record{}, fmt.Errorf("get %s: %w", name, poller.ErrNotFound)
	}
	return clone(e.rec), nil
}

// update lets change modify the entry of name, under the lock, and then sets
// Updated to at, as store.Store's transaction does. An error from change
// leaves the entry as it was. what names the change in errors.
func (s *Store) update(what, name string, at time.Time, change func(e *entry) error) (poller.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[name]
	if !ok {
		return poller.Record{}, fmt.Errorf("%s %s: %w", what, name, poller.ErrNotFound)
	}
	// change works on a copy, so that a refusal changes nothing. The copy
	// may append to the history's array: nothing else reads past its end.
	c := *e
	if err := change(&c); errors.Is(err, errUnchanged) {
		return clone(e.rec), nil
	} else if err != nil {
		return poller.Record{}, fmt.Errorf("%s %s: %w", what, name, err)
	}
	c.rec.Updated = storedTime(at)
	*e = c
	return clone(c.rec), nil
}

// errUnchanged ends an update that has nothing to change: the entry, its
// Updated time included, stays as it is.
var errUnchanged = errors.New("unchanged")

// AddSnapshot records poll number poll of name: it counts it, stores op as
// that poll's snapshot taken at at and as the latest state, and returns the
// updated record. A poll counted already changes nothing. The record keeps
// its name whatever op.Name says.
func (s *Store) AddSnapshot(ctx context.Context, name string, poll int, op poller.Operation, at time.Time) (poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, err
	}
	return s.update("add snapshot to", name, at, func(e *entry) error {
		if e.rec.Polls >= poll {
			return errUnchanged
		}
		e.rec.Polls = poll
		e.rec.LastError = ""
		e.rec.Operation = storedOperation(name, op)
		e.snaps = append(e.snaps, poller.SnapshotOf(op, e.rec.Polls, storedTime(at)))
		return nil
	})
}

// CountPoll records poll number poll of name as one that returned no
// snapshot (a failed GET) and keeps why it failed; a poll counted already
// changes nothing.
func (s *Store) CountPoll(ctx context.Context, name string, poll int, pollErr string, at time.Time) (poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, err
	}
	return s.update("count poll of", name, at, func(e *entry) error {
		if e.rec.Polls >= poll {
			return errUnchanged
		}
		e.rec.Polls = poll
		e.rec.LastError = pollErr
		return nil
	})
}

// SetOutcome records how the operation name ended. The first outcome stays.
func (s *Store) SetOutcome(ctx context.Context, name string, outcome poller.Outcome, at time.Time) (poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, err
	}
	return s.update("set outcome of", name, at, func(e *entry) error {
		if e.rec.Outcome != poller.OutcomeNone {
			return errUnchanged
		}
		e.rec.Outcome = outcome
		return nil
	})
}

// SetMessage records the Slack message that follows name.
func (s *Store) SetMessage(ctx context.Context, name string, ref poller.MessageRef, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.update("set message of", name, at, func(e *entry) error {
		e.rec.Message = ref
		return nil
	})
	return err
}

// errRefused ends an update that a rule refused.
var errRefused = errors.New("refused")

// refusable runs update and turns a refusal into false and the record as it is.
func (s *Store) refusable(ctx context.Context, what, name string, at time.Time, change func(e *entry) error) (poller.Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.Record{}, false, err
	}
	rec, err := s.update(what, name, at, change)
	if errors.Is(err, errRefused) {
		rec, err = s.Get(ctx, name)
		return rec, false, err
	}
	return rec, err == nil, err
}

// ClaimReport takes the right to send the report on name for holder when
// poller.CanClaimReport allows it; false and the record as it is otherwise.
func (s *Store) ClaimReport(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (poller.Record, bool, error) {
	return s.refusable(ctx, "claim report of", name, at, func(e *entry) error {
		if !poller.CanClaimReport(e.rec, holder, at, ttl) {
			return errRefused
		}
		e.rec.ReportClaimed, e.rec.ReportClaimer = storedTime(at), holder
		return nil
	})
}

// ReleaseReport gives up holder's claim after a failed send, so the report
// is tried again; another's claim is left alone.
func (s *Store) ReleaseReport(ctx context.Context, name, holder string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.update("release report of", name, at, func(e *entry) error {
		if e.rec.ReportClaimer != holder || e.rec.ReportClaimed.IsZero() {
			return errUnchanged
		}
		e.rec.ReportClaimed, e.rec.ReportClaimer = time.Time{}, ""
		return nil
	})
	return err
}

// MarkReported records that the report on name was delivered at at.
func (s *Store) MarkReported(ctx context.Context, name string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.update("mark reported", name, at, func(e *entry) error {
		if e.rec.Reported() {
			return errUnchanged
		}
		e.rec.ReportedAt = storedTime(at)
		e.rec.ReportClaimed, e.rec.ReportClaimer = time.Time{}, ""
		e.pending = false
		return nil
	})
	return err
}

// AcquireLease makes holder the poller of name until at+ttl when
// poller.LeaseFree allows it; false and the record as it is otherwise.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (poller.Record, bool, error) {
	return s.refusable(ctx, "acquire lease of", name, at, func(e *entry) error {
		if !poller.LeaseFree(e.rec, holder, at) {
			return errRefused
		}
		e.rec.LeaseHolder, e.rec.LeaseExpires = holder, storedTime(at.Add(ttl))
		return nil
	})
}

// RenewLease extends holder's lease to at+ttl; poller.ErrLeaseLost when the
// lease is not holder's.
func (s *Store) RenewLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.update("renew lease of", name, at, func(e *entry) error {
		if e.rec.LeaseHolder != holder {
			return poller.ErrLeaseLost
		}
		e.rec.LeaseExpires = storedTime(at.Add(ttl))
		return nil
	})
	return err
}

// ReleaseLease ends holder's lease; a lease taken over meanwhile is left alone.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := s.update("release lease of", name, at, func(e *entry) error {
		if e.rec.LeaseHolder != holder {
			return errUnchanged
		}
		e.rec.LeaseHolder, e.rec.LeaseExpires = "", time.Time{}
		return nil
	})
	return err
}

// Pending returns the operations whose report was not delivered, by name as
// Datastore's query gives them.
func (s *Store) Pending(ctx context.Context) ([]poller.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]poller.Record, 0)
	for _, e := range s.ops {
		if e.pending {
			recs = append(recs, clone(e.rec))
		}
	}
	slices.SortFunc(recs, func(a, b poller.Record) int { return strings.Compare(a.Name, b.Name) })
	return recs, nil
}

// Snapshots returns the history of name, oldest first by poll number; none
// for a name that is not recorded.
func (s *Store) Snapshots(ctx context.Context, name string) ([]poller.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.ops[name]
	if !ok {
		return make([]poller.Snapshot, 0), nil
	}
	return slices.Clone(e.snaps), nil
}

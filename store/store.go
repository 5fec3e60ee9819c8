// Package store keeps dsexport's operations and their snapshot history in
// Cloud Datastore (Firestore in Datastore mode).
package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"cloud.google.com/go/datastore"
	"google.golang.org/api/option"

	"github.com/dsexport/dsexport/poller"
)

// The entity kinds. They are part of the stored data: renaming one orphans
// every entity written before.
const (
	operationKind = "DSExportOperation"
	snapshotKind  = "DSExportSnapshot"
)

// txAttempts bounds how often a read-modify-write is retried when another
// transaction on the same entities wins. The client's default of 3 is too
// few when instances of the service touch one operation at the same moment;
// the caller's deadline ends the attempts sooner.
const txAttempts = 10

// Store is the Datastore-backed record of export operations. It implements
// poller.Store.
type Store struct {
	client *datastore.Client
	// locks queues this process's transactions on the same entities (see
	// transact).
	locks keyLocks
}

// New connects to Datastore in projectID's (default) database. The client
// honours DATASTORE_EMULATOR_HOST, so tests and local runs reach the
// emulator without options.
func New(ctx context.Context, projectID string, opts ...option.ClientOption) (*Store, error) {
	return NewIn(ctx, projectID, "", opts...)
}

// NewIn connects to Datastore in database of projectID ("" or "(default)":
// the default database). dsexport keeps its records in a database of their
// own (DefaultDatabase), so that no export of a database carries them.
func NewIn(ctx context.Context, projectID, database string, opts ...option.ClientOption) (*Store, error) {
	if database == poller.DefaultDatabase {
		database = ""
	}
	client, err := datastore.NewClientWithDatabase(ctx, projectID, database, opts...)
	if err != nil {
		return nil, fmt.Errorf("datastore client for %s: %w", poller.Scope(projectID, database), err)
	}
	return NewFromClient(client), nil
}

// DefaultDatabase is the database dsexport's records live in unless
// configured otherwise (store: in the file, DSEXPORT_STORE_DATABASE).
const DefaultDatabase = "dsexport"

// NewFromClient wraps a client built elsewhere; Close closes it.
func NewFromClient(client *datastore.Client) *Store {
	return &Store{client: client, locks: keyLocks{held: map[string]*keyLock{}}}
}

// Close releases the Datastore client.
func (s *Store) Close() error {
	return s.client.Close()
}

// operationEntity is the stored form of a poller.Record. Property names are
// lowerCamel and must stay stable: they are the data already written.
type operationEntity struct {
	Project string `datastore:"project"`
	// Database is the exported database ("" : (default), as versions before
	// named databases wrote it). Target is indexed: a target's operations
	// are listed by it.
	Database     string    `datastore:"database,noindex"`
	Target       string    `datastore:"target"`
	SnapshotTime time.Time `datastore:"snapshotTime,noindex"`
	Done         bool      `datastore:"done"`
	State        string    `datastore:"state"`
	Trigger      string    `datastore:"trigger"`
	Kinds        []string  `datastore:"kinds"`
	Namespaces   []string  `datastore:"namespaces"`
	// The URLs and the error message can exceed the 1500-byte limit of
	// indexed strings, and nothing queries by them.
	OutputURLPrefix string `datastore:"outputUrlPrefix,noindex"`
	OutputURL       string `datastore:"outputUrl,noindex"`

	EntitiesCompleted int64 `datastore:"entitiesCompleted"`
	EntitiesEstimated int64 `datastore:"entitiesEstimated"`
	BytesCompleted    int64 `datastore:"bytesCompleted"`
	BytesEstimated    int64 `datastore:"bytesEstimated"`

	StartTime time.Time `datastore:"startTime"`
	EndTime   time.Time `datastore:"endTime"`

	ErrorCode    int    `datastore:"errorCode"`
	ErrorMessage string `datastore:"errorMessage,noindex"`
	Refused      bool   `datastore:"refused"`

	Polls int `datastore:"polls"`
	// LastError is why the latest poll failed; a poll that reads the
	// operation clears it.
	LastError string `datastore:"lastError,noindex"`
	Outcome   string `datastore:"outcome"`
	// ReportClaimed is when a poller claimed the report before sending it;
	// zero when nobody holds the claim.
	ReportClaimed time.Time `datastore:"reportClaimed"`
	// ReportClaimer names who holds the claim (a Poll call, a sweep).
	ReportClaimer string `datastore:"reportClaimer,noindex"`
	// Pending is true until the report is delivered: the sweep queries it,
	// a single-property filter that needs no composite index.
	Pending      bool      `datastore:"pending"`
	LeaseHolder  string    `datastore:"leaseHolder,noindex"`
	LeaseExpires time.Time `datastore:"leaseExpires,noindex"`
	// MessageChannel and MessageTS locate the Slack message that follows
	// the export, when progress is posted.
	MessageChannel string    `datastore:"messageChannel,noindex"`
	MessageTS      string    `datastore:"messageTs,noindex"`
	Created        time.Time `datastore:"created"`
	Updated        time.Time `datastore:"updated"`
	ReportedAt     time.Time `datastore:"reportedAt"`
}

// snapshotEntity is the stored form of a poller.Snapshot, a child of its
// operation's entity.
type snapshotEntity struct {
	Poll  int       `datastore:"poll"`
	Time  time.Time `datastore:"time"`
	State string    `datastore:"state"`
	Done  bool      `datastore:"done"`

	EntitiesCompleted int64 `datastore:"entitiesCompleted"`
	EntitiesEstimated int64 `datastore:"entitiesEstimated"`
	BytesCompleted    int64 `datastore:"bytesCompleted"`
	BytesEstimated    int64 `datastore:"bytesEstimated"`
}

func operationKey(name string) *datastore.Key {
	return datastore.NameKey(operationKind, name, nil)
}

// snapshotKey names a snapshot by its zero-padded poll number so that key
// order, which ancestor queries give without a composite index, is poll order.
func snapshotKey(parent *datastore.Key, poll int) *datastore.Key {
	return datastore.NameKey(snapshotKind, fmt.Sprintf("%06d", poll), parent)
}

// storedTime is t as Datastore gives it back: UTC, whole microseconds. Writing
// it in that form makes a record read back equal to the one returned on write.
func storedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// loadedTime undoes the one difference left after storedTime: the zero time
// comes back as 0001-01-01 in UTC, which is the zero time, but normalizing it
// keeps IsZero and == in agreement for callers.
func loadedTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// setOperation copies op's fields into e as the latest snapshot.
func (e *operationEntity) setOperation(op poller.Operation) {
	e.Project = op.Project
	e.Database = op.Database
	e.Target = op.Target
	e.SnapshotTime = storedTime(op.SnapshotTime)
	e.Done = op.Done
	e.State = string(op.State)
	e.Trigger = string(op.Trigger)
	e.Kinds = slices.Clone(op.Kinds)
	e.Namespaces = slices.Clone(op.Namespaces)
	e.OutputURLPrefix = op.OutputURLPrefix
	e.OutputURL = op.OutputURL
	e.EntitiesCompleted = op.EntitiesCompleted
	e.EntitiesEstimated = op.EntitiesEstimated
	e.BytesCompleted = op.BytesCompleted
	e.BytesEstimated = op.BytesEstimated
	e.StartTime = storedTime(op.StartTime)
	e.EndTime = storedTime(op.EndTime)
	e.ErrorCode = op.ErrorCode
	e.ErrorMessage = op.ErrorMessage
	e.Refused = op.Refused
}

// record is e as the poller sees it. Empty slices come back nil whatever was
// written, because Datastore does not store empty arrays.
func (e *operationEntity) record(name string) poller.Record {
	nilIfEmpty := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Clone(s)
	}
	return poller.Record{
		Operation: poller.Operation{
			Name:              name,
			Project:           e.Project,
			Database:          e.Database,
			Target:            e.Target,
			SnapshotTime:      loadedTime(e.SnapshotTime),
			Done:              e.Done,
			State:             poller.State(e.State),
			Trigger:           poller.Trigger(e.Trigger),
			Kinds:             nilIfEmpty(e.Kinds),
			Namespaces:        nilIfEmpty(e.Namespaces),
			OutputURLPrefix:   e.OutputURLPrefix,
			OutputURL:         e.OutputURL,
			EntitiesCompleted: e.EntitiesCompleted,
			EntitiesEstimated: e.EntitiesEstimated,
			BytesCompleted:    e.BytesCompleted,
			BytesEstimated:    e.BytesEstimated,
			StartTime:         loadedTime(e.StartTime),
			EndTime:           loadedTime(e.EndTime),
			ErrorCode:         e.ErrorCode,
			ErrorMessage:      e.ErrorMessage,
			Refused:           e.Refused,
		},
		Polls:         e.Polls,
		LastError:     e.LastError,
		Outcome:       poller.Outcome(e.Outcome),
		ReportClaimed: loadedTime(e.ReportClaimed),
		ReportClaimer: e.ReportClaimer,
		LeaseHolder:   e.LeaseHolder,
		LeaseExpires:  loadedTime(e.LeaseExpires),
		Message:       poller.MessageRef{Channel: e.MessageChannel, TS: e.MessageTS},
		Created:       loadedTime(e.Created),
		Updated:       loadedTime(e.Updated),
		ReportedAt:    loadedTime(e.ReportedAt),
	}
}

func newSnapshotEntity(op poller.Operation, poll int, at time.Time) *snapshotEntity {
	return &snapshotEntity{
		Poll:              poll,
		Time:              storedTime(at),
		State:             string(op.State),
		Done:              op.Done,
		EntitiesCompleted: op.EntitiesCompleted,
		EntitiesEstimated: op.EntitiesEstimated,
		BytesCompleted:    op.BytesCompleted,
		BytesEstimated:    op.BytesEstimated,
	}
}

func (e *snapshotEntity) snapshot() poller.Snapshot {
	return poller.Snapshot{
		Poll:              e.Poll,
		Time:              loadedTime(e.Time),
		State:             poller.State(e.State),
		Done:              e.Done,
		EntitiesCompleted: e.EntitiesCompleted,
		EntitiesEstimated: e.EntitiesEstimated,
		BytesCompleted:    e.BytesCompleted,
		BytesEstimated:    e.BytesEstimated,
	}
}

// Create records a newly started operation with polls 0 and its poll-0
// snapshot taken at at. If op.Name is recorded already, the existing record is
// returned unchanged: a retried start must not reset the poll count.
func (s *Store) Create(ctx context.Context, op poller.Operation, at time.Time) (poller.Record, error) {
	if op.Name == "" {
		return poller.Record{}, errors.New("create operation: empty name")
	}
	key := operationKey(op.Name)
	var rec poller.Record
	err := s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		// A fresh entity per attempt: Get appends to slice fields.
		var e operationEntity
		err := tx.Get(key, &e)
		if err == nil {
			rec = e.record(op.Name)
			return nil
		}
		if !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		e.setOperation(op)
		e.Pending = true
		e.Created = storedTime(at)
		e.Updated = e.Created
		if _, err := tx.Put(key, &e); err != nil {
			return err
		}
		if _, err := tx.Put(snapshotKey(key, 0), newSnapshotEntity(op, 0, at)); err != nil {
			return err
		}
		rec = e.record(op.Name)
		return nil
	})
	if err != nil {
		return poller.Record{}, fmt.Errorf("create %s: %w", op.Name, err)
	}
	return rec, nil
}

// Get returns the record of name, or an error wrapping poller.ErrNotFound.
func (s *Store) Get(ctx context.Context, name string) (poller.Record, error) {
	var e operationEntity
	if err := s.client.Get(ctx, operationKey(name), &e); err != nil {
		if errors.Is(err, datastore.ErrNoSuchEntity) {
			return poller.Record{}, fmt.Errorf("get %s: %w", name, poller.ErrNotFound)
		}
		return poller.Record{}, fmt.Errorf("get %s: %w", name, err)
	}
	return e.record(name), nil
}

// errUnchanged ends an update that has nothing to change: nothing is
// written, and the record is returned as it is.
var errUnchanged = errors.New("unchanged")

// update reads the entity of name in a transaction, lets change modify it
// (and write further entities through tx), and writes it back with Updated set
// to at; a change that returns errUnchanged writes nothing. what names the
// change in errors.
func (s *Store) update(ctx context.Context, what, name string, at time.Time, change func(tx *datastore.Transaction, key *datastore.Key, e *operationEntity) error) (poller.Record, error) {
	key := operationKey(name)
	var rec poller.Record
	err := s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		// A fresh entity per attempt: Get appends to slice fields.
		var e operationEntity
		if err := tx.Get(key, &e); err != nil {
			if errors.Is(err, datastore.ErrNoSuchEntity) {
				return poller.ErrNotFound
			}
			return err
		}
		if err := change(tx, key, &e); errors.Is(err, errUnchanged) {
			rec = e.record(name)
			return err
		} else if err != nil {
			return err
		}
		e.Updated = storedTime(at)
		if _, err := tx.Put(key, &e); err != nil {
			return err
		}
		rec = e.record(name)
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return rec, nil
	}
	if err != nil {
		return poller.Record{}, fmt.Errorf("%s %s: %w", what, name, err)
	}
	return rec, nil
}

// transact runs f in a read-write transaction, retried when another
// transaction on the same entities wins, after this process's other
// transactions on keys (the entities f reads) have ended.
//
// Queueing them here is what keeps both locking models fast. Datastore's
// optimistic locking fails a conflicting commit at once; Firestore in
// Datastore mode locks pessimistically: every read in a transaction takes a
// shared lock, a commit waits for the others' shared locks on what it
// writes, and two transactions that read one entity and then both write it
// wait on each other until one is aborted, about 2 s later on the Firestore
// emulator. Each such round commits one transaction at most, and the
// client's retries (20 ms at first, growing 1.3 times) start the next round
// at once; eight pollers of one process on one operation took 40-60 s for
// 24 writes there, most of them ending in ErrConcurrentTransaction, where a
// step has 5 s. Queued, they never hold a lock the others wait for, and
// only transactions of other processes still meet in Datastore.
//
// ctx bounds the wait for the queue and the attempts: none begins, and none
// commits, after ctx ended. A commit already sent is not cut off when ctx
// ends, but given commitGrace more to answer (see there).
func (s *Store) transact(ctx context.Context, keys []*datastore.Key, f func(tx *datastore.Transaction) error) error {
	unlock, err := s.locks.lock(ctx, keys)
	if err != nil {
		return err
	}
	defer unlock()
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(commitGrace, cancel) })
	defer stop()
	_, err = s.client.RunInTransaction(tctx, func(tx *datastore.Transaction) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := f(tx); err != nil {
			return err
		}
		// The client commits when f returns nil: not once ctx ended.
		return ctx.Err()
	}, datastore.MaxAttempts(txAttempts))
	return err
}

// commitGrace is how long a commit sent before the caller's deadline may go
// on after it. Under pessimistic locking a commit waits for the locks of
// other transactions, and a commit whose caller gave up while it waited is
// not withdrawn: on the Firestore emulator it landed when the lock was freed,
// after the error had been returned and after a read-back had seen nothing.
// A store call that failed that way would be retried and done twice (a poll
// counted twice, a claim taken by a caller who believes it failed). Waiting
// the commit out instead answers what happened. The emulator aborts a
// commit that waited about 2 s for a lock, so the grace outlasts that.
const commitGrace = 3 * time.Second

// keyLocks queues the transactions of one Store on the same entities.
type keyLocks struct {
	mu   sync.Mutex
	held map[string]*keyLock // by key, while anyone holds or awaits it
}

type keyLock struct {
	token chan struct{} // full while the key is held
	users int           // holders and waiters
}

// lock takes keys in a fixed order (so that two transactions on overlapping
// keys cannot wait on each other) and returns the function that gives them
// back. It fails, holding nothing, when ctx ends first.
func (l *keyLocks) lock(ctx context.Context, keys []*datastore.Key) (unlock func(), err error) {
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.String()
	}
	slices.Sort(names)
	names = slices.Compact(names)
	var taken []*keyLock
	unlock = func() {
		for i := len(taken) - 1; i >= 0; i-- {
			<-taken[i].token
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, kl := range taken {
			l.drop(names[i], kl)
		}
	}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			unlock()
			return nil, err
		}
		l.mu.Lock()
		kl := l.held[name]
		if kl == nil {
			kl = &keyLock{token: make(chan struct{}, 1)}
			l.held[name] = kl
		}
		kl.users++
		l.mu.Unlock()
		select {
		case kl.token <- struct{}{}:
			taken = append(taken, kl)
		case <-ctx.Done():
			unlock()
			l.mu.Lock()
			l.drop(name, kl)
			l.mu.Unlock()
			return nil, fmt.Errorf("wait for this process's transaction on %s: %w", name, ctx.Err())
		}
	}
	return unlock, nil
}

// drop counts one user of kl less, forgetting it with the last; l.mu is held.
func (l *keyLocks) drop(name string, kl *keyLock) {
	if kl.users--; kl.users == 0 {
		delete(l.held, name)
	}
}

// AddSnapshot records poll number poll of name: it counts it, stores op as
// that poll's snapshot taken at at and as the latest state, in one
// transaction, and returns the updated record. A poll counted already (the
// retry of a commit that answered late) changes nothing. The record keeps
// its name whatever op.Name says.
func (s *Store) AddSnapshot(ctx context.Context, name string, poll int, op poller.Operation, at time.Time) (poller.Record, error) {
	return s.update(ctx, "add snapshot to", name, at, func(tx *datastore.Transaction, key *datastore.Key, e *operationEntity) error {
		if e.Polls >= poll {
			return errUnchanged
		}
		e.Polls = poll
		e.LastError = ""
		e.setOperation(op)
		_, err := tx.Put(snapshotKey(key, e.Polls), newSnapshotEntity(op, e.Polls, at))
		return err
	})
}

// CountPoll records poll number poll of name as one that returned no
// snapshot (a failed GET), so that failures also use up the polling budget,
// and keeps why it failed; a poll counted already changes nothing.
func (s *Store) CountPoll(ctx context.Context, name string, poll int, pollErr string, at time.Time) (poller.Record, error) {
	return s.update(ctx, "count poll of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if e.Polls >= poll {
			return errUnchanged
		}
		e.Polls = poll
		e.LastError = pollErr
		return nil
	})
}

// SetOutcome records how the operation name ended. The first outcome stays:
// two pollers that disagree (a timeout against a late success) must not
// change what was decided, or reported, first.
func (s *Store) SetOutcome(ctx context.Context, name string, outcome poller.Outcome, at time.Time) (poller.Record, error) {
	return s.update(ctx, "set outcome of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if e.Outcome != "" {
			return errUnchanged
		}
		e.Outcome = string(outcome)
		return nil
	})
}

// errClaimed ends a claim transaction that found the report taken.
var errClaimed = errors.New("report already claimed or sent")

// ClaimReport takes the right to send the report on name for holder, in a
// transaction: it fails (false) when the report was sent, or when another
// holder's claim younger than ttl holds it. holder's own claim is claimed
// again (its earlier claim committed but answered late); an older claim
// belongs to a poller that died while sending, and is taken over.
func (s *Store) ClaimReport(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (poller.Record, bool, error) {
	rec, err := s.update(ctx, "claim report of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if !poller.CanClaimReport(e.record(name), holder, at, ttl) {
			return errClaimed
		}
		e.ReportClaimed, e.ReportClaimer = storedTime(at), holder
		return nil
	})
	if errors.Is(err, errClaimed) {
		rec, err = s.Get(ctx, name)
		return rec, false, err
	}
	return rec, err == nil, err
}

// ReleaseReport gives up holder's claim after a failed send, so the report
// is tried again; another's claim is left alone.
func (s *Store) ReleaseReport(ctx context.Context, name, holder string, at time.Time) error {
	_, err := s.update(ctx, "release report of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if e.ReportClaimer != holder || e.ReportClaimed.IsZero() {
			return errUnchanged
		}
		e.ReportClaimed, e.ReportClaimer = time.Time{}, ""
		return nil
	})
	return err
}

// MarkReported records that the report on name was delivered at at.
func (s *Store) MarkReported(ctx context.Context, name string, at time.Time) error {
	_, err := s.update(ctx, "mark reported", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if !e.ReportedAt.IsZero() {
			return errUnchanged
		}
		e.ReportedAt = storedTime(at)
		e.ReportClaimed, e.ReportClaimer = time.Time{}, ""
		e.Pending = false
		return nil
	})
	return err
}

// SetMessage records the Slack message that follows name.
func (s *Store) SetMessage(ctx context.Context, name string, ref poller.MessageRef, at time.Time) error {
	_, err := s.update(ctx, "set message of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		e.MessageChannel, e.MessageTS = ref.Channel, ref.TS
		return nil
	})
	return err
}

// List returns up to limit records, newest first by Created; limit <= 0 means
// all of them.
func (s *Store) List(ctx context.Context, limit int) ([]poller.Record, error) {
	return s.ListTarget(ctx, "", limit)
}

// ListTarget is List of one target's records ("" : every target's). The
// query on target ordered by created needs the composite index in
// index.yaml.
func (s *Store) ListTarget(ctx context.Context, target string, limit int) ([]poller.Record, error) {
	q := datastore.NewQuery(operationKind).Order("-created")
	if target != "" {
		q = q.FilterField("target", "=", target)
	}
	if limit > 0 {
		q = q.Limit(limit)
	}
	var es []operationEntity
	keys, err := s.client.GetAll(ctx, q, &es)
	if err != nil {
		return nil, fmt.Errorf("list operations: %w", err)
	}
	recs := make([]poller.Record, len(es))
	for i := range es {
		recs[i] = es[i].record(keys[i].Name)
	}
	return recs, nil
}

// Snapshots returns the history of name, oldest first by poll number; none
// for a name that is not recorded.
func (s *Store) Snapshots(ctx context.Context, name string) ([]poller.Snapshot, error) {
	q := datastore.NewQuery(snapshotKind).Ancestor(operationKey(name)).Order("__key__")
	var es []snapshotEntity
	if _, err := s.client.GetAll(ctx, q, &es); err != nil {
		return nil, fmt.Errorf("snapshots of %s: %w", name, err)
	}
	snaps := make([]poller.Snapshot, len(es))
	for i := range es {
		snaps[i] = es[i].snapshot()
	}
	// Key order is poll order only while poll numbers fit the padding.
	slices.SortStableFunc(snaps, func(a, b poller.Snapshot) int { return a.Poll - b.Poll })
	return snaps, nil
}

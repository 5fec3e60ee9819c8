package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/datastore"

	"github.com/dsexport/dsexport/poller"
)

// Kinds of the entities that coordinate pollers and starts. Like the
// operation kinds they are part of the stored data.
const (
	successKind = "DSExportSuccess" // keyed by filter: the last two successes
	healthKind  = "DSExportHealth"  // keyed by project: the staleness alarm
	startKind   = "DSExportStart"   // keyed by filter: what was started last
	rateKind    = "DSExportRate"    // keyed by project and minute: starts counted
)

// filterKeyName turns a poller.FilterKey, which may be long and holds NULs,
// into a key name.
func filterKeyName(filterKey string) string {
	sum := sha256.Sum256([]byte(filterKey))
	return hex.EncodeToString(sum[:16])
}

// AcquireLease makes holder the poller of name until at+ttl, unless another
// holder's lease is still running.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (poller.Record, bool, error) {
	rec, err := s.update(ctx, "acquire lease of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if !poller.LeaseFree(e.record(name), holder, at) {
			return poller.ErrLeaseLost
		}
		e.LeaseHolder, e.LeaseExpires = holder, storedTime(at.Add(ttl))
		return nil
	})
	if errors.Is(err, poller.ErrLeaseLost) {
		rec, err = s.Get(ctx, name)
		return rec, false, err
	}
	return rec, err == nil, err
}

// RenewLease extends holder's lease to at+ttl.
func (s *Store) RenewLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) error {
	_, err := s.update(ctx, "renew lease of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if e.LeaseHolder != holder {
			return poller.ErrLeaseLost
		}
		e.LeaseExpires = storedTime(at.Add(ttl))
		return nil
	})
	return err
}

// ReleaseLease ends holder's lease; a lease taken over meanwhile is left alone.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string, at time.Time) error {
	_, err := s.update(ctx, "release lease of", name, at, func(_ *datastore.Transaction, _ *datastore.Key, e *operationEntity) error {
		if e.LeaseHolder != holder {
			return errUnchanged
		}
		e.LeaseHolder, e.LeaseExpires = "", time.Time{}
		return nil
	})
	return err
}

// Pending returns the operations whose report was not delivered, in no
// particular order: the sweep looks at each.
func (s *Store) Pending(ctx context.Context) ([]poller.Record, error) {
	q := datastore.NewQuery(operationKind).FilterField("pending", "=", true)
	var es []operationEntity
	keys, err := s.client.GetAll(ctx, q, &es)
	if err != nil {
		return nil, fmt.Errorf("list pending operations: %w", err)
	}
	recs := make([]poller.Record, len(es))
	for i := range es {
		recs[i] = es[i].record(keys[i].Name)
	}
	return recs, nil
}

// successEntity keeps the last two successes of one project and filter.
// Project is indexed: a project's health is read from its filters'
// successes, so that no entity is written by every success of a project
// (a burst of successes would queue on it, and the reports with them).
type successEntity struct {
	Project string       `datastore:"project"`
	Last    successValue `datastore:"last,noindex"`
	Prev    successValue `datastore:"prev,noindex"`
	// FirstSeen is when the filter's first success was recorded.
	FirstSeen time.Time `datastore:"firstSeen,noindex"`
}

type successValue struct {
	Name     string    `datastore:"name,noindex"`
	Entities int64     `datastore:"entities,noindex"`
	At       time.Time `datastore:"at,noindex"`
}

func (v successValue) success() poller.Success {
	return poller.Success{Name: v.Name, Entities: v.Entities, At: loadedTime(v.At)}
}

func successValueOf(s poller.Success) successValue {
	return successValue{Name: s.Name, Entities: s.Entities, At: storedTime(s.At)}
}

// healthEntity is the staleness alarm's record of one project: since when
// it is watched, and the alarm raised. Its last success is read from the
// project's success entities.
type healthEntity struct {
	Since    time.Time `datastore:"since,noindex"`
	AlarmFor time.Time `datastore:"alarmFor,noindex"`
	AlarmBy  string    `datastore:"alarmBy,noindex"`
	// LegacyLastSuccess is the project's last success as versions before
	// issue 10 wrote it with every success: read (their success entities
	// carry no project to be found by), never written.
	LegacyLastSuccess successValue `datastore:"lastSuccess,noindex"`
}

func (he healthEntity) health(project string, last poller.Success) poller.ProjectHealth {
	return poller.ProjectHealth{Project: project, Since: loadedTime(he.Since),
		LastSuccess: poller.LatestSuccess(last, he.LegacyLastSuccess.success()),
		AlarmFor:    loadedTime(he.AlarmFor), AlarmBy: he.AlarmBy}
}

// RecordSuccess makes rec the latest success of its filter, in one
// transaction over the filter's entity alone, and returns the filter's
// previous success.
func (s *Store) RecordSuccess(ctx context.Context, rec poller.Record, at time.Time) (poller.Success, bool, error) {
	fkey := datastore.NameKey(successKind, filterKeyName(poller.FilterKey(rec.Scope(), rec.Kinds, rec.Namespaces)), nil)
	this := successValueOf(poller.SuccessAt(rec, at))
	var prev successValue
	err := s.transact(ctx, []*datastore.Key{fkey}, func(tx *datastore.Transaction) error {
		var se successEntity
		if err := tx.Get(fkey, &se); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		last, before, previous := poller.OrderSuccess(se.Last.success(), se.Prev.success(), this.success())
		se.Last, se.Prev, prev = successValueOf(last), successValueOf(before), successValueOf(previous)
		se.Project = rec.Scope()
		if se.FirstSeen.IsZero() {
			se.FirstSeen = storedTime(at)
		}
		_, err := tx.Put(fkey, &se)
		return err
	})
	if err != nil {
		return poller.Success{}, false, fmt.Errorf("record success of %s: %w", rec.Name, err)
	}
	return prev.success(), prev.Name != "", nil
}

// Health returns the staleness record of project, created at at if missing
// (or when its first success was recorded, if earlier), with the newest of
// its filters' successes.
func (s *Store) Health(ctx context.Context, project string, at time.Time) (poller.ProjectHealth, error) {
	var ses []successEntity
	if _, err := s.client.GetAll(ctx, datastore.NewQuery(successKind).FilterField("project", "=", project), &ses); err != nil {
		return poller.ProjectHealth{}, fmt.Errorf("health of %s: successes: %w", project, err)
	}
	var last poller.Success
	firstSeen := at
	for _, se := range ses {
		last = poller.LatestSuccess(last, se.Last.success())
		if fs := loadedTime(se.FirstSeen); !fs.IsZero() && fs.Before(firstSeen) {
			firstSeen = fs
		}
	}
	key := datastore.NameKey(healthKind, project, nil)
	var he healthEntity
	// Every sweep reads the health of every project: a lookup, which takes
	// no lock, does when the record exists, as it does from then on.
	err := s.client.Get(ctx, key, &he)
	if err == nil {
		return he.health(project, last), nil
	}
	if !errors.Is(err, datastore.ErrNoSuchEntity) {
		return poller.ProjectHealth{}, fmt.Errorf("health of %s: %w", project, err)
	}
	err = s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		he = healthEntity{}
		err := tx.Get(key, &he)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		he.Since = storedTime(firstSeen)
		_, err = tx.Put(key, &he)
		return err
	})
	if err != nil {
		return poller.ProjectHealth{}, fmt.Errorf("health of %s: %w", project, err)
	}
	return he.health(project, last), nil
}

// ClaimStaleAlarm records that holder raises the alarm for forTime, when
// poller.CanClaimStaleAlarm allows it.
func (s *Store) ClaimStaleAlarm(ctx context.Context, project, holder string, forTime, at time.Time) (bool, error) {
	key := datastore.NameKey(healthKind, project, nil)
	claimed := false
	err := s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		var he healthEntity
		if err := tx.Get(key, &he); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		claimed = poller.CanClaimStaleAlarm(he.health(project, poller.Success{}), holder, storedTime(forTime))
		if !claimed {
			return nil
		}
		if he.Since.IsZero() {
			he.Since = storedTime(at)
		}
		he.AlarmFor, he.AlarmBy = storedTime(forTime), holder
		_, err := tx.Put(key, &he)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("claim staleness alarm of %s: %w", project, err)
	}
	return claimed, nil
}

// ReleaseStaleAlarm forgets holder's claim for forTime, so the next sweep
// raises it again; with no such claim (or no health record) it does nothing.
func (s *Store) ReleaseStaleAlarm(ctx context.Context, project, holder string, forTime time.Time) error {
	key := datastore.NameKey(healthKind, project, nil)
	err := s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		var he healthEntity
		if err := tx.Get(key, &he); errors.Is(err, datastore.ErrNoSuchEntity) {
			return nil
		} else if err != nil {
			return err
		}
		if !loadedTime(he.AlarmFor).Equal(storedTime(forTime)) || he.AlarmBy != holder {
			return nil
		}
		he.AlarmFor, he.AlarmBy = time.Time{}, ""
		_, err := tx.Put(key, &he)
		return err
	})
	if err != nil {
		return fmt.Errorf("release staleness alarm of %s: %w", project, err)
	}
	return nil
}

// startEntity remembers the starts of one project and filter.
type startEntity struct {
	// Reserved is when a start began and has not ended yet, ReservedBy
	// the StartRequest.Holder that began it.
	Reserved     time.Time `datastore:"reserved,noindex"`
	ReservedBy   string    `datastore:"reservedBy,noindex"`
	Running      string    `datastore:"running,noindex"`
	LastCronAt   time.Time `datastore:"lastCronAt,noindex"`
	LastCronName string    `datastore:"lastCronName,noindex"`
}

type rateEntity struct {
	Count int `datastore:"count,noindex"`
}

// BeginStart decides on a start of req with poller.DecideStart, in one
// transaction over the filter's start record, the export it last started,
// and the project's count of starts this minute, and reserves the start
// when the decision is to go.
func (s *Store) BeginStart(ctx context.Context, req poller.StartRequest, at time.Time) (poller.StartDecision, error) {
	skey := datastore.NameKey(startKind, filterKeyName(req.FilterKey), nil)
	rkey := datastore.NameKey(rateKind, req.Project+"@"+at.UTC().Format("2006-01-02T15:04"), nil)
	var decision poller.StartDecision
	err := s.transact(ctx, []*datastore.Key{skey, rkey}, func(tx *datastore.Transaction) error {
		var se startEntity
		if err := tx.Get(skey, &se); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		var re rateEntity
		if err := tx.Get(rkey, &re); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		st := poller.StartState{Reserved: loadedTime(se.Reserved), ReservedBy: se.ReservedBy, Running: se.Running,
			LastCronAt: loadedTime(se.LastCronAt), LastCronName: se.LastCronName, StartsThisMinute: re.Count}
		// Only a manual, unforced start waits for a running export. It
		// looks the export up outside the transaction, taking no lock its
		// polls would wait for: which export runs is read in the
		// transaction, and whether it is live can only change from yes to
		// no (an outcome stays, done stays done), so "not live" holds at
		// the commit and "live" held during the transaction.
		if se.Running != "" && !req.Force && req.Trigger != poller.TriggerCron {
			var oe operationEntity
			err := s.client.Get(ctx, operationKey(se.Running), &oe)
			if err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
				return err
			}
			st.RunningLive = err == nil && poller.Live(oe.record(se.Running))
		}
		var err error
		if decision, err = poller.DecideStart(st, req, at); err != nil || decision.Verdict != poller.StartGo || decision.Again {
			return err
		}
		re.Count++
		se.Reserved, se.ReservedBy = storedTime(at), req.Holder
		if _, err := tx.Put(rkey, &re); err != nil {
			return err
		}
		_, err = tx.Put(skey, &se)
		return err
	})
	if errors.Is(err, datastore.ErrConcurrentTransaction) {
		// Other starts of the project won every attempt: try again shortly.
		err = fmt.Errorf("%w: %v", poller.ErrBusy, err)
	}
	if err != nil {
		return poller.StartDecision{}, fmt.Errorf("begin start of an export of %s: %w", req.Project, err)
	}
	return decision, nil
}

// EndStart ends req.Holder's reservation (another's is left alone) and
// records what was started.
func (s *Store) EndStart(ctx context.Context, req poller.StartRequest, name string, at time.Time) error {
	skey := datastore.NameKey(startKind, filterKeyName(req.FilterKey), nil)
	err := s.transact(ctx, []*datastore.Key{skey}, func(tx *datastore.Transaction) error {
		var se startEntity
		if err := tx.Get(skey, &se); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		if !poller.OwnsReservation(se.ReservedBy, req.Holder) {
			return nil
		}
		se.Reserved, se.ReservedBy = time.Time{}, ""
		if name != "" {
			se.Running = name
			if req.Trigger == poller.TriggerCron {
				se.LastCronAt, se.LastCronName = storedTime(at), name
			}
		}
		_, err := tx.Put(skey, &se)
		return err
	})
	if err != nil {
		return fmt.Errorf("end start of an export of %s: %w", req.Project, err)
	}
	return nil
}

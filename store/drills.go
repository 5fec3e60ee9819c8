package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/datastore"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the restore drill's port.
var _ poller.DrillStore = (*Store)(nil)

// Kinds of the restore drills' entities. Like the others they are part of
// the stored data.
const (
	drillKind       = "DSExportDrill"       // keyed by drill ID: a drill and its lease
	drillTargetKind = "DSExportDrillTarget" // keyed by target (targetKeyName): its drill under way and its latest
)

// drillEntity is a drill, as JSON (its lists of structs are nothing to
// query), beside the one property queried: Unfinished, a single-property
// filter that needs no composite index (UnfinishedDrills).
type drillEntity struct {
	Target     string `datastore:"target,noindex"`
	Unfinished bool   `datastore:"unfinished"`
	Drill      string `datastore:"drill,noindex"`
}

// drillTargetEntity is what a target's drills begin from: the drill under
// way ("" : none) and the latest begun, with when it began, so that
// BeginDrill is one transaction over this entity and LatestDrill a lookup,
// neither a query.
type drillTargetEntity struct {
	Target      string    `datastore:"target,noindex"`
	Current     string    `datastore:"current,noindex"`
	Latest      string    `datastore:"latest,noindex"`
	LatestBegan time.Time `datastore:"latestBegan,noindex"`
}

func drillKey(id string) *datastore.Key { return datastore.NameKey(drillKind, id, nil) }

func drillTargetKey(target string) *datastore.Key {
	return datastore.NameKey(drillTargetKind, targetKeyName(target), nil)
}

// checkDrillID refuses an ID that cannot name a drill's entity. An ID is
// made by the poller, not received, so it is refused rather than cut.
func checkDrillID(id string) error {
	switch {
	case id == "":
		return errors.New("drill without an ID")
	case len(id) > poller.MaxName:
		return fmt.Errorf("drill ID %s of %d bytes is longer than a record's name allows", poller.BoundText(id, 256), len(id))
	}
	return nil
}

func (e drillEntity) drill() (poller.Drill, error) {
	var d poller.Drill
	if err := json.Unmarshal([]byte(e.Drill), &d); err != nil {
		return poller.Drill{}, fmt.Errorf("stored drill: %w", err)
	}
	return d, nil
}

// drillEntityOf is the entity of d, bounded (storedDrill).
func drillEntityOf(d poller.Drill) (poller.Drill, drillEntity, error) {
	d, blob, err := poller.StoredDrill(d)
	if err != nil {
		return d, drillEntity{}, err
	}
	return d, drillEntity{Target: d.Target, Unfinished: !d.Finished(), Drill: blob}, nil
}

// getDrill reads drill id in tx; poller.ErrNotFound when there is none.
func getDrill(tx *datastore.Transaction, id string) (poller.Drill, error) {
	var e drillEntity
	if err := tx.Get(drillKey(id), &e); errors.Is(err, datastore.ErrNoSuchEntity) {
		return poller.Drill{}, poller.ErrNotFound
	} else if err != nil {
		return poller.Drill{}, err
	}
	return e.drill()
}

// BeginDrill records d as its target's drill under way, in one transaction
// over the target's entity, unless the target has a drill under way
// already, or began one at or after notBefore: it then returns that drill
// and false. A BeginDrill retried after its commit answered late finds its
// own drill under way, and returns it and false as well.
func (s *Store) BeginDrill(ctx context.Context, d poller.Drill, notBefore time.Time) (poller.Drill, bool, error) {
	if err := checkDrillID(d.ID); err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill: %w", err)
	}
	if err := checkTarget(d.Target); err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
	}
	d, n, err := drillEntityOf(d)
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
	}
	tkey, dkey := drillTargetKey(d.Target), drillKey(d.ID)
	var blocking poller.Drill
	began := false
	err = s.transact(ctx, []*datastore.Key{tkey, dkey}, func(tx *datastore.Transaction) error {
		began = false
		var te drillTargetEntity
		if err := tx.Get(tkey, &te); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		other := te.Current
		if other == "" && te.Latest != "" && !notBefore.IsZero() && !loadedTime(te.LatestBegan).Before(storedTime(notBefore)) {
			other = te.Latest
		}
		if other != "" {
			var err error
			blocking, err = getDrill(tx, other)
			// A drill under way that is gone (deleted by hand) blocks nothing.
			if !errors.Is(err, poller.ErrNotFound) {
				return err
			}
		}
		te = drillTargetEntity{Target: d.Target, Current: d.ID, Latest: d.ID, LatestBegan: d.Began}
		if d.Finished() {
			te.Current = ""
		}
		if _, err := tx.Put(tkey, &te); err != nil {
			return err
		}
		if _, err := tx.Put(dkey, &n); err != nil {
			return err
		}
		began = true
		return nil
	})
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
	}
	if !began {
		return blocking, false, nil
	}
	return d, true, nil
}

// Drill returns drill id, or an error wrapping poller.ErrNotFound.
func (s *Store) Drill(ctx context.Context, id string) (poller.Drill, error) {
	if err := checkDrillID(id); err != nil {
		return poller.Drill{}, fmt.Errorf("get drill: %w: %w", err, poller.ErrNotFound)
	}
	var e drillEntity
	if err := s.client.Get(ctx, drillKey(id), &e); err != nil {
		if errors.Is(err, datastore.ErrNoSuchEntity) {
			return poller.Drill{}, fmt.Errorf("get drill %s: %w", id, poller.ErrNotFound)
		}
		return poller.Drill{}, fmt.Errorf("get drill %s: %w", id, err)
	}
	d, err := e.drill()
	if err != nil {
		return poller.Drill{}, fmt.Errorf("get drill %s: %w", id, err)
	}
	return d, nil
}

// LatestDrill returns target's latest drill; false when it has none.
func (s *Store) LatestDrill(ctx context.Context, target string) (poller.Drill, bool, error) {
	if err := checkTarget(target); err != nil {
		return poller.Drill{}, false, fmt.Errorf("latest drill: %w", err)
	}
	var te drillTargetEntity
	err := s.client.Get(ctx, drillTargetKey(target), &te)
	if errors.Is(err, datastore.ErrNoSuchEntity) || (err == nil && te.Latest == "") {
		return poller.Drill{}, false, nil
	}
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("latest drill of %s: %w", target, err)
	}
	d, err := s.Drill(ctx, te.Latest)
	if errors.Is(err, poller.ErrNotFound) {
		return poller.Drill{}, false, nil
	}
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("latest drill of %s: %w", target, err)
	}
	return d, true, nil
}

// UnfinishedDrills returns the drills that are not Finished, by ID.
func (s *Store) UnfinishedDrills(ctx context.Context) ([]poller.Drill, error) {
	q := datastore.NewQuery(drillKind).FilterField("unfinished", "=", true)
	var es []drillEntity
	if _, err := s.client.GetAll(ctx, q, &es); err != nil {
		return nil, fmt.Errorf("list unfinished drills: %w", err)
	}
	ds := make([]poller.Drill, 0, len(es))
	for _, e := range es {
		d, err := e.drill()
		if err != nil {
			return nil, fmt.Errorf("list unfinished drills: %w", err)
		}
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b poller.Drill) int { return strings.Compare(a.ID, b.ID) })
	return ds, nil
}

// updateDrill reads drill id in a transaction and lets change modify it
// (and write further entities through tx, also naming those this process's
// transactions queue on: see transact); the drill is then bounded and
// written back. A change that returns errUnchanged writes nothing, and the
// drill is returned as it is.
func (s *Store) updateDrill(ctx context.Context, id string, also []*datastore.Key, change func(tx *datastore.Transaction, d *poller.Drill) error) (poller.Drill, error) {
	if err := checkDrillID(id); err != nil {
		return poller.Drill{}, fmt.Errorf("%w: %w", err, poller.ErrNotFound)
	}
	key := drillKey(id)
	var d poller.Drill
	err := s.transact(ctx, append([]*datastore.Key{key}, also...), func(tx *datastore.Transaction) error {
		var err error
		if d, err = getDrill(tx, id); err != nil {
			return err
		}
		if err := change(tx, &d); err != nil {
			return err
		}
		var e drillEntity
		d, e, err = drillEntityOf(d)
		if err != nil {
			return err
		}
		_, err = tx.Put(key, &e)
		return err
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return d, err
}

// AcquireDrill leases drill id to holder until at+ttl, when no other
// holder's lease runs: none is held, holder holds it, or it expired at at.
// Otherwise it returns the drill as it is and false.
func (s *Store) AcquireDrill(ctx context.Context, id, holder string, at time.Time, ttl time.Duration) (poller.Drill, bool, error) {
	acquired := false
	d, err := s.updateDrill(ctx, id, nil, func(_ *datastore.Transaction, d *poller.Drill) error {
		acquired = false
		if d.LeaseHolder != "" && d.LeaseHolder != holder && at.Before(d.LeaseExpires) {
			return errUnchanged
		}
		d.LeaseHolder, d.LeaseExpires = holder, storedTime(at.Add(ttl))
		acquired = true
		return nil
	})
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("acquire drill %s: %w", id, err)
	}
	return d, acquired, nil
}

// SaveDrill replaces drill d.ID with d when holder holds its lease,
// poller.ErrLeaseLost otherwise. As RenewLease does, a lease that expired
// but that nobody took since is still holder's. The stored lease fields,
// ID and target are kept, Updated is set to at, and a Finished drill is no
// longer its target's drill under way, in the same transaction.
func (s *Store) SaveDrill(ctx context.Context, d poller.Drill, holder string, at time.Time) error {
	_, err := s.updateDrill(ctx, d.ID, []*datastore.Key{drillTargetKey(d.Target)}, func(tx *datastore.Transaction, stored *poller.Drill) error {
		if stored.LeaseHolder != holder || holder == "" {
			return poller.ErrLeaseLost
		}
		n := d
		n.ID, n.Target = stored.ID, stored.Target
		n.LeaseHolder, n.LeaseExpires = stored.LeaseHolder, stored.LeaseExpires
		n.Updated = at
		*stored = n
		if !n.Finished() {
			return nil
		}
		tkey := drillTargetKey(n.Target)
		var te drillTargetEntity
		if err := tx.Get(tkey, &te); errors.Is(err, datastore.ErrNoSuchEntity) {
			return nil
		} else if err != nil {
			return err
		}
		if te.Current != n.ID {
			return nil
		}
		te.Current = ""
		_, err := tx.Put(tkey, &te)
		return err
	})
	if err != nil {
		return fmt.Errorf("save drill %s: %w", d.ID, err)
	}
	return nil
}

// ReleaseDrill ends holder's lease; another's is left alone.
func (s *Store) ReleaseDrill(ctx context.Context, id, holder string) error {
	_, err := s.updateDrill(ctx, id, nil, func(_ *datastore.Transaction, d *poller.Drill) error {
		if d.LeaseHolder != holder {
			return errUnchanged
		}
		d.LeaseHolder, d.LeaseExpires = "", time.Time{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release drill %s: %w", id, err)
	}
	return nil
}

package memstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the restore drill's port.
var _ poller.DrillStore = (*Store)(nil)

// checkDrillID refuses an ID that store.Store refuses.
func checkDrillID(id string) error {
	switch {
	case id == "":
		return errors.New("drill without an ID")
	case len(id) > poller.MaxName:
		return fmt.Errorf("drill ID %s of %d bytes is longer than a record's name allows", poller.BoundText(id, 256), len(id))
	}
	return nil
}

// drill is drill id as kept; s.mu is held.
func (s *Store) drill(id string) (poller.Drill, bool, error) {
	blob, ok := s.checks.drills[id]
	if !ok {
		return poller.Drill{}, false, nil
	}
	var d poller.Drill
	if err := json.Unmarshal([]byte(blob), &d); err != nil {
		return poller.Drill{}, false, fmt.Errorf("stored drill %s: %w", id, err)
	}
	return d, true, nil
}

// putDrill keeps d, bounded, and returns it as kept; s.mu is held.
func (s *Store) putDrill(d poller.Drill) (poller.Drill, error) {
	d, blob, err := poller.StoredDrill(d)
	if err != nil {
		return poller.Drill{}, err
	}
	s.checks.drills[d.ID] = blob
	return d, nil
}

// BeginDrill records d as its target's drill under way unless the target
// has a drill under way already, or began one at or after notBefore: it
// then returns that drill and false.
func (s *Store) BeginDrill(ctx context.Context, d poller.Drill, notBefore time.Time) (poller.Drill, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.Drill{}, false, err
	}
	if err := checkDrillID(d.ID); err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill: %w", err)
	}
	if err := checkTarget(d.Target); err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks.init()
	te := s.checks.drillTargets[d.Target]
	other := te.current
	if other == "" && te.latest != "" && !notBefore.IsZero() && !te.latestBegan.Before(storedTime(notBefore)) {
		other = te.latest
	}
	if other != "" {
		blocking, ok, err := s.drill(other)
		if err != nil {
			return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
		}
		if ok {
			return blocking, false, nil
		}
	}
	d, err := s.putDrill(d)
	if err != nil {
		return poller.Drill{}, false, fmt.Errorf("begin drill %s: %w", d.ID, err)
	}
	te = drillTargetEntry{current: d.ID, latest: d.ID, latestBegan: d.Began}
	if d.Finished() {
		te.current = ""
	}
	s.checks.drillTargets[d.Target] = te
	return d, true, nil
}

// Drill returns drill id, or an error wrapping poller.ErrNotFound.
func (s *Store) Drill(ctx context.Context, id string) (poller.Drill, error) {
	if err := ctx.Err(); err != nil {
		return poller.Drill{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok, err := s.drill(id)
	if err != nil {
		return poller.Drill{}, err
	}
	if !ok {
		return poller.Drill{}, fmt.Errorf("get drill %s: %w", id, poller.ErrNotFound)
	}
	return d, nil
}

// LatestDrill returns target's latest drill; false when it has none.
func (s *Store) LatestDrill(ctx context.Context, target string) (poller.Drill, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.Drill{}, false, err
	}
	if err := checkTarget(target); err != nil {
		return poller.Drill{}, false, fmt.Errorf("latest drill: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	te, ok := s.checks.drillTargets[target]
	if !ok || te.latest == "" {
		return poller.Drill{}, false, nil
	}
	return s.drill(te.latest)
}

// UnfinishedDrills returns the drills that are not Finished, by ID.
func (s *Store) UnfinishedDrills(ctx context.Context) ([]poller.Drill, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := []poller.Drill{}
	for id := range s.checks.drills {
		d, _, err := s.drill(id)
		if err != nil {
			return nil, err
		}
		if !d.Finished() {
			ds = append(ds, d)
		}
	}
	slices.SortFunc(ds, func(a, b poller.Drill) int { return strings.Compare(a.ID, b.ID) })
	return ds, nil
}

// updateDrill lets change modify drill id, then keeps it bounded; a change
// that returns errUnchanged keeps nothing. s.mu is taken.
func (s *Store) updateDrill(ctx context.Context, id string, change func(d *poller.Drill) error) (poller.Drill, error) {
	if err := ctx.Err(); err != nil {
		return poller.Drill{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks.init()
	d, ok, err := s.drill(id)
	if err != nil {
		return poller.Drill{}, err
	}
	if !ok {
		return poller.Drill{}, poller.ErrNotFound
	}
	if err := change(&d); errors.Is(err, errUnchanged) {
		return d, nil
	} else if err != nil {
		return poller.Drill{}, err
	}
	return s.putDrill(d)
}

// AcquireDrill leases drill id to holder until at+ttl, when no other
// holder's lease runs: none is held, holder holds it, or it expired at at.
// Otherwise it returns the drill as it is and false.
func (s *Store) AcquireDrill(ctx context.Context, id, holder string, at time.Time, ttl time.Duration) (poller.Drill, bool, error) {
	acquired := false
	d, err := s.updateDrill(ctx, id, func(d *poller.Drill) error {
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

// SaveDrill replaces drill d.ID with d when holder holds its lease (one
// that expired and that nobody took since included, as store.Store does),
// poller.ErrLeaseLost otherwise; the stored lease fields, ID and target are
// kept and Updated is set to at. A Finished drill is no longer its target's
// drill under way.
func (s *Store) SaveDrill(ctx context.Context, d poller.Drill, holder string, at time.Time) error {
	_, err := s.updateDrill(ctx, d.ID, func(stored *poller.Drill) error {
		if stored.LeaseHolder != holder || holder == "" {
			return poller.ErrLeaseLost
		}
		n := d
		n.ID, n.Target = stored.ID, stored.Target
		n.LeaseHolder, n.LeaseExpires = stored.LeaseHolder, stored.LeaseExpires
		n.Updated = at
		*stored = n
		if te, ok := s.checks.drillTargets[n.Target]; ok && n.Finished() && te.current == n.ID {
			te.current = ""
			s.checks.drillTargets[n.Target] = te
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save drill %s: %w", d.ID, err)
	}
	return nil
}

// ReleaseDrill ends holder's lease; another's is left alone.
func (s *Store) ReleaseDrill(ctx context.Context, id, holder string) error {
	_, err := s.updateDrill(ctx, id, func(d *poller.Drill) error {
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

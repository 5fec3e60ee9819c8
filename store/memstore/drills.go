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

// maxDrillJSON bounds a drill's JSON as store.Store bounds it to fit its
// entity.
const maxDrillJSON = 900 << 10

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
	d, blob, err := storedDrill(d)
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

// storedDrill is d as the stores keep it, and its JSON: every text
// bounded, at most MaxStoredKinds expected and counted kinds (the rest
// summed under poller.CutKind), MaxFindings findings, times as Datastore
// gives them back, and the kind lists halved further until the whole fits
// an entity, when their names are long: what store.Store keeps (its
// storedDrill, which this copies; the two must stay alike).
func storedDrill(d poller.Drill) (poller.Drill, string, error) {
	d.Target = poller.BoundText(d.Target, poller.MaxName)
	d.Project = poller.BoundText(d.Project, poller.MaxProject)
	d.Database = poller.BoundText(d.Database, poller.MaxLabel)
	d.Trigger = poller.Trigger(poller.BoundText(string(d.Trigger), poller.MaxLabel))
	d.Step = poller.DrillStep(poller.BoundText(string(d.Step), poller.MaxLabel))
	d.Export = poller.BoundText(d.Export, poller.MaxName)
	d.InputURL = poller.BoundText(d.InputURL, poller.MaxURL)
	d.Kinds = boundStrings(d.Kinds, poller.MaxKind)
	d.Expected = boundKindNames(cutKinds(d.Expected, poller.MaxStoredKinds))
	d.Counted = boundKindNames(cutKinds(d.Counted, poller.MaxStoredKinds))
	d.ScratchProject = poller.BoundText(d.ScratchProject, poller.MaxProject)
	d.ScratchDatabase = poller.BoundText(d.ScratchDatabase, poller.MaxLabel)
	d.Location = poller.BoundText(d.Location, poller.MaxLabel)
	d.CreateOp = poller.BoundText(d.CreateOp, poller.MaxName)
	d.ImportOp = poller.BoundText(d.ImportOp, poller.MaxName)
	// A verification's bounds are the findings' (their count and texts).
	if d.Findings != nil {
		d.Findings = poller.Verification{Findings: d.Findings}.Bounded().Findings
	}
	d.Outcome = poller.DrillOutcome(poller.BoundText(string(d.Outcome), poller.MaxLabel))
	d.FailedStep = poller.DrillStep(poller.BoundText(string(d.FailedStep), poller.MaxLabel))
	d.Error = poller.BoundText(d.Error, poller.MaxErrorText)
	d.DeleteError = poller.BoundText(d.DeleteError, poller.MaxErrorText)
	d.LeaseHolder = poller.BoundText(d.LeaseHolder, poller.MaxName)
	for _, t := range []*time.Time{&d.Began, &d.ExportTime, &d.CreateStart, &d.ImportStart, &d.ImportEnd,
		&d.Ended, &d.ReportedAt, &d.Updated, &d.LeaseExpires} {
		*t = storedTime(*t)
	}
	for n := max(len(d.Expected), len(d.Counted)); ; n /= 2 {
		b, err := json.Marshal(d)
		if err != nil {
			return d, "", err
		}
		if len(b) <= maxDrillJSON || n <= 1 {
			return d, string(b), nil
		}
		d.Expected, d.Counted = cutKinds(d.Expected, n/2), cutKinds(d.Counted, n/2)
	}
}

// boundStrings is items with at most poller.MaxListItems items (a last one
// saying how many there were), each of at most maxItem bytes.
func boundStrings(items []string, maxItem int) []string {
	if items == nil {
		return nil
	}
	n := len(items)
	if n > poller.MaxListItems {
		n = poller.MaxListItems - 1
	}
	out := make([]string, 0, n+1)
	for _, it := range items[:n] {
		out = append(out, poller.BoundText(it, maxItem))
	}
	if n < len(items) {
		out = append(out, fmt.Sprintf("… [cut: %d kinds in all]", len(items)))
	}
	return out
}

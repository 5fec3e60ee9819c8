package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the content verification's port.
var _ poller.VerificationStore = (*Store)(nil)

// checkData is what the content verification and the restore drills keep,
// as store.Store keeps it in DSExportVerified, DSExportDrill and
// DSExportDrillTarget: each verification and drill as the JSON store.Store
// writes, so that what comes back is what comes back from Datastore, and
// nothing is shared with a caller. Its maps are made on first use, under
// the Store's mutex.
type checkData struct {
	verified     map[string]verifiedEntry    // by target
	verifiedOps  map[string]string           // by operation: its verification's JSON
	drills       map[string]string           // by drill ID: its JSON
	drillTargets map[string]drillTargetEntry // by target
}

type verifiedEntry struct{ latest, good string }

type drillTargetEntry struct {
	current, latest string
	latestBegan     time.Time
}

func (c *checkData) init() {
	if c.verified == nil {
		c.verified = map[string]verifiedEntry{}
		c.verifiedOps = map[string]string{}
		c.drills = map[string]string{}
		c.drillTargets = map[string]drillTargetEntry{}
	}
}

// maxTargetName is the longest target store.Store takes: its key name is
// "target:" and the target, within a key name's 1,500 bytes.
const maxTargetName = poller.MaxName - len("target:")

// checkTarget refuses a target that store.Store refuses.
func checkTarget(target string) error {
	if len(target) > maxTargetName {
		return fmt.Errorf("target %s of %d bytes is longer than a record's name allows", poller.BoundText(target, 256), len(target))
	}
	return nil
}

// VerifiedState returns what is kept of target's verifications; a zero
// state naming target when there is none.
func (s *Store) VerifiedState(ctx context.Context, target string) (poller.VerifiedState, error) {
	if err := ctx.Err(); err != nil {
		return poller.VerifiedState{}, err
	}
	if err := checkTarget(target); err != nil {
		return poller.VerifiedState{}, fmt.Errorf("verified state: %w", err)
	}
	s.mu.Lock()
	e := s.checks.verified[target]
	s.mu.Unlock()
	st := poller.VerifiedState{Target: target}
	var err error
	if st.Latest, err = decodeVerification(e.latest); err != nil {
		return poller.VerifiedState{}, err
	}
	if st.Good, err = decodeVerification(e.good); err != nil {
		return poller.VerifiedState{}, err
	}
	return st, nil
}

func decodeVerification(s string) (*poller.Verification, error) {
	if s == "" {
		return nil, nil
	}
	var v poller.Verification
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// RecordVerification makes v its target's Latest, and its Good when
// v.Verified(). Recording again the verification of the operation that is
// Latest already changes nothing. v is bounded first (storedVerification).
func (s *Store) RecordVerification(ctx context.Context, v poller.Verification, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := checkTarget(v.Target); err != nil {
		return fmt.Errorf("record verification: %w", err)
	}
	v, blob, err := poller.StoredVerification(v)
	if err != nil {
		return fmt.Errorf("record verification of %s: %w", poller.BoundText(v.Operation, 256), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks.init()
	if _, done := s.checks.verifiedOps[v.Operation]; done {
		return nil
	}
	e := s.checks.verified[v.Target]
	latest, err := decodeVerification(e.latest)
	if err != nil {
		return err
	}
	good, err := decodeVerification(e.good)
	if err != nil {
		return err
	}
	s.checks.verifiedOps[v.Operation] = blob
	next, changed := poller.NextVerifiedState(poller.VerifiedState{Target: v.Target, Latest: latest, Good: good}, v)
	if !changed {
		return nil
	}
	if next.Latest != nil && next.Latest.Operation == v.Operation {
		e.latest = blob
	}
	if next.Good != nil && next.Good.Operation == v.Operation {
		e.good = blob
	}
	s.checks.verified[v.Target] = e
	return nil
}

// VerificationOf returns the verification recorded for operation; nil when
// there is none.
func (s *Store) VerificationOf(ctx context.Context, operation string) (*poller.Verification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks.init()
	return decodeVerification(s.checks.verifiedOps[operation])
}

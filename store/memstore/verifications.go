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
		c.drills = map[string]string{}
		c.drillTargets = map[string]drillTargetEntry{}
	}
}

// maxVerificationJSON bounds each of the two verifications store.Store
// keeps in one entity of 1 MiB; memstore cuts at the same size.
const maxVerificationJSON = 480 << 10

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
	v, blob, err := storedVerification(v)
	if err != nil {
		return fmt.Errorf("record verification of %s: %w", poller.BoundText(v.Operation, 256), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks.init()
	e := s.checks.verified[v.Target]
	latest, err := decodeVerification(e.latest)
	if err != nil {
		return err
	}
	if latest != nil && latest.Operation == v.Operation {
		return nil
	}
	e.latest = blob
	if v.Verified() {
		e.good = blob
	}
	s.checks.verified[v.Target] = e
	return nil
}

// storedVerification is v as the stores keep it, and its JSON: bounded
// (Verification.Bounded), its names and URLs bounded too, its times as
// Datastore gives them back (UTC, whole microseconds), and its kinds cut
// further, halved until it fits its half of an entity, when their names
// are long: what store.Store keeps (its storedVerification, which this
// copies; the two must stay alike).
func storedVerification(v poller.Verification) (poller.Verification, string, error) {
	v = v.Bounded()
	v.Operation = poller.BoundText(v.Operation, poller.MaxName)
	v.Project = poller.BoundText(v.Project, poller.MaxProject)
	v.Database = poller.BoundText(v.Database, poller.MaxLabel)
	v.OutputURL = poller.BoundText(v.OutputURL, poller.MaxURL)
	v.At, v.ExportTime = storedTime(v.At), storedTime(v.ExportTime)
	v.Content.MetadataURL = poller.BoundText(v.Content.MetadataURL, poller.MaxURL)
	v.Content.Database = poller.BoundText(v.Content.Database, poller.MaxLabel)
	v.Content.Kinds = boundKindNames(v.Content.Kinds)
	// Bounded keeps at most MaxStoredKinds source counts but not their
	// keys' length: a key longer than any kind's is no kind's, and dropped.
	if v.Source != nil {
		source := make(map[string]int64, len(v.Source))
		for k, n := range v.Source {
			if len(k) <= poller.MaxNamespace+1+poller.MaxKind {
				source[k] = n
			}
		}
		v.Source = source
	}
	for n := len(v.Content.Kinds); ; n /= 2 {
		b, err := json.Marshal(v)
		if err != nil {
			return v, "", err
		}
		if len(b) <= maxVerificationJSON || n <= 1 {
			return v, string(b), nil
		}
		v.Content.Kinds, v.Content.KindsCut = cutKinds(v.Content.Kinds, n/2), true
		kept := make(map[string]int64)
		for _, k := range v.Content.Kinds {
			if c, ok := v.Source[k.Namespace+"/"+k.Kind]; ok {
				kept[k.Namespace+"/"+k.Kind] = c
			}
		}
		if v.Source != nil {
			v.Source = kept
		}
	}
}

// boundKindNames is kinds with each namespace and kind name bounded.
func boundKindNames(kinds []poller.KindCount) []poller.KindCount {
	if kinds == nil {
		return nil
	}
	out := make([]poller.KindCount, len(kinds))
	for i, k := range kinds {
		k.Namespace = poller.BoundText(k.Namespace, poller.MaxNamespace)
		k.Kind = poller.BoundText(k.Kind, poller.MaxKind)
		out[i] = k
	}
	return out
}

// cutKinds keeps the first n-1 of kinds (n at least 1) and sums the rest
// under poller.CutKind, as Verification.Bounded does with MaxStoredKinds.
func cutKinds(kinds []poller.KindCount, n int) []poller.KindCount {
	n = max(n, 1)
	if len(kinds) <= n {
		return kinds
	}
	out := append([]poller.KindCount(nil), kinds[:n-1]...)
	rest := poller.KindCount{Kind: poller.CutKind}
	for _, k := range kinds[n-1:] {
		rest.Entities += k.Entities
	}
	return append(out, rest)
}

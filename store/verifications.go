package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/datastore"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the content verification's port.
var _ poller.VerificationStore = (*Store)(nil)

// verifiedKind is the kind of a target's verifications. Like the others it
// is part of the stored data.
const verifiedKind = "DSExportVerified" // keyed by target (targetKeyName): the latest and the latest good verification

// verifiedEntity keeps a target's latest verification and its latest good
// one, each as JSON: a Verification holds lists of structs and a map, which
// Datastore would store as arrays of embedded entities for no query's sake.
// Nothing queries it.
type verifiedEntity struct {
	Target string `datastore:"target,noindex"`
	Latest string `datastore:"latest,noindex"`
	Good   string `datastore:"good,noindex"`
	// Recorded is when Latest was recorded.
	Recorded time.Time `datastore:"recorded,noindex"`
}

// maxVerificationJSON bounds each of the two verifications of a
// verifiedEntity, so that both, with the property names, fit the 1 MiB of an
// entity.
const maxVerificationJSON = 480 << 10

// targetKeyName names target in a key of a per-target kind. The prefix
// gives the environment's single target ("") a name that is a key's (an
// empty name is an incomplete key) and that no configured target has.
func targetKeyName(target string) string { return "target:" + target }

// checkTarget refuses a target whose key name would not fit the 1,500
// bytes of a Datastore key name. A target's name is configured, not
// received, so it is refused rather than cut: a cut name is another target.
func checkTarget(target string) error {
	if len(targetKeyName(target)) > poller.MaxName {
		return fmt.Errorf("target %s of %d bytes is longer than a record's name allows", poller.BoundText(target, 256), len(target))
	}
	return nil
}

// VerifiedState returns what is kept of target's verifications; a zero
// state naming target when there is none.
func (s *Store) VerifiedState(ctx context.Context, target string) (poller.VerifiedState, error) {
	if err := checkTarget(target); err != nil {
		return poller.VerifiedState{}, fmt.Errorf("verified state: %w", err)
	}
	var e verifiedEntity
	err := s.client.Get(ctx, datastore.NameKey(verifiedKind, targetKeyName(target), nil), &e)
	if errors.Is(err, datastore.ErrNoSuchEntity) {
		return poller.VerifiedState{Target: target}, nil
	}
	if err != nil {
		return poller.VerifiedState{}, fmt.Errorf("verified state of %s: %w", target, err)
	}
	st, err := e.state(target)
	if err != nil {
		return poller.VerifiedState{}, fmt.Errorf("verified state of %s: %w", target, err)
	}
	return st, nil
}

func (e verifiedEntity) state(target string) (poller.VerifiedState, error) {
	st := poller.VerifiedState{Target: target}
	var err error
	if st.Latest, err = decodeVerification(e.Latest); err != nil {
		return poller.VerifiedState{}, fmt.Errorf("latest: %w", err)
	}
	if st.Good, err = decodeVerification(e.Good); err != nil {
		return poller.VerifiedState{}, fmt.Errorf("good: %w", err)
	}
	return st, nil
}

// decodeVerification is the verification stored as s; nil for "".
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
// v.Verified(), in one transaction over the target's entity. Recording again
// the verification of the operation that is Latest already writes nothing.
// v is bounded first (storedVerification).
func (s *Store) RecordVerification(ctx context.Context, v poller.Verification, at time.Time) error {
	if err := checkTarget(v.Target); err != nil {
		return fmt.Errorf("record verification: %w", err)
	}
	v, blob, err := storedVerification(v)
	if err != nil {
		return fmt.Errorf("record verification of %s: %w", poller.BoundText(v.Operation, 256), err)
	}
	key := datastore.NameKey(verifiedKind, targetKeyName(v.Target), nil)
	err = s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		var e verifiedEntity
		if err := tx.Get(key, &e); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		latest, err := decodeVerification(e.Latest)
		if err != nil {
			return fmt.Errorf("latest: %w", err)
		}
		if latest != nil && latest.Operation == v.Operation {
			return nil
		}
		e.Target, e.Latest, e.Recorded = v.Target, blob, storedTime(at)
		if v.Verified() {
			e.Good = blob
		}
		_, err = tx.Put(key, &e)
		return err
	})
	if err != nil {
		return fmt.Errorf("record verification of %s for %s: %w", poller.BoundText(v.Operation, 256), v.Target, err)
	}
	return nil
}

// storedVerification is v as the stores keep it, and its JSON: bounded
// (Verification.Bounded), its names and URLs bounded too, its times as
// Datastore gives them back (UTC, whole microseconds), and its kinds cut
// further, halved until it fits its half of an entity, when their names
// are long. memstore keeps the same (its storedVerification), so the two
// stores answer alike.
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

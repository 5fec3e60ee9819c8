package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// verificationKind is the kind of each export's verification, keyed by
// verificationKeyName: the SHA-256 of the operation's name, which may be
// longer than a key's name allows.
const verificationKind = "DSExportVerification"

// verificationEntity is one export's verification, as JSON.
type verificationEntity struct {
	Operation string    `datastore:"operation,noindex"`
	Target    string    `datastore:"target,noindex"`
	Blob      string    `datastore:"verification,noindex"`
	Recorded  time.Time `datastore:"recorded,noindex"`
}

func verificationKey(operation string) *datastore.Key {
	sum := sha256.Sum256([]byte(operation))
	return datastore.NameKey(verificationKind, hex.EncodeToString(sum[:]), nil)
}

// VerificationOf returns the verification recorded for operation; nil when
// there is none.
func (s *Store) VerificationOf(ctx context.Context, operation string) (*poller.Verification, error) {
	var e verificationEntity
	err := s.client.Get(ctx, verificationKey(operation), &e)
	if errors.Is(err, datastore.ErrNoSuchEntity) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verification of %s: %w", poller.BoundText(operation, 256), err)
	}
	v, err := decodeVerification(e.Blob)
	if err != nil {
		return nil, fmt.Errorf("verification of %s: %w", poller.BoundText(operation, 256), err)
	}
	return v, nil
}

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

// RecordVerification records v as its operation's verification and moves
// its target's state on (poller.NextVerifiedState), in one transaction over
// both entities. An operation verified already writes nothing. v is
// bounded first (poller.StoredVerification).
func (s *Store) RecordVerification(ctx context.Context, v poller.Verification, at time.Time) error {
	if err := checkTarget(v.Target); err != nil {
		return fmt.Errorf("record verification: %w", err)
	}
	v, blob, err := poller.StoredVerification(v)
	if err != nil {
		return fmt.Errorf("record verification of %s: %w", poller.BoundText(v.Operation, 256), err)
	}
	key := datastore.NameKey(verifiedKind, targetKeyName(v.Target), nil)
	opKey := verificationKey(v.Operation)
	err = s.transact(ctx, []*datastore.Key{key, opKey}, func(tx *datastore.Transaction) error {
		var done verificationEntity
		err := tx.Get(opKey, &done)
		if err == nil {
			return nil
		}
		if !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		var e verifiedEntity
		if err := tx.Get(key, &e); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		st, err := e.state(v.Target)
		if err != nil {
			return err
		}
		if _, err := tx.Put(opKey, &verificationEntity{Operation: v.Operation, Target: v.Target, Blob: blob, Recorded: storedTime(at)}); err != nil {
			return err
		}
		next, changed := poller.NextVerifiedState(st, v)
		if !changed {
			return nil
		}
		e.Target, e.Recorded = v.Target, storedTime(at)
		if next.Latest != nil && next.Latest.Operation == v.Operation {
			e.Latest = blob
		}
		if next.Good != nil && next.Good.Operation == v.Operation {
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

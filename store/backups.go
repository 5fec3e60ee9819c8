package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/datastore"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the backup watch's port.
var _ poller.BackupStore = (*Store)(nil)

// Kinds of the backup watch's entities. Like the others they are part of
// the stored data.
const (
	backupKind = "DSExportBackup" // keyed by target and backup name: a managed backup recorded
	watchKind  = "DSExportWatch"  // keyed by target: what the watch remembers
	noticeKind = "DSExportNotice" // keyed by target and notice key, hashed: its claim
)

// backupEntity is a managed backup as recorded. Target and snapshotTime are
// indexed: a target's backups are listed newest first, which takes the
// composite index (target, -snapshotTime) of index.yaml.
type backupEntity struct {
	Target       string    `datastore:"target"`
	SnapshotTime time.Time `datastore:"snapshotTime"`
	Database     string    `datastore:"database,noindex"`
	DatabaseUID  string    `datastore:"databaseUid,noindex"`
	State        string    `datastore:"state,noindex"`
	ExpireTime   time.Time `datastore:"expireTime,noindex"`
	Documents    int64     `datastore:"documents,noindex"`
	Bytes        int64     `datastore:"bytes,noindex"`
	// Recorded is when the watch recorded it (or its change to NOT_AVAILABLE).
	Recorded time.Time `datastore:"recorded,noindex"`
}

func backupEntityOf(target string, b poller.Backup, at time.Time) backupEntity {
	return backupEntity{Target: target, SnapshotTime: storedTime(b.SnapshotTime), Database: b.Database,
		DatabaseUID: b.DatabaseUID, State: string(b.State), ExpireTime: storedTime(b.ExpireTime),
		Documents: b.Documents, Bytes: b.Bytes, Recorded: storedTime(at)}
}

func (e backupEntity) backup(name string) poller.Backup {
	return poller.Backup{Name: name, Database: e.Database, DatabaseUID: e.DatabaseUID, State: poller.BackupState(e.State),
		SnapshotTime: loadedTime(e.SnapshotTime), ExpireTime: loadedTime(e.ExpireTime), Documents: e.Documents, Bytes: e.Bytes}
}

// sameBackup tells whether recording b over e would change nothing the
// watch records.
func (e backupEntity) sameBackup(n backupEntity) bool {
	e.Recorded, n.Recorded = time.Time{}, time.Time{}
	return e.Target == n.Target && e.SnapshotTime.Equal(n.SnapshotTime) && e.Database == n.Database &&
		e.DatabaseUID == n.DatabaseUID && e.State == n.State && e.ExpireTime.Equal(n.ExpireTime) &&
		e.Documents == n.Documents && e.Bytes == n.Bytes
}

// backupKey names target's record of the backup called name:
// "target/name", so that two targets watching one database each keep their
// own records, and a target's records sort by name as the backups do.
func backupKey(target, name string) *datastore.Key {
	return datastore.NameKey(backupKind, target+"/"+name, nil)
}

// RecordBackup records b as one of target's backups. Recording it again
// writes nothing, and a backup recorded NOT_AVAILABLE stays so: a sweep
// that read the list before the change must not bring it back. Each target
// has its own records of a backup.
func (s *Store) RecordBackup(ctx context.Context, target string, b poller.Backup, at time.Time) error {
	if err := poller.CheckBackupRecord(target, b.Name); err != nil {
		return fmt.Errorf("record backup of %s: %w", poller.BoundText(target, 256), err)
	}
	key := backupKey(target, b.Name)
	n := backupEntityOf(target, b, at)
	err := s.transact(ctx, []*datastore.Key{key}, func(tx *datastore.Transaction) error {
		var e backupEntity
		err := tx.Get(key, &e)
		if err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		if err == nil && (e.sameBackup(n) || (e.State == string(poller.BackupNotAvailable) && n.State != e.State)) {
			return nil
		}
		_, err = tx.Put(key, &n)
		return err
	})
	if err != nil {
		return fmt.Errorf("record backup %s of %s: %w", b.Name, target, err)
	}
	return nil
}

// Backups returns up to limit of target's recorded backups, newest first
// by snapshot time. limit must be positive.
func (s *Store) Backups(ctx context.Context, target string, limit int) ([]poller.Backup, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list backups of %s: limit %d is not positive", target, limit)
	}
	q := datastore.NewQuery(backupKind).FilterField("target", "=", target).Order("-snapshotTime").Limit(limit)
	var es []backupEntity
	keys, err := s.client.GetAll(ctx, q, &es)
	if err != nil {
		return nil, fmt.Errorf("list backups of %s: %w", target, err)
	}
	bs := make([]poller.Backup, len(es))
	for i := range es {
		name, _ := strings.CutPrefix(keys[i].Name, target+"/")
		bs[i] = es[i].backup(name)
	}
	return bs, nil
}

// watchEntity is poller.WatchState. Nothing queries it.
type watchEntity struct {
	Since           time.Time `datastore:"since,noindex"`
	Schedules       []string  `datastore:"schedules,noindex"`
	NoScheduleSince time.Time `datastore:"noScheduleSince,noindex"`
	NewestReady     string    `datastore:"newestReady,noindex"`
	NewestReadyAt   time.Time `datastore:"newestReadyAt,noindex"`
	Recorded        []string  `datastore:"recorded,noindex"`
	Raised          []string  `datastore:"raised,noindex"`
	FailingSince    time.Time `datastore:"failingSince,noindex"`
}

// WatchState returns what the backup watch remembers of target: a zero
// state naming it when it was never watched.
func (s *Store) WatchState(ctx context.Context, target string) (poller.WatchState, error) {
	var e watchEntity
	err := s.client.Get(ctx, datastore.NameKey(watchKind, target, nil), &e)
	if errors.Is(err, datastore.ErrNoSuchEntity) {
		return poller.WatchState{Target: target}, nil
	}
	if err != nil {
		return poller.WatchState{}, fmt.Errorf("watch state of %s: %w", target, err)
	}
	return poller.WatchState{Target: target, Since: loadedTime(e.Since), Schedules: nilIfEmpty(e.Schedules),
		NoScheduleSince: loadedTime(e.NoScheduleSince), NewestReady: e.NewestReady, NewestReadyAt: loadedTime(e.NewestReadyAt),
		Recorded: nilIfEmpty(e.Recorded), Raised: nilIfEmpty(e.Raised), FailingSince: loadedTime(e.FailingSince)}, nil
}

// SaveWatchState replaces the state of st.Target. It is one write, no
// transaction: two sweeps that write it at once each write a state that
// holds only what their notices settled, and the claims keep every notice
// once whichever state stays.
func (s *Store) SaveWatchState(ctx context.Context, st poller.WatchState) error {
	if st.Target == "" {
		return errors.New("save watch state: no target")
	}
	e := watchEntity{Since: storedTime(st.Since), Schedules: st.Schedules, NoScheduleSince: storedTime(st.NoScheduleSince),
		NewestReady: st.NewestReady, NewestReadyAt: storedTime(st.NewestReadyAt), Recorded: st.Recorded, Raised: st.Raised,
		FailingSince: storedTime(st.FailingSince)}
	if _, err := s.client.Put(ctx, datastore.NameKey(watchKind, st.Target, nil), &e); err != nil {
		return fmt.Errorf("save watch state of %s: %w", st.Target, err)
	}
	return nil
}

// noticeEntity is one backup notice's claim.
type noticeEntity struct {
	Target  string    `datastore:"target,noindex"`
	Key     string    `datastore:"key,noindex"`
	Claimed time.Time `datastore:"claimed,noindex"`
	Claimer string    `datastore:"claimer,noindex"`
	SentAt  time.Time `datastore:"sentAt,noindex"`
}

func (e noticeEntity) claim(target, key string) poller.NoticeClaim {
	return poller.NoticeClaim{Target: target, Key: key, Claimed: loadedTime(e.Claimed), Claimer: e.Claimer, SentAt: loadedTime(e.SentAt)}
}

// noticeKey names target's notice key: hashed, as a notice key holds
// backup names and may pass the 1,500 bytes of a key name.
func noticeKey(target, key string) *datastore.Key {
	sum := sha256.Sum256([]byte(target + "\x00" + key))
	return datastore.NameKey(noticeKind, hex.EncodeToString(sum[:16]), nil)
}

// updateNotice reads the claim of target's notice key in a transaction and
// lets change modify it; a change that returns errUnchanged writes nothing.
func (s *Store) updateNotice(ctx context.Context, target, key string, change func(e *noticeEntity) error) (noticeEntity, error) {
	k := noticeKey(target, key)
	var e noticeEntity
	err := s.transact(ctx, []*datastore.Key{k}, func(tx *datastore.Transaction) error {
		e = noticeEntity{}
		if err := tx.Get(k, &e); err != nil && !errors.Is(err, datastore.ErrNoSuchEntity) {
			return err
		}
		if err := change(&e); err != nil {
			return err
		}
		e.Target, e.Key = poller.BoundText(target, poller.MaxName), poller.BoundText(key, poller.MaxErrorText)
		_, err := tx.Put(k, &e)
		return err
	})
	if errors.Is(err, errUnchanged) {
		err = nil
	}
	return e, err
}

// ClaimNotice claims target's notice key for holder when
// poller.CanClaimNotice allows it.
func (s *Store) ClaimNotice(ctx context.Context, target, key, holder string, at time.Time, ttl time.Duration) (poller.NoticeClaim, bool, error) {
	claimed := false
	e, err := s.updateNotice(ctx, target, key, func(e *noticeEntity) error {
		claimed = poller.CanClaimNotice(e.claim(target, key), holder, at, ttl)
		if !claimed {
			return errUnchanged
		}
		e.Claimed, e.Claimer = storedTime(at), holder
		return nil
	})
	if err != nil {
		return poller.NoticeClaim{}, false, fmt.Errorf("claim notice %s of %s: %w", key, target, err)
	}
	return e.claim(target, key), claimed, nil
}

// ReleaseNotice gives holder's claim up; another's claim or a sent notice
// is left alone.
func (s *Store) ReleaseNotice(ctx context.Context, target, key, holder string) error {
	_, err := s.updateNotice(ctx, target, key, func(e *noticeEntity) error {
		if e.Claimer != holder || !e.SentAt.IsZero() {
			return errUnchanged
		}
		e.Claimed, e.Claimer = time.Time{}, ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("release notice %s of %s: %w", key, target, err)
	}
	return nil
}

// MarkNoticeSent records the notice delivered at at and ends its claim; a
// sent notice stays as it was.
func (s *Store) MarkNoticeSent(ctx context.Context, target, key string, at time.Time) error {
	_, err := s.updateNotice(ctx, target, key, func(e *noticeEntity) error {
		if !e.SentAt.IsZero() {
			return errUnchanged
		}
		e.SentAt, e.Claimed, e.Claimer = storedTime(at), time.Time{}, ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark notice %s of %s sent: %w", key, target, err)
	}
	return nil
}

// nilIfEmpty is s, or nil when it is empty: Datastore does not store empty
// arrays.
func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

package memstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// The store must keep satisfying the backup watch's port.
var _ poller.BackupStore = (*Store)(nil)

// watchData is what the backup watch keeps, as store.Store keeps it in
// DSExportBackup, DSExportWatch and DSExportNotice. Its maps are made on
// first use, under the Store's mutex.
type watchData struct {
	backups map[backupKey]recordedBackup // by target and backup name
	states  map[string]poller.WatchState // by target
	notices map[noticeKey]poller.NoticeClaim
}

type recordedBackup struct {
	target string
	backup poller.Backup
}

type noticeKey struct{ target, key string }

type backupKey struct{ target, name string }

func (w *watchData) init() {
	if w.backups == nil {
		w.backups = map[backupKey]recordedBackup{}
		w.states = map[string]poller.WatchState{}
		w.notices = map[noticeKey]poller.NoticeClaim{}
	}
}

func storedBackup(b poller.Backup) poller.Backup {
	b.SnapshotTime, b.ExpireTime = storedTime(b.SnapshotTime), storedTime(b.ExpireTime)
	return b
}

// RecordBackup records b as one of target's backups; recording it again
// changes nothing, and a backup recorded NOT_AVAILABLE stays so. Each
// target has its own records of a backup.
func (s *Store) RecordBackup(ctx context.Context, target string, b poller.Backup, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := poller.CheckBackupRecord(target, b.Name); err != nil {
		return fmt.Errorf("record backup of %s: %w", poller.BoundText(target, 256), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.init()
	k := backupKey{target, b.Name}
	if old, ok := s.watch.backups[k]; ok && old.backup.State == poller.BackupNotAvailable && b.State != old.backup.State {
		return nil
	}
	s.watch.backups[k] = recordedBackup{target: target, backup: storedBackup(b)}
	return nil
}

// Backups returns up to limit of target's recorded backups, newest first
// by snapshot time (by name on a tie, as Datastore orders by key). limit
// must be positive.
func (s *Store) Backups(ctx context.Context, target string, limit int) ([]poller.Backup, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("list backups of %s: limit %d is not positive", target, limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var bs []poller.Backup
	for _, rb := range s.watch.backups {
		if rb.target == target {
			bs = append(bs, rb.backup)
		}
	}
	slices.SortFunc(bs, func(a, b poller.Backup) int {
		return cmp.Or(b.SnapshotTime.Compare(a.SnapshotTime), strings.Compare(a.Name, b.Name))
	})
	if len(bs) > limit {
		bs = bs[:limit]
	}
	return bs, nil
}

// WatchState returns what the backup watch remembers of target: a zero
// state naming it when it was never watched.
func (s *Store) WatchState(ctx context.Context, target string) (poller.WatchState, error) {
	if err := ctx.Err(); err != nil {
		return poller.WatchState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.watch.states[target]
	if !ok {
		return poller.WatchState{Target: target}, nil
	}
	return cloneState(st), nil
}

// SaveWatchState replaces the state of st.Target.
func (s *Store) SaveWatchState(ctx context.Context, st poller.WatchState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if st.Target == "" {
		return errors.New("save watch state: no target")
	}
	st = cloneState(st)
	st.Since, st.NoScheduleSince, st.NewestReadyAt = storedTime(st.Since), storedTime(st.NoScheduleSince), storedTime(st.NewestReadyAt)
	st.FailingSince = storedTime(st.FailingSince)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.init()
	s.watch.states[st.Target] = st
	return nil
}

// cloneState is st without slices shared with the Store, empty ones nil
// as Datastore gives them back.
func cloneState(st poller.WatchState) poller.WatchState {
	st.Schedules, st.Recorded, st.Raised = nilIfEmpty(st.Schedules), nilIfEmpty(st.Recorded), nilIfEmpty(st.Raised)
	return st
}

// ClaimNotice claims target's notice key for holder when
// poller.CanClaimNotice allows it.
func (s *Store) ClaimNotice(ctx context.Context, target, key, holder string, at time.Time, ttl time.Duration) (poller.NoticeClaim, bool, error) {
	if err := ctx.Err(); err != nil {
		return poller.NoticeClaim{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.init()
	k := noticeKey{target, key}
	c := s.watch.notices[k]
	c.Target, c.Key = target, key
	if !poller.CanClaimNotice(c, holder, at, ttl) {
		return c, false, nil
	}
	c.Claimed, c.Claimer = storedTime(at), holder
	s.watch.notices[k] = c
	return c, true, nil
}

// ReleaseNotice gives holder's claim up; another's claim or a sent notice
// is left alone.
func (s *Store) ReleaseNotice(ctx context.Context, target, key, holder string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := noticeKey{target, key}
	c, ok := s.watch.notices[k]
	if ok && c.Claimer == holder && !c.Sent() {
		c.Claimed, c.Claimer = time.Time{}, ""
		s.watch.notices[k] = c
	}
	return nil
}

// MarkNoticeSent records the notice delivered at at and ends its claim; a
// sent notice stays as it was.
func (s *Store) MarkNoticeSent(ctx context.Context, target, key string, at time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.watch.init()
	k := noticeKey{target, key}
	c := s.watch.notices[k]
	if c.Sent() {
		return nil
	}
	c.Target, c.Key = target, key
	c.SentAt, c.Claimed, c.Claimer = storedTime(at), time.Time{}, ""
	s.watch.notices[k] = c
	return nil
}

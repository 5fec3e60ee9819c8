package poller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// WatchResult counts what one watch of a target's managed backups did.
type WatchResult struct {
	// Recorded is how many backups were recorded (new READY ones, recorded
	// ones READY no more).
	Recorded int `json:"recorded"`
	// Notices is how many notices this watch delivered; Unsent how many
	// are left to the next sweep (a failed send, a stop, another sweep's
	// live claim).
	Notices int `json:"notices"`
	Unsent  int `json:"unsent"`
}

// ErrNoBackupWatch is returned by WatchBackups when the poller has no
// Firestore Admin API or no BackupStore to watch with.
var ErrNoBackupWatch = errors.New("no Firestore Admin API or backup store configured to watch backups with")

// WatchBackups lists t's backup schedules and backups (Config.Backups),
// applies CheckBackups to them and to what the watch remembers of t
// (Config.BackupStore), records the new backups, and delivers each notice
// once: claimed under its key first, so that of two sweeps only one sends
// it, and given back when its send fails, so that the next sweep sends it.
// An Admin API failure is returned, and the next sweep lists again; once
// the listings have failed for as long as a missing backup may go unraised
// (CheckFailedWatch), a NoticeWatchFailing is delivered, once per stretch
// of failures. A target without Backups is not watched.
func (p *Poller) WatchBackups(ctx context.Context, t Target) (WatchResult, error) {
	var res WatchResult
	if t.Backups == nil {
		return res, nil
	}
	if p.cfg.Backups == nil || p.cfg.BackupStore == nil {
		return res, fmt.Errorf("watch backups of %s: %w", t.Name, ErrNoBackupWatch)
	}
	log := p.cfg.Logger.With("target", t.Name, "database", t.Scope())
	l, failure := p.listBackups(ctx, t)
	var lerr error
	if failure != nil {
		lerr = fmt.Errorf("watch backups of %s: %w", t.Name, failure)
		if ctx.Err() != nil {
			// A stop, not the API's failure: nothing to count.
			return res, lerr
		}
	}
	// From here on the steps are the store's and Slack's: a stop is
	// honoured between notices, and a notice sent is marked sent.
	work, release := p.workContext(ctx)
	defer release()
	bs := p.cfg.BackupStore
	var state WatchState
	err := p.persist(work, func(ctx context.Context) error {
		var err error
		state, err = bs.WatchState(ctx, t.Name)
		return err
	})
	if err != nil {
		return res, errors.Join(lerr, fmt.Errorf("watch backups of %s: %w", t.Name, err))
	}
	now := p.cfg.Clock.Now()
	if lerr != nil {
		check := CheckFailedWatch(t, state, now, failure)
		if len(check.Notices) > 0 {
			log.WarnContext(ctx, "the backups have not been listed for longer than the recurrence allows",
				"failing_since", check.Next.FailingSince, "allowance", t.Backups.Recurrence.Allowance(), "err", lerr)
		}
		res, err := p.settle(ctx, work, log, t, state, check, res)
		return res, errors.Join(lerr, err)
	}
	check := CheckBackups(t, l, state, now, p.cfg.ShrinkWarn)
	if check.MissingUnknown {
		log.WarnContext(ctx, "no READY backup listed within the recurrence, but the database's location did not answer: the missing backup is not raised while the list is incomplete",
			"location", l.Database.Location, "unreachable", l.Unreachable, "newest_ready", check.Next.NewestReady, "allowance", t.Backups.Recurrence.Allowance())
	}
	// Backups are recorded before any notice: a notice about a backup the
	// status page does not list would puzzle its reader.
	for _, b := range check.Record {
		err := p.persist(work, func(ctx context.Context) error { return bs.RecordBackup(ctx, t.Name, b, now) })
		if err != nil {
			return res, fmt.Errorf("watch backups of %s: %w", t.Name, err)
		}
		res.Recorded++
	}
	return p.settle(ctx, work, log, t, state, check, res)
}

// settle delivers check's notices, each once, and saves the state that
// they leave (check.Next, less what did not go out) when it is not state.
// work is the context of the store's and Slack's steps, ctx the watch's,
// whose stop leaves the notices not yet sent to the next sweep.
func (p *Poller) settle(ctx, work context.Context, log *slog.Logger, t Target, state WatchState, check WatchCheck, res WatchResult) (WatchResult, error) {
	bs := p.cfg.BackupStore
	next := check.Next
	var errs []error
	for _, n := range check.Notices {
		if ctx.Err() != nil {
			// A stop: the notices left are the next sweep's.
			next = next.Unsettled(n)
			res.Unsent++
			continue
		}
		sent, settled, err := p.sendNotice(work, log, t, n)
		if err != nil {
			errs = append(errs, err)
		}
		if sent {
			res.Notices++
		}
		if !settled {
			next = next.Unsettled(n)
			res.Unsent++
		}
	}
	if !next.Equal(state) {
		err := p.persist(work, func(ctx context.Context) error { return bs.SaveWatchState(ctx, next) })
		if err != nil {
			// The claims still hold what was sent: the next sweep works the
			// same notices out again and finds them sent.
			errs = append(errs, fmt.Errorf("watch backups of %s: save state: %w", t.Name, err))
		}
	}
	if ctx.Err() != nil && res.Unsent > 0 {
		errs = append(errs, fmt.Errorf("watch backups of %s stopped with %d notices left: %w", t.Name, res.Unsent, ctx.Err()))
	}
	return res, errors.Join(errs...)
}

// listBackups asks the Firestore Admin API for t's database, its schedules
// and its backups, each call bounded by RequestTimeout, and bounds what it
// answered.
func (p *Poller) listBackups(ctx context.Context, t Target) (Listing, error) {
	var l Listing
	db := dbOf(t.Database)
	sctx, cancel := p.stepContext(ctx)
	info, err := p.cfg.Backups.Database(sctx, t.Project, db)
	cancel()
	if err != nil {
		return l, fmt.Errorf("get database: %w", err)
	}
	if info.UID == "" {
		return l, fmt.Errorf("get database: the API gave %s no uid to list its backups by", quote(Scope(t.Project, db)))
	}
	if len(info.UID) > MaxDatabaseUID {
		// Cut, it would list no backup: refused, as the adapter refuses it.
		return l, fmt.Errorf("get database: the API gave %s a uid of %d bytes; a database uid has at most %d",
			quote(Scope(t.Project, db)), len(info.UID), MaxDatabaseUID)
	}
	if len(info.Location) > MaxLabel {
		// No location id is this long: unknown, so that an unreachable
		// location is taken to be the database's.
		info.Location = ""
	}
	l.Database = info
	sctx, cancel = p.stepContext(ctx)
	schedules, err := p.cfg.Backups.BackupSchedules(sctx, t.Project, db)
	cancel()
	if err != nil {
		return l, fmt.Errorf("list backup schedules: %w", err)
	}
	for _, s := range schedules {
		l.Schedules = append(l.Schedules, s.Bounded())
	}
	sctx, cancel = p.stepContext(ctx)
	backups, unreachable, err := p.cfg.Backups.Backups(sctx, t.Project, info.UID)
	cancel()
	if err != nil {
		return l, fmt.Errorf("list backups: %w", err)
	}
	for _, b := range backups {
		l.Backups = append(l.Backups, b.Bounded())
	}
	// Bounded as names, not labels: projects/P/locations/ID, cut, would no
	// longer tell whose location it is.
	l.Unreachable = boundList(unreachable, MaxName, "locations")
	return l, nil
}

// sendNotice delivers n once, as finish delivers a report: claimed first,
// given back when the send fails, marked sent after. sent tells whether
// this call delivered it; settled whether it needs nothing more (delivered
// now or before), so that the watch's state may forget it.
func (p *Poller) sendNotice(ctx context.Context, log *slog.Logger, t Target, n Notice) (sent, settled bool, err error) {
	bs := p.cfg.BackupStore
	log = log.With("notice", n.Kind, "key", n.Key)
	// The claim names this call: a try that committed but answered late is
	// found again by the next try as this call's own.
	holder := newHolder()
	var claim NoticeClaim
	var ok bool
	err = p.persist(ctx, func(ctx context.Context) error {
		var err error
		claim, ok, err = bs.ClaimNotice(ctx, t.Name, n.Key, holder, p.cfg.Clock.Now(), p.cfg.ClaimTTL)
		return err
	})
	if err != nil {
		return false, false, fmt.Errorf("claim backup notice %s of %s: %w", n.Key, t.Name, err)
	}
	if !ok {
		if claim.Sent() {
			return false, true, nil
		}
		log.InfoContext(ctx, "backup notice being sent by another sweep")
		return false, false, nil
	}
	nctx, cancel := p.stepContext(ctx)
	notice := n.BackupNotice
	err = p.cfg.Notifier.Notify(nctx, Report{Backup: &notice})
	cancel()
	if err != nil {
		log.ErrorContext(ctx, "backup notice not delivered; the next sweep tries again", "err", err)
		rerr := p.persist(ctx, func(ctx context.Context) error { return bs.ReleaseNotice(ctx, t.Name, n.Key, holder) })
		if rerr != nil {
			log.ErrorContext(ctx, "backup notice claim not released; it expires by itself", "err", rerr)
		}
		return false, false, fmt.Errorf("backup notice %s of %s: %w", n.Key, t.Name, err)
	}
	switch n.Kind {
	case NoticeReady:
		log.InfoContext(ctx, "new backup reported", "backup", n.Backup.Name)
	case NoticeWatchFailing:
		log.WarnContext(ctx, "backup watch failing raised", "since", n.Since)
	default:
		log.WarnContext(ctx, "backup alarm raised", "backup", n.Backup.Name, "since", n.Since)
	}
	// Out: marked sent within the claim, through a stop, as a report is.
	now := p.cfg.Clock.Now()
	mark := func(ctx context.Context) error { return bs.MarkNoticeSent(ctx, t.Name, n.Key, now) }
	if err := p.persistFor(ctx, p.markPatience(), mark); err != nil {
		// Delivered all the same: the state forgets it, and only a sweep
		// that lost the state too would send it again after ClaimTTL.
		return true, true, fmt.Errorf("mark backup notice %s of %s sent: %w", n.Key, t.Name, err)
	}
	return true, true, nil
}

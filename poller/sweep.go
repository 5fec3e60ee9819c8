package poller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SweepResult counts what one sweep did.
type SweepResult struct {
	// Pending is how many operations were not reported yet.
	Pending int `json:"pending"`
	// Resumed were running with no live poller and were handed to one.
	Resumed int `json:"resumed"`
	// Reported were ended but unreported, and are reported now.
	Reported int `json:"reported"`
	// StillPending are ended operations whose report failed again.
	StillPending int `json:"stillPending"`
	// Alarm is true when this sweep raised the staleness alarm.
	Alarm bool `json:"alarm"`
	// BackupsRecorded and Notices count the managed backups the watch
	// recorded and the notices it delivered (WatchBackups).
	BackupsRecorded int `json:"backupsRecorded"`
	Notices         int `json:"notices"`
	// DrillsBegun and DrillsEnded count the restore drills this sweep began
	// and brought to their end (drillAll).
	DrillsBegun int `json:"drillsBegun"`
	DrillsEnded int `json:"drillsEnded"`
}

// Sweep finds what fell through (SweepDecision): operations whose poller
// vanished (running, not reported, lease expired or never taken) are handed
// to a poller again through the Dispatcher; ended operations whose report
// was not delivered are reported; and when no export of a target's
// database succeeded for StaleAfter, one alarm is raised, not repeated until
// a success (a target that only watches managed backups has no exports to
// be stale). The managed backups of each target with Backups are watched
// (WatchBackups) when Config.Backups is set. It goes through every step and returns their errors together
// rather than stopping at the first.
func (p *Poller) Sweep(ctx context.Context, targets []Target) (SweepResult, error) {
	var res SweepResult
	var errs []error
	now := p.cfg.Clock.Now()
	pending, err := p.cfg.Store.Pending(ctx)
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	res.Pending = len(pending)
	round := now.UnixMilli() / p.cfg.SweepRound.Milliseconds()
	for _, rec := range pending {
		if err := ctx.Err(); err != nil {
			// A stop, or the sweep's own deadline: the next sweep goes on.
			errs = append(errs, fmt.Errorf("sweep stopped with %d pending left: %w", res.Pending-res.Resumed-res.Reported-res.StillPending, err))
			break
		}
		switch SweepDecision(rec, now, p.cfg.LeaseTTL, p.cfg.ClaimTTL) {
		case SweepResume:
			if err := p.dispatch(ctx, Handoff{Name: rec.Name, Polls: rec.Polls, Resume: true, Round: round}); err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", rec.Name, err))
				continue
			}
			p.cfg.Logger.WarnContext(ctx, "resumed an operation whose poller vanished", "operation", rec.Name,
				"polls", rec.Polls, "lease_expired", rec.LeaseExpires)
			res.Resumed++
		case SweepReport:
			// Reported as a poll reports: a stop is honoured within StopGrace.
			work, release := p.workContext(ctx)
			done, err := p.ended(work, rec, rec.Outcome)
			release()
			if err != nil {
				// finish logged it at ERROR; it stays pending for the next sweep.
				errs = append(errs, err)
				res.StillPending++
				continue
			}
			if done.Record.Reported() {
				res.Reported++
			}
		}
	}
	for _, t := range targets {
		if p.cfg.StaleAfter <= 0 || !t.Exported() {
			continue
		}
		alarm, err := p.staleness(ctx, t, now)
		res.Alarm = res.Alarm || alarm
		if err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, p.watchAll(ctx, targets, &res)...)
	errs = append(errs, p.drillAll(ctx, targets, &res)...)
	return res, errors.Join(errs...)
}

// drillAll begins the restore drills that are due and advances every drill
// under way, each as far as it goes without waiting (AdvanceDrill): an
// import is followed from one sweep to the next, its time taken from the
// operation itself.
func (p *Poller) drillAll(ctx context.Context, targets []Target, res *SweepResult) []error {
	if p.cfg.Drills == nil || p.cfg.DrillStore == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, DrillSweepBudget)
	defer cancel()
	var errs []error
	for _, t := range targets {
		if t.Drill == nil || ctx.Err() != nil {
			continue
		}
		_, begun, err := p.BeginDrill(ctx, t, TriggerCron, false)
		switch {
		case errors.Is(err, ErrNoVerifiedExport):
			// Nothing to restore yet; the status page says so.
		case err != nil:
			errs = append(errs, err)
		case begun:
			res.DrillsBegun++
		}
	}
	var open []Drill
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		open, err = p.cfg.DrillStore.UnfinishedDrills(ctx)
		return err
	})
	if err != nil {
		return append(errs, fmt.Errorf("sweep: drills under way: %w", err))
	}
	for _, d := range open {
		if ctx.Err() != nil {
			// The budget is spent: the next sweep goes on.
			break
		}
		got, err := p.AdvanceDrill(ctx, d.ID)
		if err != nil && ctx.Err() == nil {
			errs = append(errs, err)
		}
		if got.Finished() {
			res.DrillsEnded++
		}
	}
	return errs
}

// watchers bounds the targets whose backups one sweep watches at once:
// each watch is three Admin API calls and a few store steps, so a sweep of
// a hundred targets one after the other would take a hundred times their
// latency.
const watchers = 8

// watchAll watches the managed backups of every target that asks, up to
// watchers at once, and adds what they did to res.
func (p *Poller) watchAll(ctx context.Context, targets []Target, res *SweepResult) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, watchers)
	for _, t := range targets {
		if t.Backups == nil || p.cfg.Backups == nil {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if err := ctx.Err(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("sweep stopped before watching the backups of %s: %w", t.Name, err))
			mu.Unlock()
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			wr, err := p.WatchBackups(ctx, t)
			mu.Lock()
			defer mu.Unlock()
			res.BackupsRecorded += wr.Recorded
			res.Notices += wr.Notices
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return errs
}

// staleness raises the alarm once per stretch without a success.
func (p *Poller) staleness(ctx context.Context, t Target, now time.Time) (bool, error) {
	project := t.Scope()
	h, err := p.cfg.Store.Health(ctx, project, now)
	if err != nil {
		return false, fmt.Errorf("staleness: %w", err)
	}
	if !StaleAlarmDue(h, now, p.cfg.StaleAfter) {
		return false, nil
	}
	since := StaleSince(h)
	holder := newHolder()
	var ok bool
	err = p.persist(ctx, func(ctx context.Context) error {
		var err error
		ok, err = p.cfg.Store.ClaimStaleAlarm(ctx, project, holder, since, now)
		return err
	})
	if err != nil || !ok {
		return false, err
	}
	r := Report{Stale: &Stale{Project: project, Target: t.Name, LastSuccess: h.LastSuccess, Since: h.Since, After: p.cfg.StaleAfter}}
	nctx, cancel := p.stepContext(context.WithoutCancel(ctx))
	defer cancel()
	if err := p.cfg.Notifier.Notify(nctx, r); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "staleness alarm not delivered; the next sweep tries again", "project", project, "err", err)
		rerr := p.persist(context.WithoutCancel(ctx), func(ctx context.Context) error {
			return p.cfg.Store.ReleaseStaleAlarm(ctx, project, holder, since)
		})
		if rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, fmt.Errorf("staleness alarm: %w", err)
	}
	p.cfg.Logger.WarnContext(ctx, "staleness alarm raised", "project", project, "last_success", h.LastSuccess.Name, "since", since)
	return true, nil
}

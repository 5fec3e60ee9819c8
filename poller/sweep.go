package poller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Dispatcher hands an operation to a poller (server.Inline, tasks.Dispatcher)
// under a hand-off key (PollKey, ResumeKey).
type Dispatcher interface {
	Dispatch(ctx context.Context, name, key string) error
}

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
}

// Sweep finds what fell through: operations whose poller vanished (running,
// not reported, lease expired or never taken) are handed to a poller again;
// ended operations whose report was not delivered are reported; and when no
// export of project succeeded for StaleAfter, one alarm is raised, not
// repeated until a success. It goes through every step and returns their
// errors together rather than stopping at the first.
func (p *Poller) Sweep(ctx context.Context, project string, dispatch Dispatcher) (SweepResult, error) {
	var res SweepResult
	var errs []error
	now := p.cfg.Clock.Now()
	pending, err := p.cfg.Store.Pending(ctx)
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	res.Pending = len(pending)
	for _, rec := range pending {
		log := p.cfg.Logger.With("operation", rec.Name)
		switch {
		case rec.Outcome == OutcomeNone && Classify(rec.Operation) == OutcomeNone:
			// A poller that holds a live lease is working on it. A fresh
			// start whose first task may not have run yet gets LeaseTTL; one
			// that was polled and released (a stop, a continuation not yet
			// running) is handed over at once, and if its continuation runs
			// too, the lease lets one of them through.
			if rec.LeaseHolder != "" && now.Before(rec.LeaseExpires) {
				continue
			}
			if rec.LeaseHolder == "" && rec.Polls == 0 && now.Sub(rec.Updated) < p.cfg.LeaseTTL {
				continue
			}
			key := ResumeKey(rec.Polls, now.UnixMilli()/p.cfg.SweepRound.Milliseconds())
			if err := dispatch.Dispatch(ctx, rec.Name, key); err != nil {
				errs = append(errs, fmt.Errorf("resume %s: %w", rec.Name, err))
				continue
			}
			log.WarnContext(ctx, "resumed an operation whose poller vanished", "polls", rec.Polls, "lease_expired", rec.LeaseExpires)
			res.Resumed++
		case !rec.ReportClaimed.IsZero() && now.Before(rec.ReportClaimed.Add(p.cfg.ClaimTTL)):
			// Another poller is sending it right now.
		default:
			outcome := rec.Outcome
			if outcome == OutcomeNone {
				// Done when recorded, outcome never written.
				outcome = Classify(rec.Operation)
			}
			done, err := p.finish(context.WithoutCancel(ctx), rec, outcome)
			if err != nil {
				// finish logged it at ERROR; it stays pending for the next sweep.
				errs = append(errs, err)
				res.StillPending++
				continue
			}
			if done.Reported() {
				res.Reported++
			}
		}
	}
	if p.cfg.StaleAfter > 0 {
		alarm, err := p.staleness(ctx, project, now)
		res.Alarm = alarm
		if err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

// staleness raises the alarm once per stretch without a success.
func (p *Poller) staleness(ctx context.Context, project string, now time.Time) (bool, error) {
	h, err := p.cfg.Store.Health(ctx, project, now)
	if err != nil {
		return false, fmt.Errorf("staleness: %w", err)
	}
	since := h.LastSuccess.At
	if since.IsZero() {
		since = h.Since
	}
	if now.Sub(since) < p.cfg.StaleAfter || h.AlarmFor.Equal(since) {
		return false, nil
	}
	ok, err := p.cfg.Store.ClaimStaleAlarm(ctx, project, since, now)
	if err != nil || !ok {
		return false, err
	}
	r := Report{Stale: &Stale{Project: project, LastSuccess: h.LastSuccess, Since: h.Since, After: p.cfg.StaleAfter}}
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RequestTimeout)
	defer cancel()
	if err := p.cfg.Notifier.Notify(nctx, r); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "staleness alarm not delivered; the next sweep tries again", "project", project, "err", err)
		if rerr := p.cfg.Store.ReleaseStaleAlarm(context.WithoutCancel(ctx), project, since); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, fmt.Errorf("staleness alarm: %w", err)
	}
	p.cfg.Logger.WarnContext(ctx, "staleness alarm raised", "project", project, "last_success", h.LastSuccess.Name, "since", since)
	return true, nil
}

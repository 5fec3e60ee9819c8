package poller

import (
	"context"
	"fmt"
	"time"
)

// finish records the outcome if needed and delivers the report once: the
// report is claimed in a transaction first, so of two pollers that reach the
// end together only one sends it. A failed send gives the claim back.
func (p *Poller) finish(ctx context.Context, rec Record, outcome Outcome) (Record, error) {
	var err error
	if rec.Outcome == OutcomeNone {
		if rec, err = p.setOutcome(ctx, rec, outcome); err != nil {
			return rec, err
		}
	}
	if rec.Reported() {
		return rec, nil
	}
	log := p.cfg.Logger.With("operation", rec.Name, "outcome", rec.Outcome)
	cctx, cancel := p.stepContext(ctx)
	claimed, ok, err := p.cfg.Store.ClaimReport(cctx, rec.Name, p.cfg.Clock.Now(), p.cfg.ClaimTTL)
	cancel()
	if err != nil {
		return rec, fmt.Errorf("claim report of %s: %w", rec.Name, err)
	}
	if !ok {
		log.InfoContext(ctx, "report sent or being sent by another poller")
		return claimed, nil
	}
	rec = claimed
	report := ReportOf(rec)
	if rec.Outcome == OutcomeSuccess {
		report.Shrink = p.recordSuccess(ctx, rec)
	}
	if err := p.send(ctx, rec, report); err != nil {
		return rec, err
	}
	// The report is out: marking it sent must not be cut short by a stop,
	// or a later sweep would send it again. It is retried, outside
	// StopGrace, each try bounded by RequestTimeout.
	now := p.cfg.Clock.Now()
	if err := p.mustWrite(ctx, func(ctx context.Context) error { return p.cfg.Store.MarkReported(ctx, rec.Name, now) }); err != nil {
		return rec, fmt.Errorf("mark %s reported: %w", rec.Name, err)
	}
	rec.ReportedAt = now
	log.InfoContext(ctx, "reported", "polls", rec.Polls)
	return rec, nil
}

// send delivers the claimed report of rec; a failure gives the claim back
// and wraps ErrReportPending.
func (p *Poller) send(ctx context.Context, rec Record, report Report) error {
	nctx, cancel := p.stepContext(ctx)
	err := p.cfg.Notifier.Notify(nctx, report)
	cancel()
	if err == nil {
		return nil
	}
	p.cfg.Logger.ErrorContext(ctx, "report not delivered", "operation", rec.Name, "err", err)
	rctx, cancel := p.stepContext(ctx)
	defer cancel()
	if rerr := p.cfg.Store.ReleaseReport(rctx, rec.Name, p.cfg.Clock.Now()); rerr != nil {
		p.cfg.Logger.ErrorContext(ctx, "report claim not released; it expires by itself", "operation", rec.Name, "err", rerr)
	}
	return fmt.Errorf("report %s: %w: %w", rec.Name, ErrReportPending, err)
}

// recordSuccess makes rec its filter's latest success and compares it with
// the previous one (CheckShrink): a shrink beyond ShrinkWarn is returned for
// the report. A store failure costs only the comparison, never the report.
func (p *Poller) recordSuccess(ctx context.Context, rec Record) *Shrink {
	sctx, cancel := p.stepContext(ctx)
	defer cancel()
	prev, ok, err := p.cfg.Store.RecordSuccess(sctx, rec, p.cfg.Clock.Now())
	if err != nil && ok {
		// The comparison stands; only the staleness record lags behind.
		p.cfg.Logger.WarnContext(ctx, "success not recorded in the project's health", "operation", rec.Name, "err", err)
	} else if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "success not recorded; no shrink check", "operation", rec.Name, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	sh, shrank := CheckShrink(prev, rec.Name, rec.EntitiesCompleted, p.cfg.ShrinkWarn)
	if !shrank {
		return nil
	}
	p.cfg.Logger.WarnContext(ctx, "export shrank", "operation", rec.Name, "entities", sh.Entities,
		"previous", prev.Name, "previous_entities", prev.Entities)
	return &sh
}

// postStarted posts the message that will follow the export, and records
// where it is. Progress is a courtesy: a failure is logged, and the final
// report then comes as a message of its own.
func (p *Poller) postStarted(ctx context.Context, rec Record) Record {
	nctx, cancel := p.stepContext(ctx)
	defer cancel()
	ref, err := p.cfg.Progress.Started(nctx, Report{Operation: rec.Operation})
	if err != nil || ref.IsZero() {
		if err != nil {
			p.cfg.Logger.WarnContext(ctx, "start message not posted", "operation", rec.Name, "err", err)
		}
		return rec
	}
	if err := p.cfg.Store.SetMessage(nctx, rec.Name, ref, p.cfg.Clock.Now()); err != nil {
		p.cfg.Logger.WarnContext(ctx, "start message not recorded", "operation", rec.Name, "err", err)
		return rec
	}
	rec.Message = ref
	return rec
}

// progress updates the export's message, at most every ProgressEvery.
func (p *Poller) progress(ctx context.Context, rec Record, last *time.Time) {
	if p.cfg.Progress == nil || rec.Message.IsZero() || rec.Outcome != OutcomeNone {
		return
	}
	now := p.cfg.Clock.Now()
	if !last.IsZero() && now.Sub(*last) < p.cfg.ProgressEvery {
		return
	}
	*last = now
	nctx, cancel := p.stepContext(ctx)
	defer cancel()
	if err := p.cfg.Progress.Progress(nctx, rec.Message, Report{Operation: rec.Operation, Polls: rec.Polls}); err != nil {
		p.cfg.Logger.WarnContext(ctx, "progress message not updated", "operation", rec.Name, "err", err)
	}
}

package poller

import (
	"context"
	"errors"
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
	// A success is recorded before the claim: the record is idempotent and
	// needs none, and a claim must not wait on it (the store may take up to
	// StorePatience), or it could expire before the report is out.
	var shrink *Shrink
	if rec.Outcome == OutcomeSuccess {
		if shrink, err = p.recordSuccess(ctx, rec); err != nil {
			// Without its success recorded, the report would go out with
			// no shrink check and the staleness alarm would not know of it:
			// it waits for the store instead.
			return rec, fmt.Errorf("report %s: %w: success not recorded: %w", rec.Name, ErrReportPending, err)
		}
	}
	// The claim names this call: a try that committed but answered late
	// is found again by the next try as this call's own.
	holder := newHolder()
	var claimed Record
	var ok bool
	err = p.persist(ctx, func(ctx context.Context) error {
		var err error
		claimed, ok, err = p.cfg.Store.ClaimReport(ctx, rec.Name, holder, p.cfg.Clock.Now(), p.cfg.ClaimTTL)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("claim report of %s: %w", rec.Name, err)
	}
	if !ok {
		log.InfoContext(ctx, "report sent or being sent by another poller")
		return claimed, nil
	}
	rec = claimed
	report := ReportOf(rec)
	report.Shrink = shrink
	if rec.Outcome == OutcomeSuccess {
		// The files are read under the claim, which lasts the check's bound
		// too (New): a sweep meanwhile finds the report claimed and leaves
		// it, rather than reading the same files again.
		if report.Verification, err = p.verify(ctx, rec); err != nil {
			// Given back even after a stop or a deadline, within one
			// request's time: the claim lasts the check's bound, and the
			// next try would wait that long for it.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RequestTimeout)
			p.releaseReport(rctx, rec.Name, holder)
			cancel()
			if !errors.Is(err, ErrReportPending) {
				err = fmt.Errorf("report %s: %w: %w", rec.Name, ErrReportPending, err)
			}
			return rec, err
		}
	}
	if err := p.send(ctx, rec, report, holder); err != nil {
		return rec, err
	}
	// The report is out: marking it sent is retried, each try bounded by
	// RequestTimeout, while the claim keeps others from sending (past it,
	// another poller may send it again), and after a stop for as long as
	// ctx allows (a poll's StopGrace): a process being stopped is killed
	// soon after.
	now := p.cfg.Clock.Now()
	mark := func(ctx context.Context) error { return p.cfg.Store.MarkReported(ctx, rec.Name, now) }
	if err := p.persistFor(ctx, p.markPatience(), mark); err != nil {
		return rec, fmt.Errorf("mark %s reported: %w", rec.Name, err)
	}
	rec.ReportedAt = now
	log.InfoContext(ctx, "reported", "polls", rec.Polls)
	return rec, nil
}

// send delivers the report of rec claimed by holder; a failure gives the
// claim back and wraps ErrReportPending.
func (p *Poller) send(ctx context.Context, rec Record, report Report, holder string) error {
	nctx, cancel := p.stepContext(ctx)
	err := p.cfg.Notifier.Notify(nctx, report)
	cancel()
	if err == nil {
		return nil
	}
	p.cfg.Logger.ErrorContext(ctx, "report not delivered", "operation", rec.Name, "err", err)
	p.releaseReport(ctx, rec.Name, holder)
	return fmt.Errorf("report %s: %w: %w", rec.Name, ErrReportPending, err)
}

// releaseReport gives holder's claim back, so that the report is tried
// again at once; a claim left behind expires by itself.
func (p *Poller) releaseReport(ctx context.Context, name, holder string) {
	err := p.persist(ctx, func(ctx context.Context) error {
		return p.cfg.Store.ReleaseReport(ctx, name, holder, p.cfg.Clock.Now())
	})
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "report claim not released; it expires by itself", "operation", name, "err", err)
	}
}

// recordSuccess makes rec its filter's latest success and its project's
// (RecordSuccess is idempotent, so it is retried whole through a store
// outage), and compares it with the previous one (CheckShrink): a shrink
// beyond ShrinkWarn is returned for the report.
func (p *Poller) recordSuccess(ctx context.Context, rec Record) (*Shrink, error) {
	var prev Success
	var ok bool
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		prev, ok, err = p.cfg.Store.RecordSuccess(ctx, rec, p.cfg.Clock.Now())
		return err
	})
	if err != nil || !ok {
		return nil, err
	}
	sh, shrank := CheckShrink(prev, rec.Name, rec.EntitiesCompleted, p.cfg.ShrinkWarn)
	if !shrank {
		return nil, nil
	}
	p.cfg.Logger.WarnContext(ctx, "export shrank", "operation", rec.Name, "entities", sh.Entities,
		"previous", prev.Name, "previous_entities", prev.Entities)
	return &sh, nil
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
	err = p.persist(ctx, func(ctx context.Context) error { return p.cfg.Store.SetMessage(ctx, rec.Name, ref, p.cfg.Clock.Now()) })
	if err != nil {
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

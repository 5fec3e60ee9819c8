package poller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// PollStatus is how a Poll call ended.
type PollStatus string

// The statuses of a Poll.
const (
	// Ended: the operation has its outcome and its report was delivered
	// (now or before).
	Ended PollStatus = "ended"
	// Continued: the call's Budget was spent before the operation ended;
	// a continuation was dispatched before Poll returned.
	Continued PollStatus = "continued"
	// Held: another poller holds the operation's lease (a duplicate
	// delivery, or a lease taken over); this call did nothing more.
	Held PollStatus = "held"
)

// PollResult is what a Poll call did, with the record as it left it.
type PollResult struct {
	Status PollStatus
	Record Record
}

// ErrReportPending is wrapped by the error of a report that could not be
// delivered: it stays pending in the store, and the sweep sends it.
var ErrReportPending = errors.New("report pending")

// Poll follows the operation name until it ends or MaxPolls GETs were made,
// then reports it; when Budget runs out first, it hands the operation to a
// continuation. It continues from the poll count in the store, so a
// restarted poller does not start its budget over, and it is safe to call
// for an operation that has already been reported: it returns at once.
//
// An operation dsexport did not start (gcloud, the console) is read first
// and recorded only if it exists; a name the API does not know is an error
// wrapping ErrOperationGone, and nothing is written. A stop (ctx ending) is
// honoured between polls and returned as ctx's error: the operation is
// left for the next poller.
func (p *Poller) Poll(ctx context.Context, name string) (PollResult, error) {
	if _, err := ParseName(name); err != nil {
		return PollResult{}, err
	}
	work, release := p.workContext(ctx)
	defer release()
	rec, err := p.get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		rec, err = p.adopt(ctx, name)
	}
	if err != nil {
		return PollResult{}, fmt.Errorf("poll %s: %w", name, err)
	}
	if rec.Outcome != OutcomeNone || Classify(rec.Operation) != OutcomeNone {
		// Ended already, or done when recorded (a done-at-once export, a
		// refused start) with its outcome not yet written: the record says
		// it all, and its name may be one the API has never heard of. A
		// holder name left behind for it is of no more use.
		p.holders.forget(name)
		return p.ended(work, rec, rec.Outcome)
	}
	holder, ok := p.holders.take(name)
	if !ok {
		p.cfg.Logger.InfoContext(ctx, "this process polls the operation already; nothing to do", "operation", name)
		return PollResult{Status: Held, Record: rec}, nil
	}
	res, released, err := p.pollLeased(ctx, work, rec, holder)
	// The call ends here for this process, before the continuation is
	// handed over: one delivered at once to this process must find the
	// operation free, not held by the call that made it.
	p.holders.done(name, released)
	if err == nil && res.Status == Continued {
		if err := p.dispatch(work, Handoff{Name: name, Polls: res.Record.Polls}); err != nil {
			return res, fmt.Errorf("hand %s to its continuation: %w", name, err)
		}
	}
	return res, err
}

// pollLeased takes the lease of rec for holder, follows the operation and
// gives the lease up; released tells whether holder holds it no more.
func (p *Poller) pollLeased(ctx, work context.Context, rec Record, holder string) (res PollResult, released bool, err error) {
	name := rec.Name
	leased, ok, err := p.acquireLease(work, name, holder)
	if err != nil {
		return PollResult{Record: rec}, false, fmt.Errorf("lease %s: %w", name, err)
	}
	if !ok {
		p.cfg.Logger.InfoContext(ctx, "another poller holds the lease; nothing to do", "operation", name,
			"holder", leased.LeaseHolder, "until", leased.LeaseExpires)
		return PollResult{Status: Held, Record: leased}, true, nil
	}
	res, err = p.follow(ctx, work, leased, holder)
	// Whatever ended the loop (the end, the budget, a stop) gives the
	// operation up at once, so that its continuation or the sweep can take
	// it; the continuation is dispatched only after.
	return res, p.releaseLease(work, name, holder), err
}

// workContext is the context of a poll's steps. A stop (ctx ending:
// SIGTERM, a request's end) is honoured only between polls: a GET that was
// made is recorded, and a report that was sent is marked, so the work is
// never left half done. Each step is bounded by RequestTimeout, and all the
// steps after a stop by StopGrace, so that the process still exits in time.
//
// The work context's cause, when it ends for ctx, is ctx's: a deadline (a
// sweep's) is told apart from a stop.
func (p *Poller) workContext(ctx context.Context) (context.Context, func()) {
	work, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.StopGrace, func() { cancelWork(context.Cause(ctx)) })
		context.AfterFunc(work, func() { t.Stop() })
	})
	return work, func() { stopGrace(); cancelWork(context.Canceled) }
}

// ended reports an operation whose outcome is known, unless it was.
func (p *Poller) ended(ctx context.Context, rec Record, outcome Outcome) (PollResult, error) {
	if outcome == OutcomeNone {
		outcome = Classify(rec.Operation)
	}
	rec, err := p.finish(ctx, rec, outcome)
	return PollResult{Status: Ended, Record: rec}, err
}

// get reads the record of name, through a store outage.
func (p *Poller) get(ctx context.Context, name string) (Record, error) {
	var rec Record
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		rec, err = p.cfg.Store.Get(ctx, name)
		return err
	})
	return rec, err
}

// acquireLease takes the lease of name for holder. A try that committed
// but answered late is no loss: the next try finds holder's own lease.
func (p *Poller) acquireLease(ctx context.Context, name, holder string) (Record, bool, error) {
	var leased Record
	var ok bool
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		leased, ok, err = p.cfg.Store.AcquireLease(ctx, name, holder, p.cfg.Clock.Now(), p.cfg.LeaseTTL)
		return err
	})
	return leased, ok, err
}

// releaseLease ends holder's lease and tells whether it did. One left
// behind expires by itself, and the next Poll of this process for the
// operation takes it as its own.
func (p *Poller) releaseLease(ctx context.Context, name, holder string) bool {
	err := p.persist(ctx, func(ctx context.Context) error {
		return p.cfg.Store.ReleaseLease(ctx, name, holder, p.cfg.Clock.Now())
	})
	if err != nil {
		p.cfg.Logger.WarnContext(ctx, "lease not released; it expires by itself", "operation", name, "err", err)
		return false
	}
	return true
}

// follow is the poll loop of a leased operation: wait as the schedule says,
// renew the lease, GET, record, until an outcome, the polling budget, this
// call's Budget, a stop, or a lost lease ends it.
func (p *Poller) follow(ctx, work context.Context, rec Record, holder string) (PollResult, error) {
	log := p.cfg.Logger.With("operation", rec.Name)
	pace := p.newPace(rec)
	var lastProgress time.Time
	for rec.Outcome == OutcomeNone {
		wait, next := pace.next(rec, p.cfg.Clock.Now())
		switch next {
		case timedOut:
			log.WarnContext(ctx, "still running after the polling budget", "polls", rec.Polls)
			return p.ended(work, rec, OutcomeTimeout)
		case budgetSpent:
			log.InfoContext(ctx, "poll budget spent; handing over to a continuation", "polls", rec.Polls, "budget", p.cfg.Budget)
			return PollResult{Status: Continued, Record: rec}, nil
		}
		if !p.sleep(ctx, wait) {
			log.InfoContext(ctx, "polling stopped; the operation is left for the next poller", "polls", rec.Polls)
			return PollResult{Record: rec}, ctx.Err()
		}
		if p.renewLease(work, rec.Name, holder) {
			log.WarnContext(ctx, "lease taken over by another poller; stopping")
			return PollResult{Status: Held, Record: rec}, nil
		}
		var err error
		if rec, err = p.pollOnce(work, rec); err != nil {
			return PollResult{Record: rec}, err
		}
		pace.polled(rec, p.cfg.Clock.Now())
		p.progress(work, rec, &lastProgress)
	}
	return p.ended(work, rec, rec.Outcome)
}

// sleep waits d, or less if ctx ends; it tells whether the wait ran out.
// A stop that came during the last step wins over a tick that is also
// ready: select would pick between them at random.
func (p *Poller) sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.cfg.Clock.After(d):
	}
	return ctx.Err() == nil
}

// renewLease extends holder's lease and tells whether it was lost. Any other
// failure is logged: the lease still runs until it expires.
func (p *Poller) renewLease(ctx context.Context, name, holder string) (lost bool) {
	lctx, cancel := p.stepContext(ctx)
	defer cancel()
	err := p.cfg.Store.RenewLease(lctx, name, holder, p.cfg.Clock.Now(), p.cfg.LeaseTTL)
	if errors.Is(err, ErrLeaseLost) {
		return true
	}
	if err != nil {
		p.cfg.Logger.WarnContext(ctx, "lease not renewed", "operation", name, "err", err)
	}
	return false
}

// paceVerdict is what the pace says comes next.
type paceVerdict int

const (
	pollNext paceVerdict = iota
	timedOut
	budgetSpent
)

// pace keeps what the schedule goes by within one Poll call: the readings
// of this call from the latest one stored (a continuation starts where its
// predecessor stopped), the call's deadline, and whether it has polled.
type pace struct {
	p        *Poller
	start    time.Time
	seen     []Observation
	wallEnd  time.Time
	deadline time.Time
	// hasPolled tells whether this call made a GET.
	hasPolled bool
}

// newPace starts the pace of a call. The call's budget counts from here,
// after the reads that came before.
func (p *Poller) newPace(rec Record) *pace {
	start := rec.StartTime
	if start.IsZero() {
		start = rec.Created
	}
	pc := &pace{
		p: p, start: start,
		seen:     []Observation{ObservationOf(rec.Operation, rec.Updated)},
		deadline: p.cfg.Clock.Now().Add(p.cfg.Budget),
	}
	if w := p.wall(); w > 0 {
		pc.wallEnd = rec.Created.Add(w)
	}
	return pc
}

// next is the wait before the next GET, or the end of polling: the polling
// budget (MaxPolls GETs, the wall clock) or this call's budget. The budget
// is checked only once the call has polled: a call that made no poll would
// hand over under its own task's name, which the queue would take for a
// duplicate; its first wait is cut to fit instead.
func (pc *pace) next(rec Record, now time.Time) (time.Duration, paceVerdict) {
	cfg := pc.p.cfg
	wall := !pc.wallEnd.IsZero()
	if rec.Polls >= cfg.MaxPolls || (wall && !now.Before(pc.wallEnd)) {
		return 0, timedOut
	}
	wait := cfg.Schedule.Next(pc.start, pc.seen, now, cfg.MaxPolls-rec.Polls)
	if wall {
		// The last poll comes when the wall-clock budget ends.
		wait = min(wait, pc.wallEnd.Sub(now))
	}
	if cfg.Budget > 0 && now.Add(wait).After(pc.deadline) {
		if pc.hasPolled {
			return 0, budgetSpent
		}
		wait = max(0, pc.deadline.Sub(now))
	}
	return wait, pollNext
}

// polled notes a reading of this call.
func (pc *pace) polled(rec Record, at time.Time) {
	pc.hasPolled = true
	pc.seen = append(pc.seen, ObservationOf(rec.Operation, at))
}

// adopt records an operation that was not started by dsexport, after reading
// it: nothing is written for a name the API does not know.
func (p *Poller) adopt(ctx context.Context, name string) (Record, error) {
	gctx, cancel := p.stepContext(ctx)
	op, err := p.cfg.Admin.Get(gctx, name)
	cancel()
	if err == nil {
		err = CheckAnswer(name, op)
	}
	if err != nil {
		return Record{}, err
	}
	op = op.Bounded()
	if op.Name == "" {
		op.Name = name
	}
	p.cfg.Logger.InfoContext(ctx, "following an operation dsexport did not start", "operation", name, "state", op.State)
	return p.create(context.WithoutCancel(ctx), op)
}

// pollOnce makes one GET and records it. A failed GET counts as a poll, so an
// API that stays unreachable (or refuses, as a 403 does while IAM changes
// settle) still ends in a timeout report within the budget. Only a gone
// operation ends polling early, and the report says so.
func (p *Poller) pollOnce(ctx context.Context, rec Record) (Record, error) {
	log := p.cfg.Logger.With("operation", rec.Name)
	getCtx, cancel := p.stepContext(ctx)
	op, getErr := p.cfg.Admin.Get(getCtx, rec.Name)
	cancel()
	if getErr == nil {
		// An answer about another operation is a failed read, never a
		// result: it would report someone else's export as ours.
		getErr = CheckAnswer(rec.Name, op)
	}
	// Everything from the API is bounded before it is stored or reported.
	op = op.Bounded()
	if op.Name == "" {
		op.Name = rec.Name
	}
	if op.Project == "" {
		op.Project = rec.Project
	}
	op = carryOver(op, rec.Operation)
	now := p.cfg.Clock.Now()
	poll := rec.Polls + 1
	var next Record
	if getErr != nil {
		err := p.persist(ctx, func(ctx context.Context) error {
			var err error
			next, err = p.cfg.Store.CountPoll(ctx, rec.Name, poll, BoundText(getErr.Error(), MaxErrorText), now)
			return err
		})
		if err != nil {
			return rec, fmt.Errorf("count poll of %s: %w", rec.Name, err)
		}
		switch {
		case errors.Is(getErr, ErrOperationGone):
			log.ErrorContext(ctx, "operation no longer exists", "poll", next.Polls, "err", getErr)
			return p.setOutcome(ctx, next, OutcomeUnexpected)
		case errors.Is(getErr, ErrForeignAnswer):
			log.ErrorContext(ctx, "answer about another operation; not taken, trying again next tick", "poll", next.Polls, "err", getErr)
		case errors.Is(getErr, ErrTransient):
			log.WarnContext(ctx, "poll failed, trying again next tick", "poll", next.Polls, "err", getErr)
		default:
			log.ErrorContext(ctx, "poll refused, trying again next tick", "poll", next.Polls, "err", getErr)
		}
		return next, nil
	}
	if op.Trigger == "" {
		// Operations started before labels were sent carry none.
		op.Trigger = rec.Trigger
	}
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		next, err = p.cfg.Store.AddSnapshot(ctx, rec.Name, poll, op, now)
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("store snapshot of %s: %w", rec.Name, err)
	}
	log.InfoContext(ctx, "polled", "poll", next.Polls, "state", op.State, "done", op.Done,
		"entities", op.EntitiesCompleted, "bytes", op.BytesCompleted)
	if p.cfg.OnPoll != nil {
		p.cfg.OnPoll(next)
	}
	if outcome := Classify(op); outcome != OutcomeNone {
		return p.setOutcome(ctx, next, outcome)
	}
	return next, nil
}

// setOutcome records how rec ended; the first outcome recorded stays.
func (p *Poller) setOutcome(ctx context.Context, rec Record, outcome Outcome) (Record, error) {
	var next Record
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		next, err = p.cfg.Store.SetOutcome(ctx, rec.Name, outcome, p.cfg.Clock.Now())
		return err
	})
	if err != nil {
		return rec, fmt.Errorf("record outcome of %s: %w", rec.Name, err)
	}
	return next, nil
}

package poller

import (
	"context"
	"errors"
	"time"
)

// StartStatus is how a Start ended.
type StartStatus string

// The statuses of a Start.
const (
	// Started: the export runs, or ended at once, and is recorded (or, if
	// the store failed, handed over by name).
	Started StartStatus = "started"
	// Duplicate: a cron request repeated within its window; Record is the
	// export the first request started, and nothing was started.
	Duplicate StartStatus = "duplicate"
	// Running: an export of the same database and filter runs (Record); a
	// manual start needs Force to start another. Nothing was started.
	Running StartStatus = "running"
	// Refused: the Admin API refused the start; Record is the refusal,
	// recorded and reported like a failed export.
	Refused StartStatus = "refused"
)

// StartResult is what a Start did.
type StartResult struct {
	Status StartStatus
	Record Record
	// Recorded tells whether the export is in the store; one that is not
	// (a store failure after Google started it) is followed by name only,
	// and no sweep can find it.
	Recorded bool
	// Followed tells whether the export was handed to a poller (the
	// configured Dispatcher took its first poll).
	Followed bool
}

// Start decides on a start with the start rules (DecideStart), starts the
// export, records it and hands its first poll to the Dispatcher. An
// operation that comes back already done (the Datastore emulator answers
// so) is recorded under a generated name and reported at once. A refused
// start is recorded and reported with the API's own message.
//
// Errors are for what kept Start from deciding or asking: ErrRateLimited,
// ErrStartInProgress, ErrBusy, a store failure. Once the API is asked, the
// start is carried through whatever happens to ctx (a client that hangs up,
// a stop): an export that runs must be recorded and followed.
func (p *Poller) Start(ctx context.Context, req ExportRequest) (StartResult, error) {
	if req.Consistent && req.SnapshotTime.IsZero() {
		req.SnapshotTime = ConsistentSnapshotTime(p.cfg.Clock.Now())
	}
	log := p.cfg.Logger.With("project", req.Project, "database", dbOf(req.Database), "target", req.Target,
		"output_prefix", req.OutputURLPrefix, "trigger", req.Trigger)
	sreq := StartRequest{
		Project: req.Project, FilterKey: FilterKey(Scope(req.Project, req.Database), req.Kinds, req.Namespaces), Trigger: req.Trigger,
		Force: req.Force, CronWindow: cronWindow(p.cfg.CronWindow, req.CronWindow), PerMinute: p.cfg.StartsPerMinute, Holder: newHolder(),
	}
	var decision StartDecision
	err := p.persist(ctx, func(ctx context.Context) error {
		var err error
		decision, err = p.cfg.Store.BeginStart(ctx, sreq, p.cfg.Clock.Now())
		return err
	})
	if err != nil {
		return StartResult{}, err
	}
	switch decision.Verdict {
	case StartDuplicate:
		log.InfoContext(ctx, "cron request repeated within its window: nothing started", "operation", decision.Name)
		return p.existing(ctx, Duplicate, decision.Name, req.Project)
	case StartRunning:
		log.InfoContext(ctx, "an export of the same filter runs: nothing started", "operation", decision.Name)
		return p.existing(ctx, Running, decision.Name, req.Project)
	}
	work := context.WithoutCancel(ctx)
	ectx, cancel := context.WithTimeout(work, 2*p.cfg.RequestTimeout)
	op, err := p.cfg.Admin.Export(ectx, req)
	cancel()
	if err == nil {
		if cerr := CheckStarted(req.Project, req.Database, op); cerr != nil {
			// Not an answer about this start: what it started, if anything,
			// is not ours to follow (gcloud datastore operations list shows it).
			err = &RefusedError{Code: 2, Err: cerr}
		}
	}
	if err != nil {
		p.endStart(work, sreq, "")
		log.ErrorContext(ctx, "export refused", "err", err)
		return StartResult{Status: Refused, Record: p.refused(work, req, err)}, nil
	}
	op = startedOperation(op.Bounded(), req, p.cfg.Clock)
	rec, err := p.create(work, op)
	p.endStart(work, sreq, op.Name)
	if err != nil {
		// The export runs. Its name is all a poller needs: one that does
		// not find it recorded reads and records it (adopt).
		log.ErrorContext(ctx, "export started but not recorded; handing it over by name", "operation", op.Name, "err", err)
		rec = Record{Operation: op}
	} else {
		log.InfoContext(ctx, "export started", "operation", op.Name, "state", op.State, "done", op.Done)
	}
	return p.afterStart(work, rec, err == nil), nil
}

// cronWindow is the window of cron retries of a start: the poller's, or the
// request's own when shorter (a schedule's, half its period).
func cronWindow(cfg, req time.Duration) time.Duration {
	if req > 0 && req < cfg {
		return req
	}
	return cfg
}

// startedOperation fills in what the API's answer to a start may lack: a
// name (the emulator gives none), the filter and the prefix asked for.
func startedOperation(op Operation, req ExportRequest, clock Clock) Operation {
	if op.Name == "" {
		op.Name = localName(req.Project, req.Database, "local", clock.Now())
	}
	op = carryOver(op, Operation{Database: req.Database, Target: req.Target, SnapshotTime: req.SnapshotTime, Trigger: req.Trigger})
	if len(op.Kinds) == 0 && len(op.Namespaces) == 0 {
		op.Kinds, op.Namespaces = req.Kinds, req.Namespaces
	}
	if op.OutputURLPrefix == "" {
		op.OutputURLPrefix = req.OutputURLPrefix
	}
	return op
}

// create records a started operation through a store outage: the write is
// idempotent, and the export runs whatever happens to the caller.
func (p *Poller) create(ctx context.Context, op Operation) (Record, error) {
	var rec Record
	err := p.mustWrite(ctx, func(ctx context.Context) error {
		var err error
		rec, err = p.cfg.Store.Create(ctx, op, p.cfg.Clock.Now())
		return err
	})
	return rec, err
}

// afterStart reports an export that ended at once, or posts its progress
// message and hands its first poll over. A report or a hand-off that fails
// now is not lost: the record is pending, and the sweep takes it up.
func (p *Poller) afterStart(ctx context.Context, rec Record, recorded bool) StartResult {
	res := StartResult{Status: Started, Record: rec, Recorded: recorded}
	if outcome := Classify(rec.Operation); outcome != OutcomeNone && recorded {
		var err error
		if res.Record, err = p.finish(ctx, rec, outcome); err == nil || res.Record.Outcome != OutcomeNone {
			if err != nil {
				p.cfg.Logger.ErrorContext(ctx, "report pending; handing it to a poller to try again", "operation", rec.Name, "err", err)
				res.Followed = p.retryReport(ctx, res.Record)
			}
			return res
		}
		// Not even the outcome was written: a poller reports it from the
		// record, sooner than the sweep would.
		p.cfg.Logger.ErrorContext(ctx, "outcome not recorded; handing the export over", "operation", rec.Name, "err", err)
	}
	if recorded && p.cfg.Progress != nil {
		res.Record = p.postStarted(ctx, rec)
	}
	if p.cfg.Dispatcher == nil {
		return res
	}
	if err := p.dispatch(ctx, Handoff{Name: rec.Name, Polls: rec.Polls}); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "export started but not handed to a poller; the sweep will resume it",
			"operation", rec.Name, "err", err)
		return res
	}
	res.Followed = true
	return res
}

// existing is the result of a start that started nothing because of the
// export name.
func (p *Poller) existing(ctx context.Context, status StartStatus, name, project string) (StartResult, error) {
	rec, err := p.cfg.Store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		// Started but never recorded: the name is enough to follow it.
		return StartResult{Status: status, Record: Record{Operation: Operation{Name: name, Project: project}}}, nil
	}
	if err != nil {
		return StartResult{}, err
	}
	return StartResult{Status: status, Record: rec}, nil
}

// endStart records the end of a start; a failure only delays the next start
// of the same filter by the reservation, so it is logged, not returned.
func (p *Poller) endStart(ctx context.Context, sreq StartRequest, name string) {
	err := p.persist(ctx, func(ctx context.Context) error { return p.cfg.Store.EndStart(ctx, sreq, name, p.cfg.Clock.Now()) })
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "start not recorded as ended", "operation", name, "err", err)
	}
}

// refused records and reports a start the Admin API refused. The refusal is
// kept like an operation that failed, under a generated name, with the
// google.rpc code the adapter mapped, so that its report is claimed,
// retried and never lost like any other. Only if even the store fails is
// the report sent straight away, once.
func (p *Poller) refused(ctx context.Context, req ExportRequest, startErr error) Record {
	op := Operation{
		Name: localName(req.Project, req.Database, "refused", p.cfg.Clock.Now()), Project: req.Project, Done: true, Refused: true,
		Database: dbOf(req.Database), Target: req.Target, SnapshotTime: req.SnapshotTime,
		OutputURLPrefix: req.OutputURLPrefix, Kinds: req.Kinds, Namespaces: req.Namespaces, Trigger: req.Trigger,
		ErrorCode: refusalCode(startErr), ErrorMessage: startErr.Error(),
	}.Bounded()
	rec, err := p.create(ctx, op)
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "refused export not recorded; reporting it directly", "err", err)
		nctx, cancel := p.stepContext(ctx)
		defer cancel()
		if nerr := p.cfg.Notifier.Notify(nctx, ReportOf(Record{Operation: op, Outcome: OutcomeFailure})); nerr != nil {
			p.cfg.Logger.ErrorContext(ctx, "report of refused export not delivered", "err", nerr)
		}
		return Record{Operation: op, Outcome: OutcomeFailure}
	}
	if rec, err = p.finish(ctx, rec, OutcomeFailure); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "report of refused export pending; handing it to a poller to try again", "operation", rec.Name, "err", err)
		p.retryReport(ctx, rec)
	}
	return rec
}

// retryReport hands an ended export whose report failed to a poller, whose
// queue (or the in-process follower) tries the report again: no poll task
// follows an export that ended at its start, and the sweep may be minutes
// away. It tells whether the hand-off was made.
func (p *Poller) retryReport(ctx context.Context, rec Record) bool {
	if p.cfg.Dispatcher == nil {
		return false
	}
	if err := p.dispatch(ctx, Handoff{Name: rec.Name, Polls: rec.Polls}); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "pending report not handed over; the sweep sends it", "operation", rec.Name, "err", err)
		return false
	}
	return true
}

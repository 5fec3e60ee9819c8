package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dsexport/dsexport/internal/retry"
)

// AdminAPI is the subset of *Admin the poller calls.
type AdminAPI interface {
	Export(ctx context.Context, req ExportRequest) (Operation, error)
	Get(ctx context.Context, name string) (Operation, error)
}

// Config holds the poller's dependencies and its schedule.
type Config struct {
	Admin    AdminAPI
	Store    Store
	Notifier Notifier
	Clock    Clock
	Logger   *slog.Logger
	// Interval is the wait before each GET of the Fixed schedule, and with
	// MaxPolls the wall-clock budget of any schedule.
	Interval time.Duration
	// Schedule decides each wait; nil means Fixed{Interval}.
	Schedule Schedule
	// Wall, when set, bounds the polling of an operation in time from when
	// it was recorded (MaxPolls × Interval for the Adaptive schedule, whose
	// waits differ from Interval); MaxPolls bounds its GETs in any case.
	Wall time.Duration
	// MaxPolls bounds the GETs of one operation, across restarts.
	MaxPolls int
	// RequestTimeout bounds each step of a poll: the GET, the store writes,
	// the report. A stop waits for the step under way, so it is kept short.
	// Zero means 5s.
	RequestTimeout time.Duration
	// ClaimTTL is how long a claim on a report keeps other pollers from
	// sending it; zero means a minute. It must outlast one send.
	ClaimTTL time.Duration
	// LeaseTTL is how long a poller's lease on an operation lasts unless
	// renewed; it is renewed at every poll. Zero means two intervals and a
	// minute, so that a live poller never loses it between two polls.
	LeaseTTL time.Duration
	// ShrinkWarn is the fraction (0.1 for 10%) by which a success may hold
	// fewer entities than the previous success before its report warns.
	ShrinkWarn float64
	// StaleAfter raises the staleness alarm when no export of the project
	// succeeded for this long; zero never raises it.
	StaleAfter time.Duration
	// CronWindow makes a cron start within it of the previous cron start of
	// the same filter a retry of that one (App Engine retries cron).
	CronWindow time.Duration
	// StartsPerMinute caps the export starts of a project (the Admin API
	// takes 20 a minute); zero means no cap.
	StartsPerMinute int
	// StopGrace bounds all the work a poll does after it was told to stop;
	// zero means 8s, inside the 10s App Engine and Cloud Run allow.
	StopGrace time.Duration
	// Progress, when set, follows each export in one message: posted at the
	// start, updated at most every ProgressEvery (zero: a minute), turned
	// into the final report at the end.
	Progress      ProgressNotifier
	ProgressEvery time.Duration
	// OnPoll, when set, is called with the record after each poll (the
	// CLI draws its progress from it).
	OnPoll func(Record)
	// SweepRound is how long one round of the sweep's resumes lasts: within
	// it, sweeps hand an orphan over under the same task name, so they do
	// not pile up tasks; the next round hands it over anew. Zero means 10
	// minutes, cron's sweep period.
	SweepRound time.Duration
}

// Poller starts exports, follows them to their end and reports each once.
type Poller struct {
	cfg Config
}

// New returns a Poller; Clock and Logger default to the system clock and slog's default.
func New(cfg Config) *Poller {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = time.Minute
	}
	if cfg.Schedule == nil {
		cfg.Schedule = Fixed{Every: cfg.Interval}
	}
	if cfg.SweepRound <= 0 {
		cfg.SweepRound = 10 * time.Minute
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Minute
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 8 * time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 2*cfg.Interval + time.Minute
	}
	return &Poller{cfg: cfg}
}

// Start starts an export and records it. An operation that comes back already
// done (the Datastore emulator answers so) is recorded under a generated name
// and reported at once; otherwise the caller hands the name to Poll. A refused
// start is reported with the API's own message and returned as an error.
//
// Once the API is asked, the start is carried through whatever happens to ctx
// (a client that hangs up, a stop): an export that runs must be recorded.
func (p *Poller) Start(ctx context.Context, req ExportRequest) (Record, error) {
	log := p.cfg.Logger.With("project", req.Project, "output_prefix", req.OutputURLPrefix, "trigger", req.Trigger)
	work := context.WithoutCancel(ctx)
	sreq := StartRequest{
		Project: req.Project, FilterKey: FilterKey(req.Project, req.Kinds, req.Namespaces), Trigger: req.Trigger,
		Force: req.Force, CronWindow: p.cfg.CronWindow, PerMinute: p.cfg.StartsPerMinute,
	}
	duplicateOf, err := p.cfg.Store.BeginStart(ctx, sreq, p.cfg.Clock.Now())
	if err != nil {
		return Record{}, err
	}
	if duplicateOf != "" {
		log.InfoContext(ctx, "cron request repeated within its window: nothing started", "operation", duplicateOf)
		rec, err := p.cfg.Store.Get(ctx, duplicateOf)
		if errors.Is(err, ErrNotFound) {
			// Started but never recorded: the name is enough to follow it.
			return Record{Operation: Operation{Name: duplicateOf, Project: req.Project}}, ErrDuplicateStart
		}
		if err != nil {
			return Record{}, err
		}
		return rec, ErrDuplicateStart
	}
	// Once asked, the start is carried through a client that hangs up.
	ectx, cancel := context.WithTimeout(work, 2*p.cfg.RequestTimeout)
	op, err := p.cfg.Admin.Export(ectx, req)
	cancel()
	if err != nil {
		p.endStart(work, sreq, "")
		log.ErrorContext(ctx, "export refused", "err", err)
		return p.refused(work, req, err)
	}
	if op.Name == "" {
		op.Name = localName(req.Project, "local", p.cfg.Clock.Now())
	}
	if len(op.Kinds) == 0 && len(op.Namespaces) == 0 {
		op.Kinds, op.Namespaces = req.Kinds, req.Namespaces
	}
	if op.OutputURLPrefix == "" {
		op.OutputURLPrefix = req.OutputURLPrefix
	}
	var rec Record
	err = retry.Do(work, storeRetry(p.cfg.RequestTimeout), func(ctx context.Context) error {
		sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
		var err error
		rec, err = p.cfg.Store.Create(sctx, op, p.cfg.Clock.Now())
		return err
	}, retryAll)
	p.endStart(work, sreq, op.Name)
	if err != nil {
		// The export runs. Its name is all a poller needs: one that does
		// not find it recorded reads and records it (adopt).
		log.ErrorContext(ctx, "export started but not recorded; handing it over by name", "operation", op.Name, "err", err)
		return Record{Operation: op}, &NotRecordedError{Name: op.Name, Err: err}
	}
	log.InfoContext(ctx, "export started", "operation", op.Name, "state", op.State, "done", op.Done)
	if outcome := Classify(op); outcome == OutcomeNone && p.cfg.Progress != nil {
		rec = p.postStarted(work, rec)
	}
	if outcome := Classify(op); outcome != OutcomeNone {
		// A report that cannot be delivered now stays pending in the store;
		// the export itself started, so the caller is not told otherwise.
		if rec, err = p.finish(work, rec, outcome); err != nil {
			log.ErrorContext(ctx, "report pending", "operation", op.Name, "err", err)
		}
	}
	return rec, nil
}

// ErrDuplicateStart is returned with the record of the export that a
// repeated cron request would have started again.
var ErrDuplicateStart = errors.New("cron request repeated within its window")

// ErrReportPending is wrapped by the error of a report that could not be
// delivered: it stays pending in the store, and the sweep sends it.
var ErrReportPending = errors.New("report pending")

// ErrLeaseHeld is returned by PollFor when another poller holds the
// operation's lease: a duplicate delivery, which does nothing.
var ErrLeaseHeld = errors.New("another poller follows this operation")

// endStart records the end of a start; a failure only delays the next start
// of the same filter by the reservation, so it is logged, not returned.
func (p *Poller) endStart(ctx context.Context, sreq StartRequest, name string) {
	sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	if err := p.cfg.Store.EndStart(sctx, sreq, name, p.cfg.Clock.Now()); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "start not recorded as ended", "operation", name, "err", err)
	}
}

// NotRecordedError is an export that started but could not be recorded;
// the caller hands Name to a poller all the same.
type NotRecordedError struct {
	Name string
	Err  error
}

func (e *NotRecordedError) Error() string {
	return fmt.Sprintf("export %s started but not recorded: %v", e.Name, e.Err)
}
func (e *NotRecordedError) Unwrap() error { return e.Err }

// storeRetry retries a store write that must not be lost a few times, for
// about three step timeouts in all.
func storeRetry(step time.Duration) retry.Policy {
	return retry.Policy{Attempts: 3, Initial: step / 10, Max: step}
}

// retryAll retries any error: the writes it is used for are idempotent.
func retryAll(error) (bool, time.Duration) { return true, 0 }

// StartError is an export the Admin API refused or could not be asked to
// start; nothing was recorded.
type StartError struct{ Err error }

func (e *StartError) Error() string { return e.Err.Error() }
func (e *StartError) Unwrap() error { return e.Err }

// localName names an operation the API returned without one (kind "local")
// or a start it refused (kind "refused").
func localName(project, kind string, now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("projects/%s/operations/%s-%s-%s", project, kind, now.UTC().Format("20060102T150405Z"), hex.EncodeToString(b[:]))
}

// refused records and reports a start the Admin API refused. The refusal is
// kept like an operation that failed, under a generated name, so that its
// report is claimed, retried and never lost like any other. Only if even the
// store fails is the report sent straight away, once.
func (p *Poller) refused(ctx context.Context, req ExportRequest, startErr error) (Record, error) {
	op := Operation{
		Name: localName(req.Project, "refused", p.cfg.Clock.Now()), Project: req.Project, Done: true, Refused: true,
		OutputURLPrefix: req.OutputURLPrefix, Kinds: req.Kinds, Namespaces: req.Namespaces, Trigger: req.Trigger,
		ErrorCode: StatusCode(startErr), ErrorMessage: startErr.Error(),
	}
	sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	rec, err := p.cfg.Store.Create(sctx, op, p.cfg.Clock.Now())
	cancel()
	if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "refused export not recorded; reporting it directly", "err", err)
		nctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
		r := Report{Outcome: OutcomeFailure, Operation: op, StartError: startErr.Error()}
		if nerr := p.cfg.Notifier.Notify(nctx, r); nerr != nil {
			return Record{}, &StartError{Err: errors.Join(startErr, err, nerr)}
		}
		return Record{}, &StartError{Err: startErr}
	}
	if rec, err = p.finish(ctx, rec, OutcomeFailure); err != nil {
		p.cfg.Logger.ErrorContext(ctx, "report of refused export pending", "operation", rec.Name, "err", err)
	}
	return rec, &StartError{Err: startErr}
}

// Poll follows the operation name until it ends or MaxPolls GETs were made,
// then reports it. It continues from the poll count in the store, so a
// restarted poller does not start its budget over, and it is safe to call for
// an operation that has already been reported: it returns at once.
//
// An operation dsexport did not start (gcloud, the console) is read first and
// recorded only if it exists; a name the API does not know is an error
// wrapping the API's 404, and nothing is written.
func (p *Poller) Poll(ctx context.Context, name string) (Record, error) {
	return p.PollFor(ctx, name, 0)
}

// ErrBudgetSpent is returned by PollFor when its budget ran out before the
// operation ended; the caller hands the operation to a continuation.
var ErrBudgetSpent = errors.New("poll budget for this request spent")

// PollFor is Poll that works at most budget (no limit when 0): when the next
// wait would end past it, PollFor returns the record and ErrBudgetSpent. The
// poll count stays in the store, so MaxPolls still bounds the operation
// across every continuation.
func (p *Poller) PollFor(ctx context.Context, name string, budget time.Duration) (Record, error) {
	if _, err := ParseName(name); err != nil {
		return Record{}, err
	}
	log := p.cfg.Logger.With("operation", name)
	// A stop (ctx ending: SIGTERM, a request's end) is honoured only between
	// polls. A GET that was made is recorded, and a report that was sent is
	// marked, so the work is never left half done; each step is bounded by
	// RequestTimeout, and all the steps after a stop by StopGrace, so that
	// the process still exits in time.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopGrace := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.StopGrace, cancelWork)
		context.AfterFunc(work, func() { t.Stop() })
	})
	defer stopGrace()
	rec, err := p.cfg.Store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		rec, err = p.adopt(ctx, name)
	}
	if err != nil {
		return Record{}, fmt.Errorf("poll %s: %w", name, err)
	}
	if o := Classify(rec.Operation); rec.Outcome == OutcomeNone && o != OutcomeNone {
		// Already done when recorded (a done-at-once export, a refused
		// start) and its outcome not yet written: the record says it all,
		// and its name may be one the API has never heard of.
		return p.finish(work, rec, o)
	}
	if rec.Outcome == OutcomeNone {
		holder := newHolder()
		lctx, cancel := context.WithTimeout(work, p.cfg.RequestTimeout)
		leased, ok, err := p.cfg.Store.AcquireLease(lctx, name, holder, p.cfg.Clock.Now(), p.cfg.LeaseTTL)
		cancel()
		if err != nil {
			return rec, fmt.Errorf("lease %s: %w", name, err)
		}
		if !ok {
			log.InfoContext(ctx, "another poller holds the lease; nothing to do", "holder", leased.LeaseHolder, "until", leased.LeaseExpires)
			return leased, ErrLeaseHeld
		}
		rec = leased
		// Whatever ends this call (the end, the budget, a stop) gives the
		// operation up at once, so a continuation or the sweep can take it.
		defer func() {
			rctx, cancel := context.WithTimeout(work, p.cfg.RequestTimeout)
			defer cancel()
			if err := p.cfg.Store.ReleaseLease(rctx, name, holder, p.cfg.Clock.Now()); err != nil {
				log.WarnContext(ctx, "lease not released; it expires by itself", "err", err)
			}
		}()
		ctx = context.WithValue(ctx, holderKey{}, holder)
	}
	// The budget counts from here, after the reads above, and is checked
	// only once this call has polled: a slice that made no poll would hand
	// over under its own task's name, which the queue would take for a
	// duplicate.
	deadline, polled := p.cfg.Clock.Now().Add(budget), false
	var lastProgress time.Time
	// What the schedule goes by: the readings of this call, from the latest
	// one stored (a continuation starts where its predecessor stopped).
	start := rec.StartTime
	if start.IsZero() {
		start = rec.Created
	}
	seen := []Observation{ObservationOf(rec.Operation, rec.Updated)}
	for rec.Outcome == OutcomeNone {
		now := p.cfg.Clock.Now()
		wallEnd := rec.Created.Add(p.cfg.Wall)
		if rec.Polls >= p.cfg.MaxPolls || (p.cfg.Wall > 0 && !now.Before(wallEnd)) {
			log.WarnContext(ctx, "still running after the polling budget", "polls", rec.Polls)
			return p.finish(work, rec, OutcomeTimeout)
		}
		wait := p.cfg.Schedule.Next(start, seen, now, p.cfg.MaxPolls-rec.Polls)
		if p.cfg.Wall > 0 && now.Add(wait).After(wallEnd) {
			// The last poll comes when the wall-clock budget ends.
			wait = wallEnd.Sub(now)
		}
		if budget > 0 && polled && now.Add(wait).After(deadline) {
			log.InfoContext(ctx, "poll budget spent; handing over to a continuation", "polls", rec.Polls, "budget", budget)
			return rec, ErrBudgetSpent
		}
		if budget > 0 && now.Add(wait).After(deadline) {
			// The first wait of a slice never passes its budget.
			wait = max(0, deadline.Sub(now))
		}
		// A stop that came during the last step wins over a tick that is
		// also ready: select would pick between them at random.
		if ctx.Err() == nil {
			select {
			case <-ctx.Done():
			case <-p.cfg.Clock.After(wait):
			}
		}
		if ctx.Err() != nil {
			log.InfoContext(ctx, "polling stopped; the operation is left for the next poller", "polls", rec.Polls)
			return rec, ctx.Err()
		}
		holder, _ := ctx.Value(holderKey{}).(string)
		lctx, cancel := context.WithTimeout(work, p.cfg.RequestTimeout)
		err = p.cfg.Store.RenewLease(lctx, name, holder, p.cfg.Clock.Now(), p.cfg.LeaseTTL)
		cancel()
		if errors.Is(err, ErrLeaseLost) {
			log.WarnContext(ctx, "lease taken over by another poller; stopping")
			return rec, ErrLeaseHeld
		}
		if err != nil {
			// The lease still runs until it expires; the poll may go on.
			log.WarnContext(ctx, "lease not renewed", "err", err)
		}
		rec, err = p.pollOnce(work, rec)
		if err != nil {
			return rec, err
		}
		polled = true
		seen = append(seen, ObservationOf(rec.Operation, p.cfg.Clock.Now()))
		p.progress(work, rec, &lastProgress)
	}
	if rec.Reported() {
		return rec, nil
	}
	return p.finish(work, rec, rec.Outcome)
}

// holderKey carries the lease holder of a PollFor call in its context.
type holderKey struct{}

// newHolder names one PollFor call as a lease holder.
func newHolder() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// adopt records an operation that was not started by dsexport, after reading
// it: nothing is written for a name the API does not know.
func (p *Poller) adopt(ctx context.Context, name string) (Record, error) {
	gctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	op, err := p.cfg.Admin.Get(gctx, name)
	cancel()
	if err != nil {
		return Record{}, err
	}
	if op.Name == "" {
		op.Name = name
	}
	p.cfg.Logger.InfoContext(ctx, "following an operation dsexport did not start", "operation", name, "state", op.State)
	return p.cfg.Store.Create(context.WithoutCancel(ctx), op, p.cfg.Clock.Now())
}

// pollOnce makes one GET and records it. A failed GET counts as a poll, so an
// API that stays unreachable (or refuses, as a 403 does while IAM changes
// settle) still ends in a timeout report within the budget. Only a 404 ends
// polling early: the operation is gone, and the report says so.
func (p *Poller) pollOnce(ctx context.Context, rec Record) (Record, error) {
	log := p.cfg.Logger.With("operation", rec.Name)
	getCtx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	op, getErr := p.cfg.Admin.Get(getCtx, rec.Name)
	cancel()
	now := p.cfg.Clock.Now()
	sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	if getErr != nil {
		next, err := p.cfg.Store.CountPoll(sctx, rec.Name, getErr.Error(), now)
		if err != nil {
			return rec, fmt.Errorf("count poll of %s: %w", rec.Name, err)
		}
		switch {
		case StatusCode(getErr) == http.StatusNotFound:
			log.ErrorContext(ctx, "operation no longer exists", "poll", next.Polls, "err", getErr)
			return p.setOutcome(ctx, next, OutcomeUnexpected)
		case IsTransient(getErr):
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
	next, err := p.cfg.Store.AddSnapshot(sctx, rec.Name, op, now)
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

func (p *Poller) setOutcome(ctx context.Context, rec Record, outcome Outcome) (Record, error) {
	sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	next, err := p.cfg.Store.SetOutcome(sctx, rec.Name, outcome, p.cfg.Clock.Now())
	if err != nil {
		return rec, fmt.Errorf("record outcome of %s: %w", rec.Name, err)
	}
	return next, nil
}

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
	cctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
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
	nctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	err = p.cfg.Notifier.Notify(nctx, report)
	cancel()
	if err != nil {
		log.ErrorContext(ctx, "report not delivered", "err", err)
		rctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
		if rerr := p.cfg.Store.ReleaseReport(rctx, rec.Name, p.cfg.Clock.Now()); rerr != nil {
			log.ErrorContext(ctx, "report claim not released; it expires by itself", "err", rerr)
		}
		return rec, fmt.Errorf("report %s: %w: %w", rec.Name, ErrReportPending, err)
	}
	// The report is out: marking it sent must not be cut short by a stop,
	// or a later sweep would send it again. It is retried, outside
	// StopGrace, each try bounded by RequestTimeout.
	now := p.cfg.Clock.Now()
	err = retry.Do(context.WithoutCancel(ctx), storeRetry(p.cfg.RequestTimeout), func(ctx context.Context) error {
		mctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
		defer cancel()
		return p.cfg.Store.MarkReported(mctx, rec.Name, now)
	}, retryAll)
	if err != nil {
		return rec, fmt.Errorf("mark %s reported: %w", rec.Name, err)
	}
	rec.ReportedAt = now
	log.InfoContext(ctx, "reported", "polls", rec.Polls)
	return rec, nil
}

// recordSuccess makes rec its filter's latest success and compares it with
// the previous one: a shrink beyond ShrinkWarn is returned for the report.
// A store failure costs only the comparison, never the report.
func (p *Poller) recordSuccess(ctx context.Context, rec Record) *Shrink {
	sctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	prev, ok, err := p.cfg.Store.RecordSuccess(sctx, rec, p.cfg.Clock.Now())
	if err != nil && ok {
		// The comparison stands; only the staleness record lags behind.
		p.cfg.Logger.WarnContext(ctx, "success not recorded in the project's health", "operation", rec.Name, "err", err)
	} else if err != nil {
		p.cfg.Logger.ErrorContext(ctx, "success not recorded; no shrink check", "operation", rec.Name, "err", err)
		return nil
	}
	if !ok || p.cfg.ShrinkWarn <= 0 {
		return nil
	}
	sh := Shrink{PreviousName: prev.Name, PreviousEntities: prev.Entities, Entities: rec.EntitiesCompleted}
	if float64(sh.Entities) < float64(sh.PreviousEntities)*(1-p.cfg.ShrinkWarn) {
		p.cfg.Logger.WarnContext(ctx, "export shrank", "operation", rec.Name, "entities", sh.Entities,
			"previous", prev.Name, "previous_entities", prev.Entities)
		return &sh
	}
	return nil
}

// postStarted posts the message that will follow the export, and records
// where it is. Progress is a courtesy: a failure is logged, and the final
// report then comes as a message of its own.
func (p *Poller) postStarted(ctx context.Context, rec Record) Record {
	nctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
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
	nctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	defer cancel()
	if err := p.cfg.Progress.Progress(nctx, rec.Message, Report{Operation: rec.Operation, Polls: rec.Polls}); err != nil {
		p.cfg.Logger.WarnContext(ctx, "progress message not updated", "operation", rec.Name, "err", err)
	}
}

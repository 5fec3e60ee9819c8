package poller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
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
	// Interval is the wait before each GET.
	Interval time.Duration
	// MaxPolls bounds the GETs of one operation, across restarts.
	MaxPolls int
	// RequestTimeout bounds one GET, store write or report; zero means 30s.
	RequestTimeout time.Duration
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
		cfg.RequestTimeout = 30 * time.Second
	}
	return &Poller{cfg: cfg}
}

// Start starts an export and records it. An operation that comes back already
// done (the Datastore emulator answers so) is recorded under a generated name
// and reported at once; otherwise the caller hands the name to Poll. A refused
// start is reported with the API's own message and returned as an error.
func (p *Poller) Start(ctx context.Context, req ExportRequest) (Record, error) {
	log := p.cfg.Logger.With("project", req.Project, "output_prefix", req.OutputURLPrefix, "trigger", req.Trigger)
	op, err := p.cfg.Admin.Export(ctx, req)
	if err != nil {
		log.Error("export refused", "err", err)
		r := Report{
			Outcome: OutcomeFailure,
			Operation: Operation{
				Project: req.Project, OutputURLPrefix: req.OutputURLPrefix,
				Kinds: req.Kinds, Namespaces: req.Namespaces, Trigger: req.Trigger,
			},
			StartError: err.Error(),
		}
		if nerr := p.cfg.Notifier.Notify(ctx, r); nerr != nil {
			log.Error("report of refused export not delivered", "err", nerr)
			return Record{}, errors.Join(err, nerr)
		}
		return Record{}, err
	}
	if op.Name == "" {
		op.Name = localName(req.Project, p.cfg.Clock.Now())
	}
	if len(op.Kinds) == 0 && len(op.Namespaces) == 0 {
		op.Kinds, op.Namespaces = req.Kinds, req.Namespaces
	}
	if op.OutputURLPrefix == "" {
		op.OutputURLPrefix = req.OutputURLPrefix
	}
	rec, err := p.cfg.Store.Create(ctx, op, p.cfg.Clock.Now())
	if err != nil {
		return Record{}, fmt.Errorf("record export %s: %w", op.Name, err)
	}
	log.Info("export started", "operation", op.Name, "state", op.State, "done", op.Done)
	if outcome := Classify(op); outcome != OutcomeNone {
		return p.finish(ctx, rec, outcome)
	}
	return rec, nil
}

// localName names an operation the API returned without one.
func localName(project string, now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("projects/%s/operations/local-%s-%s", project, now.UTC().Format("20060102T150405Z"), hex.EncodeToString(b[:]))
}

// Poll follows the operation name until it ends or MaxPolls GETs were made,
// then reports it. It continues from the poll count in the store, so a
// restarted poller does not start its budget over, and it is safe to call for
// an operation that has already been reported: it returns at once.
func (p *Poller) Poll(ctx context.Context, name string) (Record, error) {
	project, err := ParseName(name)
	if err != nil {
		return Record{}, err
	}
	log := p.cfg.Logger.With("operation", name)
	rec, err := p.cfg.Store.Get(ctx, name)
	if errors.Is(err, ErrNotFound) {
		// An operation started elsewhere (gcloud, the console) can be followed too.
		rec, err = p.cfg.Store.Create(ctx, Operation{Name: name, Project: project}, p.cfg.Clock.Now())
	}
	if err != nil {
		return Record{}, fmt.Errorf("poll %s: %w", name, err)
	}
	// A stop (ctx ending: SIGTERM, a request's end) is honoured only between
	// polls. A GET that was made is recorded, and a report that was sent is
	// marked, so the work is never left half done; each step is bounded by
	// RequestTimeout instead.
	work := context.WithoutCancel(ctx)
	for rec.Outcome == OutcomeNone {
		if rec.Polls >= p.cfg.MaxPolls {
			log.Warn("still running after the polling budget", "polls", rec.Polls)
			return p.finish(work, rec, OutcomeTimeout)
		}
		select {
		case <-ctx.Done():
			log.Info("polling stopped; the operation is left for the next poller", "polls", rec.Polls)
			return rec, ctx.Err()
		case <-p.cfg.Clock.After(p.cfg.Interval):
		}
		rec, err = p.pollOnce(work, rec)
		if err != nil {
			return rec, err
		}
	}
	if rec.Reported() {
		return rec, nil
	}
	return p.finish(work, rec, rec.Outcome)
}

// pollOnce makes one GET and records it. A transient failure is logged and
// counted as a poll, so an API that stays down still ends in a timeout report;
// a final one (404, 403) ends the operation as unexpected.
func (p *Poller) pollOnce(ctx context.Context, rec Record) (Record, error) {
	log := p.cfg.Logger.With("operation", rec.Name)
	getCtx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	op, getErr := p.cfg.Admin.Get(getCtx, rec.Name)
	cancel()
	now := p.cfg.Clock.Now()
	if getErr != nil {
		if IsTransient(getErr) {
			next, err := p.cfg.Store.CountPoll(ctx, rec.Name, now)
			if err != nil {
				return rec, fmt.Errorf("count poll of %s: %w", rec.Name, err)
			}
			log.Warn("poll failed, trying again next tick", "poll", next.Polls, "err", getErr)
			return next, nil
		}
		log.Error("poll refused", "err", getErr)
		// The refusal is kept as the latest snapshot, with the last progress
		// seen, so a report sent later still says what went wrong.
		op = rec.Operation
		op.State = StateUnspecified
		op.ErrorMessage = "cannot read the operation: " + getErr.Error()
		next, err := p.cfg.Store.AddSnapshot(ctx, rec.Name, op, now)
		if err != nil {
			return rec, fmt.Errorf("store snapshot of %s: %w", rec.Name, err)
		}
		return p.setOutcome(ctx, next, OutcomeUnexpected)
	}
	if op.Trigger == "" {
		// Operations started before labels were sent carry none.
		op.Trigger = rec.Trigger
	}
	next, err := p.cfg.Store.AddSnapshot(ctx, rec.Name, op, now)
	if err != nil {
		return rec, fmt.Errorf("store snapshot of %s: %w", rec.Name, err)
	}
	log.Info("polled", "poll", next.Polls, "state", op.State, "done", op.Done,
		"entities", op.EntitiesCompleted, "bytes", op.BytesCompleted)
	if outcome := Classify(op); outcome != OutcomeNone {
		return p.setOutcome(ctx, next, outcome)
	}
	return next, nil
}

func (p *Poller) setOutcome(ctx context.Context, rec Record, outcome Outcome) (Record, error) {
	next, err := p.cfg.Store.SetOutcome(ctx, rec.Name, outcome, p.cfg.Clock.Now())
	if err != nil {
		return rec, fmt.Errorf("record outcome of %s: %w", rec.Name, err)
	}
	return next, nil
}

// finish records the outcome if needed and delivers the report once.
func (p *Poller) finish(ctx context.Context, rec Record, outcome Outcome) (Record, error) {
	var err error
	if rec.Outcome != outcome {
		if rec, err = p.setOutcome(ctx, rec, outcome); err != nil {
			return rec, err
		}
	}
	if rec.Reported() {
		return rec, nil
	}
	report := Report{Outcome: outcome, Operation: rec.Operation, Polls: rec.Polls}
	nctx, cancel := context.WithTimeout(ctx, p.cfg.RequestTimeout)
	err = p.cfg.Notifier.Notify(nctx, report)
	cancel()
	if err != nil {
		p.cfg.Logger.Error("report not delivered", "operation", rec.Name, "outcome", outcome, "err", err)
		return rec, fmt.Errorf("report %s: %w", rec.Name, err)
	}
	now := p.cfg.Clock.Now()
	if err := p.cfg.Store.MarkReported(ctx, rec.Name, now); err != nil {
		return rec, fmt.Errorf("mark %s reported: %w", rec.Name, err)
	}
	rec.ReportedAt = now
	p.cfg.Logger.Info("reported", "operation", rec.Name, "outcome", outcome, "polls", rec.Polls)
	return rec, nil
}

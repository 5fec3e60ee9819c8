package poller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
)

// Handoff is one hand-off of an operation to a poller: after Polls polls,
// and, when the sweep resumes it (Resume), in the sweep's Round. A task
// queue names its task after it, so a repeated hand-off is deduplicated
// while a continuation, made after more polls, or a resume in a later round
// is not.
type Handoff struct {
	Name   string
	Polls  int
	Resume bool
	Round  int64
}

// Dispatcher hands an operation to a poller that calls Poll for it: a task
// queue (tasks.Dispatcher) or this process (Inline). The poller is its only
// caller: Start hands over the first poll, Poll its continuation, Sweep the
// operations whose poller vanished.
type Dispatcher interface {
	Dispatch(ctx context.Context, h Handoff) error
}

// errNoDispatcher is returned when a hand-off is needed and no Dispatcher
// was configured.
var errNoDispatcher = errors.New("no dispatcher configured to hand the operation to")

// dispatch hands h over through the configured Dispatcher.
func (p *Poller) dispatch(ctx context.Context, h Handoff) error {
	if p.cfg.Dispatcher == nil {
		return errNoDispatcher
	}
	dctx, cancel := context.WithTimeout(ctx, 2*p.cfg.RequestTimeout)
	defer cancel()
	return p.cfg.Dispatcher.Dispatch(dctx, h)
}

// Inline is the in-process hand-off: it follows each dispatched operation in
// a goroutine of this process. It is for local runs only; on App Engine and
// Cloud Run work after a response dies or starves, so there the hand-off
// goes through a task queue. Give it to New as the Dispatcher; New binds it
// to the poller it builds.
type Inline struct {
	ctx context.Context
	log *slog.Logger
	wg  sync.WaitGroup
	p   *Poller
}

// NewInline returns an Inline whose polls run under ctx (the process's
// lifetime, not a request's).
func NewInline(ctx context.Context, log *slog.Logger) *Inline {
	if log == nil {
		log = slog.Default()
	}
	return &Inline{ctx: ctx, log: log}
}

// Dispatch starts following h in the background and returns at once.
func (d *Inline) Dispatch(_ context.Context, h Handoff) error {
	if d.p == nil {
		return errors.New("inline dispatcher not bound to a poller: pass it to poller.New")
	}
	d.Go(func(ctx context.Context) { d.follow(ctx, h.Name) })
	return nil
}

// follow polls name until it ends. A queue would deliver a failed poll
// again; in process, this loop does, with a growing pause, until the poll
// ends or the process does. A report that could not be sent is left to the
// sweep, which a serve without a queue runs every DSEXPORT_SWEEP_EVERY.
func (d *Inline) follow(ctx context.Context, name string) {
	pause := time.Second
	for {
		_, err := d.p.Poll(ctx, name)
		switch {
		case err == nil, ctx.Err() != nil:
			return
		case errors.Is(err, ErrReportPending):
			d.log.Error("inline poll: report pending for the sweep", "operation", name, "err", err)
			return
		case errors.Is(err, ErrOperationGone):
			d.log.Error("inline poll: the operation does not exist", "operation", name, "err", err)
			return
		}
		d.log.Error("inline poll failed; trying again", "operation", name, "err", err, "pause", pause)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Minute)
	}
}

// Go runs f in the background under the process's context, as a dispatched
// poll runs, so that Wait also waits for it.
func (d *Inline) Go(f func(ctx context.Context)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f(d.ctx)
	}()
}

// Wait blocks until every dispatched poll has returned.
func (d *Inline) Wait() { d.wg.Wait() }

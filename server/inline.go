package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// Inline is the in-process hand-off: it polls each dispatched operation in a
// goroutine of this process. It is for local runs and the CLI only; on App
// Engine and Cloud Run work after a response dies or starves, so there the
// hand-off goes through a task queue.
type Inline struct {
	ctx    context.Context
	poller Poller
	log    *slog.Logger
	wg     sync.WaitGroup
}

// NewInline returns an Inline whose polls run under ctx (the process's
// lifetime, not a request's).
func NewInline(ctx context.Context, p Poller, log *slog.Logger) *Inline {
	return &Inline{ctx: ctx, poller: p, log: log}
}

// Dispatch starts polling name in the background and returns at once. An
// in-process poll has no request to bound, so it runs to the end.
func (d *Inline) Dispatch(_ context.Context, name, _ string) error {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		// A queue would deliver a failed poll again; in process, this loop
		// does, with a growing pause, until the poll ends or the process does.
		pause := time.Second
		for {
			_, err := d.poller.PollFor(d.ctx, name, 0)
			switch {
			case err == nil, errors.Is(err, poller.ErrLeaseHeld), d.ctx.Err() != nil:
				return
			case errors.Is(err, poller.ErrReportPending):
				// The export ended; its report is the sweep's to retry.
				d.log.Error("inline poll: report pending for the sweep", "operation", name, "err", err)
				return
			case poller.StatusCode(err) == http.StatusNotFound:
				d.log.Error("inline poll: the operation does not exist", "operation", name, "err", err)
				return
			}
			d.log.Error("inline poll failed; trying again", "operation", name, "err", err, "pause", pause)
			select {
			case <-d.ctx.Done():
				return
			case <-time.After(pause):
			}
			pause = min(2*pause, time.Minute)
		}
	}()
	return nil
}

// Wait blocks until every dispatched poll has returned.
func (d *Inline) Wait() { d.wg.Wait() }

// Go runs f in the background under the process's context, as a dispatched
// poll runs, so that Wait also waits for it.
func (d *Inline) Go(f func(ctx context.Context)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		f(d.ctx)
	}()
}

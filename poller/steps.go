package poller

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/dsexport/dsexport/internal/retry"
)

// This file holds what makes the poller's store steps safe to repeat: the
// names its claims and leases carry, and the retries that carry a step
// through a store that answers late or not at all.
//
// A store step may commit and still fail for its caller: its deadline passed
// while the answer was on its way. Every step is therefore idempotent for
// its caller: claims, leases and reservations name their holder, and a
// holder that finds its own claim goes on; a poll carries its number, and a
// poll counted already changes nothing. An ambiguous step is resolved by
// making it again, which reads the store back inside the same transaction,
// never by giving up.

// stepFinal tells whether err is one a retry of the step cannot change.
func stepFinal(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrLeaseLost) ||
		errors.Is(err, ErrStartInProgress) || errors.Is(err, ErrRateLimited)
}

// persist runs an idempotent store step until it succeeds, each try bounded
// by RequestTimeout, for up to StorePatience: a store that is slow, locked
// or gone for a while holds the step up, it does not lose it. It stops
// early when ctx ends or the error is one a retry cannot change.
func (p *Poller) persist(ctx context.Context, step func(ctx context.Context) error) error {
	return p.persistFor(ctx, p.cfg.StorePatience, step)
}

// persistFor is persist for up to patience.
func (p *Poller) persistFor(ctx context.Context, patience time.Duration, step func(ctx context.Context) error) error {
	pctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	policy := retry.Policy{Attempts: 1 << 30, Initial: p.cfg.RequestTimeout / 20, Max: p.cfg.RequestTimeout}
	return retry.Do(pctx, policy, func(ctx context.Context) error {
		sctx, cancel := p.stepContext(ctx)
		defer cancel()
		return step(sctx)
	}, func(err error) (bool, time.Duration) { return !stepFinal(err), 0 })
}

// markPatience is how long marking a sent report is retried: within the
// claim that keeps other pollers from sending it (the send took up to a
// RequestTimeout of it, and a commit may answer a few seconds late).
func (p *Poller) markPatience() time.Duration {
	return max(p.cfg.RequestTimeout, min(p.cfg.StorePatience, p.cfg.ClaimTTL-3*p.cfg.RequestTimeout))
}

// mustWrite is persist through a stop: for a write that must not be lost
// once its cause happened (a report sent must be marked sent).
func (p *Poller) mustWrite(ctx context.Context, write func(ctx context.Context) error) error {
	return p.persist(context.WithoutCancel(ctx), write)
}

// holders names the Poll calls of this process as lease holders. One call
// per operation runs at a time in a process (a second, a duplicate
// delivery, finds the operation held), and a call that could not give its
// lease up leaves its name behind: the next call of this process for the
// operation, a retry, takes the lease as its own instead of waiting for it
// to expire.
type holders struct {
	mu sync.Mutex
	// byName holds the operations polled now (active) or whose lease was
	// not released.
	byName map[string]*holding
}

type holding struct {
	holder string
	active bool
}

// take returns the holder name of a new Poll call of name, false while
// another call of this process polls it.
func (h *holders) take(name string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byName == nil {
		h.byName = map[string]*holding{}
	}
	hd, ok := h.byName[name]
	if !ok {
		hd = &holding{holder: newHolder()}
		h.byName[name] = hd
	}
	if hd.active {
		return "", false
	}
	hd.active = true
	return hd.holder, true
}

// forget drops the holder name left behind for name, unless a call of this
// process polls it now.
func (h *holders) forget(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hd, ok := h.byName[name]; ok && !hd.active {
		delete(h.byName, name)
	}
}

// done ends the call that took name; released tells whether it holds no
// lease any more, so that its name can be forgotten.
func (h *holders) done(name string, released bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hd, ok := h.byName[name]; ok {
		hd.active = false
		if released {
			delete(h.byName, name)
		}
	}
}

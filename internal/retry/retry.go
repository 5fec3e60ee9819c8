// Package retry calls an operation again after transient failures, with
// exponential backoff and full jitter, inside the caller's context deadline.
package retry

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Policy says how often and how patiently to try. The zero Policy tries once.
type Policy struct {
	// Attempts is the number of tries, the first included; less than 1 means 1.
	Attempts int
	// Initial is the backoff before the second try; each later backoff is
	// Multiplier times the previous one, up to Max. The wait itself is drawn
	// uniformly from [0, backoff) ("full jitter"), so that clients failing
	// together do not come back together.
	Initial, Max time.Duration
	// Multiplier is the growth of the backoff; 1 or less means 2.
	Multiplier float64

	// Sleep waits d, or until ctx is done and then returns ctx's error.
	// Nil means a timer; tests record the waits instead of sleeping.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock the next wait is checked against ctx's deadline with.
	// Nil means time.Now.
	Now func() time.Time
	// Jitter draws a wait from [0, backoff) for backoff > 0. Nil means a
	// uniform draw from math/rand/v2's generator, which is safe for
	// concurrent use; tests pin it to check the bounds.
	Jitter func(backoff time.Duration) time.Duration
}

// Classify tells whether a failed try may succeed if made again and, when the
// peer said so (Retry-After), how long to wait at least before it.
type Classify func(err error) (retry bool, after time.Duration)

// Do calls op until it succeeds, classify says its error is final, the
// attempts are used up, ctx is done, or the next wait would end after ctx's
// deadline: the caller's deadline bounds the whole call, so Do gives up with
// time left rather than start a try that cannot finish. op gets ctx as is.
//
// Do returns nil or op's last error. A final error is returned as is; a
// transient one Do gave up on is wrapped with why, and also wraps ctx's error
// when ctx ended the retries, so errors.Is and errors.As see both.
func Do(ctx context.Context, p Policy, op func(ctx context.Context) error, classify Classify) error {
	attempts := max(p.Attempts, 1)
	mult := p.Multiplier
	if mult <= 1 {
		mult = 2
	}
	sleep, now, jitter := p.Sleep, p.Now, p.Jitter
	if sleep == nil {
		sleep = timerSleep
	}
	if now == nil {
		now = time.Now
	}
	if jitter == nil {
		jitter = uniform
	}
	backoff := p.Initial
	if p.Max > 0 {
		backoff = min(backoff, p.Max)
	}
	var last error
	for attempt := 1; ; attempt++ {
		if cerr := ctx.Err(); cerr != nil {
			// A done context would only fail the try, so none is made.
			if last == nil {
				return cerr
			}
			return fmt.Errorf("%w (tried %d of %d times; stopped: %w)", last, attempt-1, attempts, cerr)
		}
		err := op(ctx)
		last = err
		if err == nil {
			return nil
		}
		again, after := classify(err)
		if !again {
			return err
		}
		if cerr := ctx.Err(); cerr != nil {
			return fmt.Errorf("%w (tried %d of %d times; stopped: %w)", err, attempt, attempts, cerr)
		}
		if attempt >= attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		var wait time.Duration
		if backoff > 0 {
			wait = min(jitter(backoff), backoff)
		}
		// The peer knows its load better than our schedule does.
		wait = max(wait, after, 0)
		if dl, ok := ctx.Deadline(); ok && now().Add(wait).After(dl) {
			return fmt.Errorf("%w (tried %d of %d times; a wait of %v would pass the deadline)", err, attempt, attempts, wait)
		}
		if serr := sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (tried %d of %d times; stopped: %w)", err, attempt, attempts, serr)
		}
		backoff = grow(backoff, mult, p.Max)
	}
}

// grow is the next backoff: b times mult, at most limit when limit is
// positive, and never overflowing.
func grow(b time.Duration, mult float64, limit time.Duration) time.Duration {
	next := float64(b) * mult
	if limit > 0 && next > float64(limit) {
		return limit
	}
	if next >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(next)
}

// timerSleep waits d unless ctx ends first.
func timerSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// uniform draws from [0, backoff).
func uniform(backoff time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(backoff)))
}

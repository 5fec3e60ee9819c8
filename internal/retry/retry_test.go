package retry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/retry"
)

var (
	errTransient = errors.New("transient")
	errFinal     = errors.New("final")
)

// clock is a virtual clock whose Sleep moves time on and records the waits.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

func newClock() *clock { return &clock{now: time.Date(2026, 11, 23, 3, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// policy is a policy on c whose jitter always picks the longest wait, so
// waits are predictable.
func policy(c *clock, attempts int) retry.Policy {
	return retry.Policy{
		Attempts: attempts, Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2,
		Sleep: c.Sleep, Now: c.Now,
		Jitter: func(b time.Duration) time.Duration { return b - 1 },
	}
}

// failing returns an op that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(calls *int, errs ...error) func(context.Context) error {
	return func(context.Context) error {
		*calls++
		if *calls <= len(errs) {
			return errs[*calls-1]
		}
		return nil
	}
}

// classify retries errTransient and nothing else; after is its Retry-After.
func classify(after time.Duration) retry.Classify {
	return func(err error) (bool, time.Duration) { return errors.Is(err, errTransient), after }
}

func TestSucceedsAfterTransientFailures(t *testing.T) {
	c := newClock()
	calls := 0
	err := retry.Do(t.Context(), policy(c, 3), failing(&calls, errTransient, errTransient), classify(0))
	if err != nil {
		t.Fatalf("Do = %v; want nil", err)
	}
	if got, want := calls, 3; got != want {
		t.Errorf("calls = %d; want %d", got, want)
	}
	want := []time.Duration{100*time.Millisecond - 1, 200*time.Millisecond - 1}
	if got := c.Waits(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v; want %v", got, want)
	}
}

func TestStopsAfterAttempts(t *testing.T) {
	c := newClock()
	calls := 0
	err := retry.Do(t.Context(), policy(c, 4), failing(&calls, errTransient, errTransient, errTransient, errTransient, errTransient), classify(0))
	if !errors.Is(err, errTransient) {
		t.Fatalf("Do = %v; want the transient error wrapped", err)
	}
	if got, want := calls, 4; got != want {
		t.Errorf("calls = %d; want %d", got, want)
	}
	// The backoff doubles up to Max: 100ms, 200ms, 400ms.
	if got, want := len(c.Waits()), 3; got != want {
		t.Errorf("waited %d times (%v); want %d", got, c.Waits(), want)
	}
}

func TestBackoffCappedAtMax(t *testing.T) {
	c := newClock()
	calls := 0
	errs := make([]error, 8)
	for i := range errs {
		errs[i] = errTransient
	}
	if err := retry.Do(t.Context(), policy(c, 8), failing(&calls, errs...), classify(0)); err == nil {
		t.Fatal("Do succeeded; want an error")
	}
	for i, w := range c.Waits() {
		if w >= time.Second {
			t.Errorf("wait %d = %v; want less than Max (1s)", i, w)
		}
	}
}

func TestNoRetryOnFinalError(t *testing.T) {
	c := newClock()
	calls := 0
	err := retry.Do(t.Context(), policy(c, 5), failing(&calls, errFinal), classify(0))
	if err != errFinal {
		t.Fatalf("Do = %v; want errFinal as is", err)
	}
	if got, want := calls, 1; got != want {
		t.Errorf("calls = %d; want %d", got, want)
	}
	if got := c.Waits(); len(got) != 0 {
		t.Errorf("waits = %v; want none", got)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	c := newClock()
	calls := 0
	err := retry.Do(t.Context(), policy(c, 3), failing(&calls, errTransient), classify(7*time.Second))
	if err != nil {
		t.Fatalf("Do = %v; want nil", err)
	}
	if got, want := c.Waits(), []time.Duration{7 * time.Second}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("waits = %v; want %v (Retry-After beats the shorter backoff)", got, want)
	}
}

func TestNeverWaitsPastDeadline(t *testing.T) {
	tests := []struct {
		name     string
		timeout  time.Duration
		after    time.Duration
		calls    int
		waits    int
		contains string
	}{
		// 100ms then 200ms fit in 350ms; the third wait (400ms) would not.
		{"backoff", 350 * time.Millisecond, 0, 3, 2, "would pass the deadline"},
		{"Retry-After beyond the deadline", 5 * time.Second, 30 * time.Second, 1, 0, "a wait of 30s would pass the deadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			// The context's deadline is on the real clock; set the virtual one
			// to the real now so that the two agree.
			c.now = time.Now()
			ctx, cancel := context.WithDeadline(t.Context(), c.now.Add(tt.timeout))
			defer cancel()
			calls := 0
			errs := []error{errTransient, errTransient, errTransient, errTransient, errTransient}
			err := retry.Do(ctx, policy(c, 5), failing(&calls, errs...), classify(tt.after))
			if !errors.Is(err, errTransient) {
				t.Fatalf("Do = %v; want the transient error", err)
			}
			if got, want := calls, tt.calls; got != want {
				t.Errorf("calls = %d; want %d", got, want)
			}
			if got, want := len(c.Waits()), tt.waits; got != want {
				t.Errorf("waits = %v; want %d of them", c.Waits(), want)
			}
			dl, _ := ctx.Deadline()
			if c.Now().After(dl) {
				t.Errorf("slept until %v, past the deadline %v", c.Now(), dl)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.contains) {
				t.Errorf("error %q does not say %q", msg, tt.contains)
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	t.Run("before the first try", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		calls := 0
		err := retry.Do(ctx, policy(newClock(), 3), failing(&calls), classify(0))
		if !errors.Is(err, context.Canceled) || calls != 0 {
			t.Errorf("Do = %v after %d calls; want context.Canceled and no call", err, calls)
		}
	})
	t.Run("while waiting", func(t *testing.T) {
		// The real timer: the wait is long, the cancel ends it at once.
		ctx, cancel := context.WithCancel(t.Context())
		p := retry.Policy{Attempts: 3, Initial: time.Hour, Max: time.Hour}
		calls := 0
		op := func(context.Context) error {
			calls++
			time.AfterFunc(10*time.Millisecond, cancel)
			return errTransient
		}
		start := time.Now()
		err := retry.Do(ctx, p, op, classify(time.Minute))
		if elapsed := time.Since(start); elapsed > 10*time.Second {
			t.Errorf("Do returned after %v; want at once after the cancel", elapsed)
		}
		if !errors.Is(err, errTransient) || !errors.Is(err, context.Canceled) {
			t.Errorf("Do = %v; want both the last error and context.Canceled", err)
		}
		if got, want := calls, 1; got != want {
			t.Errorf("calls = %d; want %d", got, want)
		}
	})
	t.Run("during a try", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		op := func(context.Context) error { calls++; cancel(); return errTransient }
		c := newClock()
		err := retry.Do(ctx, policy(c, 3), op, classify(0))
		if !errors.Is(err, errTransient) || !errors.Is(err, context.Canceled) || calls != 1 || len(c.Waits()) != 0 {
			t.Errorf("Do = %v after %d calls, waits %v; want one call, no wait, both errors", err, calls, c.Waits())
		}
	})
}

func TestJitterBounds(t *testing.T) {
	// The default jitter, drawn many times: every wait is in [0, backoff),
	// and the waits are not all the same.
	for _, initial := range []time.Duration{time.Nanosecond, 100 * time.Millisecond, time.Second} {
		c := newClock()
		p := retry.Policy{Attempts: 2, Initial: initial, Max: initial, Sleep: c.Sleep, Now: c.Now}
		for range 500 {
			calls := 0
			if err := retry.Do(t.Context(), p, failing(&calls, errTransient), classify(0)); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[time.Duration]bool{}
		for _, w := range c.Waits() {
			if w < 0 || w >= initial {
				t.Fatalf("wait %v outside [0, %v)", w, initial)
			}
			seen[w] = true
		}
		if initial > time.Microsecond && len(seen) < 100 {
			t.Errorf("500 waits of backoff %v took only %d values; want them spread", initial, len(seen))
		}
	}
	// A jitter that overshoots is clamped to the backoff.
	c := newClock()
	p := policy(c, 2)
	p.Jitter = func(b time.Duration) time.Duration { return 10 * b }
	calls := 0
	if err := retry.Do(t.Context(), p, failing(&calls, errTransient), classify(0)); err != nil {
		t.Fatal(err)
	}
	if got, want := c.Waits()[0], 100*time.Millisecond; got > want {
		t.Errorf("wait = %v; want at most %v", got, want)
	}
}

func TestZeroPolicyTriesOnce(t *testing.T) {
	calls := 0
	err := retry.Do(t.Context(), retry.Policy{}, failing(&calls, errTransient, errTransient), classify(0))
	if !errors.Is(err, errTransient) || calls != 1 {
		t.Errorf("Do = %v after %d calls; want the transient error after 1", err, calls)
	}
}

package poller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

// troubledStore is the in-memory store behind the troubles a real one has:
// a step that commits but answers after its caller's deadline (late), and
// an outage during which every call fails without effect (down).
type troubledStore struct {
	storetest.Store
	mu sync.Mutex
	// late counts, per method, the next calls that commit and then fail
	// as a deadline passed on the way back would.
	late map[string]int
	// downUntil fails every call, changing nothing, until then.
	downUntil time.Time
	// calls counts calls per method, failed ones included.
	calls map[string]int
	// gate, when set, holds the next RecordSuccess until it is closed.
	gate, entered chan struct{}
}

func newTroubledStore() *troubledStore {
	return &troubledStore{Store: memstore.New(), late: map[string]int{}, calls: map[string]int{}}
}

var errInjectedOutage = errors.New("rpc error: code = Unavailable desc = connection refused (injected outage)")

// step runs call as method under the injected troubles.
func (s *troubledStore) step(method string, call func() error) error {
	s.mu.Lock()
	s.calls[method]++
	down := time.Now().Before(s.downUntil)
	late := s.late[method] > 0
	if late && !down {
		s.late[method]--
	}
	s.mu.Unlock()
	if down {
		return fmt.Errorf("%s: %w", method, errInjectedOutage)
	}
	err := call()
	if late && err == nil {
		return fmt.Errorf("%s: committed, but the answer came late: %w", method, context.DeadlineExceeded)
	}
	return err
}

func (s *troubledStore) lateNext(method string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.late[method] += n
}

func (s *troubledStore) down(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.downUntil = time.Now().Add(d)
}

func (s *troubledStore) count(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

func (s *troubledStore) Get(ctx context.Context, name string) (rec poller.Record, err error) {
	err = s.step("Get", func() error { rec, err = s.Store.Get(ctx, name); return err })
	return rec, err
}

func (s *troubledStore) AddSnapshot(ctx context.Context, name string, poll int, op poller.Operation, at time.Time) (rec poller.Record, err error) {
	err = s.step("AddSnapshot", func() error { rec, err = s.Store.AddSnapshot(ctx, name, poll, op, at); return err })
	return rec, err
}

func (s *troubledStore) CountPoll(ctx context.Context, name string, poll int, pollErr string, at time.Time) (rec poller.Record, err error) {
	err = s.step("CountPoll", func() error { rec, err = s.Store.CountPoll(ctx, name, poll, pollErr, at); return err })
	return rec, err
}

func (s *troubledStore) SetOutcome(ctx context.Context, name string, o poller.Outcome, at time.Time) (rec poller.Record, err error) {
	err = s.step("SetOutcome", func() error { rec, err = s.Store.SetOutcome(ctx, name, o, at); return err })
	return rec, err
}

func (s *troubledStore) AcquireLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (rec poller.Record, ok bool, err error) {
	err = s.step("AcquireLease", func() error { rec, ok, err = s.Store.AcquireLease(ctx, name, holder, at, ttl); return err })
	return rec, ok, err
}

func (s *troubledStore) RenewLease(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) error {
	return s.step("RenewLease", func() error { return s.Store.RenewLease(ctx, name, holder, at, ttl) })
}

func (s *troubledStore) ReleaseLease(ctx context.Context, name, holder string, at time.Time) error {
	return s.step("ReleaseLease", func() error { return s.Store.ReleaseLease(ctx, name, holder, at) })
}

func (s *troubledStore) ClaimReport(ctx context.Context, name, holder string, at time.Time, ttl time.Duration) (rec poller.Record, ok bool, err error) {
	err = s.step("ClaimReport", func() error { rec, ok, err = s.Store.ClaimReport(ctx, name, holder, at, ttl); return err })
	return rec, ok, err
}

func (s *troubledStore) MarkReported(ctx context.Context, name string, at time.Time) error {
	return s.step("MarkReported", func() error { return s.Store.MarkReported(ctx, name, at) })
}

func (s *troubledStore) RecordSuccess(ctx context.Context, rec poller.Record, at time.Time) (prev poller.Success, ok bool, err error) {
	s.mu.Lock()
	gate, entered := s.gate, s.entered
	s.gate = nil
	s.mu.Unlock()
	if gate != nil {
		close(entered)
		<-gate
	}
	err = s.step("RecordSuccess", func() error { prev, ok, err = s.Store.RecordSuccess(ctx, rec, at); return err })
	return prev, ok, err
}

func (s *troubledStore) BeginStart(ctx context.Context, req poller.StartRequest, at time.Time) (d poller.StartDecision, err error) {
	err = s.step("BeginStart", func() error { d, err = s.Store.BeginStart(ctx, req, at); return err })
	return d, err
}

func (s *troubledStore) EndStart(ctx context.Context, req poller.StartRequest, name string, at time.Time) error {
	return s.step("EndStart", func() error { return s.Store.EndStart(ctx, req, name, at) })
}

func (s *troubledStore) ClaimStaleAlarm(ctx context.Context, project, holder string, forTime, at time.Time) (ok bool, err error) {
	err = s.step("ClaimStaleAlarm", func() error { ok, err = s.Store.ClaimStaleAlarm(ctx, project, holder, forTime, at); return err })
	return ok, err
}

// troubledRig is a rig on a troubledStore whose steps are short and whose
// patience outlasts the outages the tests inject.
func troubledRig(t *testing.T, maxPolls int, configure ...func(*poller.Config)) (*rig, *troubledStore) {
	st := newTroubledStore()
	configure = append([]func(*poller.Config){func(c *poller.Config) {
		c.RequestTimeout = 200 * time.Millisecond
		c.StorePatience = 10 * time.Second
		c.ShrinkWarn = 0.1
	}}, configure...)
	return &rig{testrig.NewOn(t, st, emulatortest.Project(t), maxPolls, configure...)}, st
}

// TestLateCommitsAreOwnSteps: every step that commits but answers late is
// found again by its retry as the caller's own: the start goes on, the
// lease is the poller's, the poll is counted once, the claim is the
// sender's, and the export is reported at once, exactly once, with its
// shrink check made. Before, the retry of a late claim or lease found
// "another poller" and gave up, leaving the report to a sweep.
func TestLateCommitsAreOwnSteps(t *testing.T) {
	ctx := context.Background()
	for _, method := range []string{"BeginStart", "AcquireLease", "AddSnapshot", "SetOutcome", "ClaimReport", "RecordSuccess", "MarkReported"} {
		t.Run(method, func(t *testing.T) {
			r, st := troubledRig(t, 10)
			first := r.start(t, adminfake.Successful(1000, 10000))
			if _, err := r.Poller.Poll(ctx, first.Name); err != nil {
				t.Fatal(err)
			}
			st.lateNext(method, 1)
			started := r.start(t, adminfake.Running("PROCESSING", 1, 10, 1, 10), adminfake.Successful(500, 10000))
			res, err := r.Poller.Poll(ctx, started.Name)
			if err != nil {
				t.Fatalf("Poll with a late %s = %v; want it to go on", method, err)
			}
			if res.Status != poller.Ended || !res.Record.Reported() {
				t.Fatalf("Poll with a late %s = %v, reported %v; want ended and reported", method, res.Status, res.Record.Reported())
			}
			rec, err := r.Store.Get(ctx, started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if rec.Polls != 2 {
				t.Errorf("Polls = %d; want 2 (each GET counted once)", rec.Polls)
			}
			msgs := r.Slack.Messages()
			if len(msgs) != 2 {
				t.Fatalf("%d reports; want 2, one per export", len(msgs))
			}
			// 500 after 1,000 entities: the shrink check was made.
			if text := fmt.Sprint(msgs[1].Attachments); !strings.Contains(text, "fewer") && !strings.Contains(text, "shr") {
				t.Errorf("second report %s; want the shrink warning", text)
			}
			if st.count(method) < 2 {
				t.Errorf("%s called %d times; want the late call retried", method, st.count(method))
			}
		})
	}
}

// TestStoreOutageMidPoll: the store goes away while the poller follows an
// export (its snapshot, its outcome, its claim and its lease release all
// fail for a while); the poller rides the outage out and reports at once
// when the store is back, instead of leaving the export to a sweep.
func TestStoreOutageMidPoll(t *testing.T) {
	ctx := context.Background()
	r, st := troubledRig(t, 10)
	started := r.start(t, adminfake.Running("PROCESSING", 1, 10, 1, 10), adminfake.Successful(10, 100))
	r.Admin.OnGet(func(string) { st.down(700 * time.Millisecond) })
	res, err := r.Poller.Poll(ctx, started.Name)
	if err != nil {
		t.Fatalf("Poll through a store outage = %v; want it ridden out", err)
	}
	if res.Status != poller.Ended || !res.Record.Reported() {
		t.Fatalf("Poll = %v, reported %v; want ended, reported", res.Status, res.Record.Reported())
	}
	rec, err := r.Store.Get(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if rec.LeaseHolder != "" {
		t.Errorf("lease still held by %q after the outage; want it released", rec.LeaseHolder)
	}
	r.onlyMessage(t)
}

// TestUnreleasedLeaseIsTheRetrysOwn: a poll that could not give its lease
// up (the store was gone past its patience) leaves it behind; the next
// Poll of the same process, the retry of a queue or of the in-process
// follower, takes that lease as its own instead of finding "another
// poller" and leaving the export to the lease's expiry and a sweep.
func TestUnreleasedLeaseIsTheRetrysOwn(t *testing.T) {
	ctx := context.Background()
	r, st := troubledRig(t, 10, func(c *poller.Config) { c.StorePatience = 300 * time.Millisecond })
	started := r.start(t, adminfake.Running("PROCESSING", 1, 10, 1, 10), adminfake.Successful(10, 100))
	r.Admin.OnGet(func(string) { st.down(2 * time.Second) })
	if _, err := r.Poller.Poll(ctx, started.Name); err == nil {
		t.Fatal("Poll through an outage past its patience = nil; want an error")
	}
	r.Admin.OnGet(nil)
	held, err := r.Store.Get(ctx, waitStoreBack(t, st, started.Name))
	if err != nil {
		t.Fatal(err)
	}
	if held.LeaseHolder == "" {
		t.Fatal("the failed poll left no lease; the test needs one left behind")
	}
	res, err := r.Poller.Poll(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != poller.Ended || !res.Record.Reported() {
		t.Fatalf("retried Poll = %v, reported %v; want ended and reported (the lease was its own)", res.Status, res.Record.Reported())
	}
	r.onlyMessage(t)
}

// waitStoreBack waits for the injected outage to end and returns name.
func waitStoreBack(t *testing.T, st *troubledStore, name string) string {
	t.Helper()
	st.mu.Lock()
	until := st.downUntil
	st.mu.Unlock()
	time.Sleep(time.Until(until))
	return name
}

// TestDuplicateInProcessPoll: two Polls of one operation at once in one
// process (a duplicate delivery) do not both follow it, although the
// process names its holder the same for both.
func TestDuplicateInProcessPoll(t *testing.T) {
	ctx := context.Background()
	r, _ := troubledRig(t, 10)
	running := adminfake.Running("PROCESSING", 1, 10, 1, 10)
	started := r.start(t, running, running, running, adminfake.Successful(10, 100))
	var wg sync.WaitGroup
	results := make([]poller.PollResult, 2)
	for i := range results {
		wg.Go(func() {
			res, err := r.Poller.Poll(ctx, started.Name)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	ended, held := 0, 0
	for _, res := range results {
		switch res.Status {
		case poller.Ended:
			ended++
		case poller.Held:
			held++
		}
	}
	if ended+held != 2 || ended < 1 {
		t.Fatalf("results %v, %v; want one ended and the other ended or held", results[0].Status, results[1].Status)
	}
	if got := r.Admin.Gets(started.Name); got != 4 {
		t.Errorf("%d GETs; want 4: one follower", got)
	}
	r.onlyMessage(t)
}

// syncDispatcher polls each hand-off at once, in the caller's goroutine, as
// a queue that delivers the continuation to the same process at once would.
type syncDispatcher struct {
	p        *poller.Poller
	statuses []poller.PollStatus
}

func (d *syncDispatcher) Dispatch(ctx context.Context, h poller.Handoff) error {
	res, err := d.p.Poll(ctx, h.Name)
	d.statuses = append(d.statuses, res.Status)
	return err
}

// TestContinuationAtOnceIsNotHeld: a continuation delivered to the same
// process before the call that made it returned finds the operation free.
// Before, the parent's hold on the operation was let go only after the
// hand-off, the continuation answered Held, and nothing polled the export
// until a sweep.
func TestContinuationAtOnceIsNotHeld(t *testing.T) {
	d := &syncDispatcher{}
	running := adminfake.Running("PROCESSING", 1, 10, 1, 10)
	r := &rig{testrig.New(t, 10, func(c *poller.Config) { c.Dispatcher = d; c.Budget = 90 * time.Second })}
	d.p = r.Poller
	r.Admin.Script(running, running, adminfake.Successful(10, 100))
	res, err := r.Poller.Start(context.Background(), poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://example-backups/daily"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Store.Get(context.Background(), res.Record.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range d.statuses {
		if st == poller.Held {
			t.Fatalf("hand-offs ended %v; want none held", d.statuses)
		}
	}
	if !rec.Reported() {
		t.Fatalf("record after the hand-offs %v: outcome %q, reported %v; want reported", d.statuses, rec.Outcome, rec.Reported())
	}
	r.onlyMessage(t)
}

// TestSlowSuccessRecordKeepsOneReport: a success whose record takes long
// (a slow or locked store) must not let its report be sent twice. Before,
// the report was claimed first and the record written after: a claim that
// expired meanwhile let a sweep send the report, and the first poller sent
// it again when the record was done.
func TestSlowSuccessRecordKeepsOneReport(t *testing.T) {
	ctx := context.Background()
	r, st := troubledRig(t, 10)
	started := r.start(t, adminfake.Successful(10, 100))
	st.mu.Lock()
	st.gate, st.entered = make(chan struct{}), make(chan struct{})
	gate, entered := st.gate, st.entered
	st.mu.Unlock()
	done := make(chan error, 1)
	go func() { _, err := r.Poller.Poll(ctx, started.Name); done <- err }()
	<-entered
	// The first poller is held in its success record for longer than a claim lasts.
	r.Clock.Advance(time.Hour)
	if _, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}}); err != nil {
		t.Fatal(err)
	}
	close(gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.onlyMessage(t)
}

// TestSweepHonoursAStop: a sweep told to stop while the store is down ends
// within StopGrace, instead of spending the store patience on each pending
// report (which kept serve from exiting).
func TestSweepHonoursAStop(t *testing.T) {
	r, st := troubledRig(t, 10, func(c *poller.Config) {
		c.StorePatience = 2 * time.Second
		c.StopGrace = 200 * time.Millisecond
	})
	for range 3 {
		started := r.start(t, adminfake.Successful(10, 100))
		if _, err := r.Store.SetOutcome(context.Background(), started.Name, poller.OutcomeSuccess, r.Clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	// The store goes down once the sweep has listed what is pending.
	go func() {
		for st.count("RecordSuccess") == 0 && st.count("ClaimReport") == 0 {
			time.Sleep(time.Millisecond)
		}
		st.down(time.Minute)
		cancel()
	}()
	began := time.Now()
	_, err := r.Poller.Sweep(ctx, []poller.Target{{Project: r.Project}})
	took := time.Since(began)
	t.Logf("sweep took %v after the stop", took)
	if took > time.Second {
		t.Fatalf("sweep took %v after a stop; want it within StopGrace (%v)", took, 200*time.Millisecond)
	}
	if err == nil {
		t.Error("a stopped sweep with reports left returned no error")
	}
}

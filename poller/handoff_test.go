package poller_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
	"github.com/dsexport/dsexport/store/memstore"
	"github.com/dsexport/dsexport/store/storetest"
)

// flakyStore is the in-memory store with its first reads failing, as a
// store outage would.
type flakyStore struct {
	storetest.Store
	failGets atomic.Int32
}

func (s *flakyStore) Get(ctx context.Context, name string) (poller.Record, error) {
	if s.failGets.Add(-1) >= 0 {
		return poller.Record{}, errors.New("store unavailable (injected)")
	}
	return s.Store.Get(ctx, name)
}

// TestInlineRetriesAFailedPoll: the in-process follower, given a poll that
// fails (the store cannot be read), tries again after a pause, as a task
// queue would deliver the task again, and the export is reported once.
func TestInlineRetriesAFailedPoll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := &flakyStore{Store: memstore.New()}
	inline := poller.NewInline(ctx, nil)
	r := &rig{testrig.NewOn(t, st, emulatortest.Project(t), 5, func(c *poller.Config) { c.Dispatcher = inline })}
	// Start reads no record; the follower's first Poll does, and fails.
	st.failGets.Store(1)
	started := r.start(t, adminfake.Successful(10, 100))
	done := make(chan struct{})
	go func() { inline.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the inline follower did not end within 10s")
	}
	rec, err := r.Store.Get(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Reported() || rec.Outcome != poller.OutcomeSuccess {
		t.Fatalf("record = outcome %q, reported %v; want success, reported after the retry", rec.Outcome, rec.Reported())
	}
	if got := st.failGets.Load(); got >= 0 {
		t.Fatalf("the injected failure was not met (left %d)", got+1)
	}
	r.onlyMessage(t)
}

// TestInlineNeedsBinding: an Inline that was not given to poller.New says so
// instead of dropping the hand-off.
func TestInlineNeedsBinding(t *testing.T) {
	in := poller.NewInline(context.Background(), nil)
	if err := in.Dispatch(context.Background(), poller.Handoff{Name: "projects/p/operations/1"}); err == nil {
		t.Fatal("Dispatch on an unbound Inline = nil; want an error")
	}
}

// TestBudgetWithoutDispatcherPollsToTheEnd: a poller that has nobody to hand
// a continuation to (dsexport export --wait) ignores the budget and follows
// the export to its report.
func TestBudgetWithoutDispatcherPollsToTheEnd(t *testing.T) {
	running := adminfake.Running("PROCESSING", 1, 10, 1, 10)
	r := &rig{testrig.New(t, 10, func(c *poller.Config) { c.Budget = 90 * time.Second })}
	started := r.start(t, running, running, running, adminfake.Successful(10, 10))
	res, err := r.Poller.Poll(context.Background(), started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != poller.Ended || res.Record.Outcome != poller.OutcomeSuccess || !res.Record.Reported() {
		t.Fatalf("Poll = %v, outcome %q, reported %v; want ended, success, reported", res.Status, res.Record.Outcome, res.Record.Reported())
	}
	r.onlyMessage(t)
}

// TestPendingReportOfARefusedStartIsRetried: a refused start whose report
// fails has no poll task to deliver it again; it is handed to a poller,
// which tries the report again, instead of waiting for a sweep.
func TestPendingReportOfARefusedStartIsRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	inline := poller.NewInline(ctx, nil)
	r := &rig{testrig.New(t, 5, func(c *poller.Config) { c.Dispatcher = inline })}
	r.Admin.RefuseExports(403, "The caller does not have permission")
	r.Slack.FailNext(1, 500, 0)
	res, err := r.Poller.Start(ctx, poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://example-backups/daily"})
	if err != nil || res.Status != poller.Refused {
		t.Fatalf("Start = %v, %v; want refused", res.Status, err)
	}
	done := make(chan struct{})
	go func() { inline.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the retried report did not end within 10s")
	}
	if got := r.Slack.Only(t).Attachments[0].Title; got != "Datastore export could not be started" {
		t.Fatalf("report %q; want the refused start's", got)
	}
}

package poller_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/notifier"
	"github.com/dsexport/dsexport/notifier/slackfake"
	"github.com/dsexport/dsexport/poller"
)

// rig is a poller wired to real peers (testrig).
type rig struct{ *testrig.Rig }

func newRig(t *testing.T, maxPolls int) *rig { return &rig{testrig.New(t, maxPolls)} }

func (r *rig) start(t *testing.T, steps ...adminfake.Step) poller.Record {
	t.Helper()
	r.Admin.Script(steps...)
	res, err := r.Poller.Start(context.Background(), poller.ExportRequest{
		Project: r.Project, OutputURLPrefix: "gs://example-backups/daily",
		Kinds: []string{"User", "Order"}, Namespaces: []string{""}, Trigger: poller.TriggerCron,
		// Tests start several exports of one filter; TestNoDoubleStart checks the guard.
		Force: true,
	})
	if err != nil || res.Status != poller.Started {
		t.Fatalf("Start = %v, %v; want started", res.Status, err)
	}
	return res.Record
}

// onlyMessage returns the one Slack message, failing unless there is exactly one.
func (r *rig) onlyMessage(t *testing.T) slackfake.Message { return r.Slack.Only(t) }

func TestPollOutcomes(t *testing.T) {
	running := adminfake.Running("PROCESSING", 500, 1000, 5000, 10000)
	tests := []struct {
		name      string
		steps     []adminfake.Step
		maxPolls  int
		outcome   poller.Outcome
		polls     int
		snapshots int
		title     string
		text      []string
	}{
		{"success after 3 polls", []adminfake.Step{running, running, adminfake.Successful(1000, 10000)}, 10,
			poller.OutcomeSuccess, 3, 4, "Datastore export succeeded",
			[]string{"gcloud datastore import gs://example-backups/daily/"}},
		{"failure with an error", []adminfake.Step{running, adminfake.Failed(7, "Service account lacks storage.objects.create")}, 10,
			poller.OutcomeFailure, 2, 3, "Datastore export failed",
			[]string{"Service account lacks storage.objects.create", "gcloud datastore operations describe projects/"}},
		{"cancelled", []adminfake.Step{adminfake.Cancelled()}, 10,
			poller.OutcomeFailure, 1, 2, "Datastore export failed",
			[]string{"The operation was cancelled.", "gcloud datastore operations describe projects/"}},
		{"unexpected state", []adminfake.Step{running, adminfake.DoneIn("PROCESSING")}, 10,
			poller.OutcomeUnexpected, 2, 3, "Datastore export ended in unexpected state PROCESSING",
			[]string{"gcloud datastore operations describe projects/"}},
		{"timeout at exactly max polls", []adminfake.Step{running}, 4,
			poller.OutcomeTimeout, 4, 5, "Datastore export still running after 4 polls",
			[]string{"gcloud datastore operations describe projects/"}},
		{"transient errors in between", []adminfake.Step{
			running, adminfake.HTTPError(http.StatusServiceUnavailable, ""), adminfake.HTTPError(http.StatusTooManyRequests, "30"),
			adminfake.HTTPError(http.StatusInternalServerError, ""), adminfake.Successful(1000, 10000)}, 10,
			poller.OutcomeSuccess, 5, 3, "Datastore export succeeded", nil},
		{"transient errors until the budget ends", []adminfake.Step{adminfake.HTTPError(http.StatusServiceUnavailable, "")}, 3,
			poller.OutcomeTimeout, 3, 1, "Datastore export not seen to finish after 3 polls", []string{"Error 503"}},
		{"operation gone", []adminfake.Step{running, adminfake.HTTPError(http.StatusNotFound, "")}, 10,
			poller.OutcomeUnexpected, 2, 2, "Datastore export could no longer be read",
			[]string{"Error 404", "gcloud datastore operations describe projects/"}},
		{"refused reads keep polling", []adminfake.Step{adminfake.HTTPError(http.StatusForbidden, ""), adminfake.Successful(1000, 10000)}, 10,
			poller.OutcomeSuccess, 2, 2, "Datastore export succeeded", nil},
		{"unreadable until the budget ends", []adminfake.Step{running, adminfake.HTTPError(http.StatusForbidden, "")}, 3,
			poller.OutcomeTimeout, 3, 2, "Datastore export not seen to finish after 3 polls",
			[]string{"Last poll failed", "Error 403"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, tt.maxPolls)
			started := r.start(t, tt.steps...)
			if started.Outcome != poller.OutcomeNone || started.Polls != 0 {
				t.Fatalf("Start = outcome %q, %d polls; want a running operation and no polls", started.Outcome, started.Polls)
			}
			res, err := r.Poller.Poll(ctx, started.Name)
			rec := res.Record
			if err != nil {
				t.Fatalf("Poll: %v", err)
			}
			if got, want := rec.Outcome, tt.outcome; got != want {
				t.Errorf("outcome = %q; want %q", got, want)
			}
			if got, want := r.Admin.Gets(started.Name), tt.polls; got != want {
				t.Errorf("GETs = %d; want %d", got, want)
			}
			stored, err := r.Store.Get(ctx, started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := stored.Polls, tt.polls; got != want {
				t.Errorf("stored polls = %d; want %d", got, want)
			}
			if got, want := stored.Outcome, tt.outcome; got != want {
				t.Errorf("stored outcome = %q; want %q", got, want)
			}
			if !stored.Reported() {
				t.Errorf("stored record not marked reported")
			}
			snaps, err := r.Store.Snapshots(ctx, started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(snaps), tt.snapshots; got != want {
				t.Errorf("snapshots = %d; want %d", got, want)
			}
			// Every wait but none beyond the budget: one interval before each GET.
			if got, want := len(r.Clock.Waits()), tt.polls; got != want {
				t.Errorf("waited %d times; want %d", got, want)
			}
			msg := r.onlyMessage(t)
			att := msg.Attachments[0]
			if got, want := att.Title, tt.title; got != want {
				t.Errorf("title = %q; want %q", got, want)
			}
			all := att.Text + "\n" + att.Fallback
			for _, f := range att.Fields {
				all += "\n" + f.Value
			}
			if !strings.Contains(all, started.Name) {
				t.Errorf("report does not name the operation %s:\n%s", started.Name, all)
			}
			for _, s := range tt.text {
				if !strings.Contains(all, s) {
					t.Errorf("report lacks %q:\n%s", s, all)
				}
			}

			// A second delivery of the same poll task reports nothing new.
			again, err := r.Poller.Poll(ctx, started.Name)
			if err != nil {
				t.Fatalf("second Poll: %v", err)
			}
			if got, want := again.Record.Polls, tt.polls; got != want {
				t.Errorf("second Poll polls = %d; want %d", got, want)
			}
			if got := len(r.Slack.Messages()); got != 1 {
				t.Errorf("Slack got %d messages after a repeated poll; want 1", got)
			}
		})
	}
}

func TestPollResumesFromStoredCount(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	started := r.start(t, adminfake.Running("PROCESSING", 1, 10, 1, 10))
	// A first poller dies after three polls: its context ends mid-wait.
	ctx1, cancel := context.WithCancel(ctx)
	counting := &cancelAfter{Clock: r.Clock, n: 4, cancel: cancel}
	first := poller.New(poller.Config{
		Admin: mustAdmin(t, r.Admin.URL()), Store: r.Store, Notifier: notifier.NewText(&bytes.Buffer{}, nil),
		Clock: counting, Interval: time.Minute, MaxPolls: 5,
	})
	if _, err := first.Poll(ctx1, started.Name); err == nil {
		t.Fatalf("first Poll returned no error after its context ended")
	}
	rec, err := r.Store.Get(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rec.Polls, 3; got != want {
		t.Fatalf("polls after the first poller = %d; want %d", got, want)
	}
	// The next poller continues the count: two more GETs, then the timeout.
	res, err := r.Poller.Poll(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Record.Outcome, poller.OutcomeTimeout; got != want {
		t.Errorf("outcome = %q; want %q", got, want)
	}
	if got, want := r.Admin.Gets(started.Name), 5; got != want {
		t.Errorf("GETs in all = %d; want %d (MAX_POLLS bounds both pollers together)", got, want)
	}
	if got, want := r.onlyMessage(t).Attachments[0].Title, "Datastore export still running after 5 polls"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
}

// cancelAfter cancels a context on the n-th wait, as a stopped instance would.
type cancelAfter struct {
	poller.Clock
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) After(d time.Duration) <-chan time.Time {
	c.n--
	if c.n == 0 {
		c.cancel()
		return make(chan time.Time) // never fires
	}
	return c.Clock.After(d)
}

func mustAdmin(t *testing.T, url string) *admin.Datastore {
	t.Helper()
	a, err := admin.NewDatastore(context.Background(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStartRefusedIsReported(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	r.Admin.RefuseExports(http.StatusForbidden, "The caller does not have permission to write to gs://example-backups")
	res, err := r.Poller.Start(ctx, poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://example-backups/daily", Trigger: poller.TriggerCron})
	if err != nil || res.Status != poller.Refused {
		t.Fatalf("Start = %v, %v; want refused", res.Status, err)
	}
	// The adapter maps the HTTP 403 to google.rpc PERMISSION_DENIED.
	if got, want := res.Record.ErrorCode, 7; got != want {
		t.Errorf("code of the refusal = %d; want %d (PERMISSION_DENIED)", got, want)
	}
	att := r.onlyMessage(t).Attachments[0]
	if got, want := att.Title, "Datastore export could not be started"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	if !strings.Contains(att.Text, "The caller does not have permission to write to gs://example-backups") {
		t.Errorf("report lacks the API's message:\n%s", att.Text)
	}
	// The refusal is kept like a failed export, so its report is never lost.
	recs, _ := r.Store.List(ctx, 10)
	if len(recs) != 1 || !recs[0].Refused || !recs[0].Reported() || recs[0].Outcome != poller.OutcomeFailure ||
		!strings.Contains(recs[0].Name, "/operations/refused-") {
		t.Errorf("store holds %+v; want one reported refusal", recs)
	}
}

func TestStartDoneAtOnceIsReportedUnderAGeneratedName(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	// The Datastore emulator answers the export synchronously, done and
	// nameless (admin's TestAdminExportAgainstEmulator checks it does).
	r.Admin.AnswerExportsDone(adminfake.Successful(3, 300))
	res, err := r.Poller.Start(ctx, poller.ExportRequest{Project: r.Project, OutputURLPrefix: "gs://emulated-bucket/" + r.Project, Trigger: poller.TriggerManual})
	if err != nil || res.Status != poller.Started {
		t.Fatalf("Start = %v, %v; want started", res.Status, err)
	}
	rec := res.Record
	if _, err := poller.ParseName(rec.Name); err != nil || !strings.Contains(rec.Name, "/operations/local-") {
		t.Errorf("generated name %q: %v", rec.Name, err)
	}
	if rec.Outcome != poller.OutcomeSuccess || !rec.Reported() {
		t.Errorf("record = outcome %q reported %v; want success, reported", rec.Outcome, rec.Reported())
	}
	stored, err := r.Store.Get(ctx, rec.Name)
	if err != nil || !stored.Reported() || stored.Trigger != poller.TriggerManual {
		t.Errorf("stored = %+v, %v; want reported, trigger manual", stored, err)
	}
	if got, want := r.onlyMessage(t).Attachments[0].Title, "Datastore export succeeded"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
}

func TestPollUnknownOperationIsFollowed(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	// Started with gcloud, not by dsexport: the first read is its poll-0 snapshot.
	name := r.Admin.AddOperation(r.Project, adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Successful(2, 2))
	res, err := r.Poller.Poll(ctx, name)
	rec := res.Record
	if err != nil {
		t.Fatal(err)
	}
	if rec.Outcome != poller.OutcomeSuccess || rec.Polls != 1 || r.Admin.Gets(name) != 2 {
		t.Errorf("record = outcome %q, %d polls, %d GETs; want success, 1 poll after the first read, 2 GETs", rec.Outcome, rec.Polls, r.Admin.Gets(name))
	}
	r.onlyMessage(t)
}

func TestPollRejectsBadNames(t *testing.T) {
	r := newRig(t, 5)
	for _, name := range []string{"", "x", "projects/p/operations/a/../../../v1/projects/p:export"} {
		if _, err := r.Poller.Poll(context.Background(), name); err == nil {
			t.Errorf("Poll(%q) accepted it", name)
		}
	}
	if got := len(r.Admin.Names()); got != 0 {
		t.Errorf("fake knows %d operations; want 0", got)
	}
	if got := len(r.Slack.Messages()); got != 0 {
		t.Errorf("Slack got %d messages; want 0", got)
	}
}

func TestReportNotDeliveredStaysPending(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	started := r.start(t, adminfake.Successful(10, 100))
	// Slack refuses the post (the bot is not in the channel): no retry helps.
	r.Slack.SetChannels("#elsewhere")
	res, err := r.Poller.Poll(ctx, started.Name)
	rec := res.Record
	if err == nil {
		t.Fatal("Poll succeeded though Slack failed")
	}
	r.Slack.SetChannels(testrig.SlackChannel)
	stored, err := r.Store.Get(ctx, started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Reported() || stored.Outcome != poller.OutcomeSuccess {
		t.Fatalf("stored = outcome %q reported %v; want success, not reported", stored.Outcome, stored.Reported())
	}
	// The next delivery of the task sends it without polling again.
	res, err = r.Poller.Poll(ctx, started.Name)
	rec = res.Record
	if err != nil {
		t.Fatal(err)
	}
	if !rec.Reported() {
		t.Errorf("not reported after the retry")
	}
	if got, want := r.Admin.Gets(started.Name), 1; got != want {
		t.Errorf("GETs = %d; want %d", got, want)
	}
	r.onlyMessage(t)
}

func TestPollUnknownNameWritesNothing(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	name := "projects/" + r.Project + "/operations/doesnotexist"
	_, err := r.Poller.Poll(ctx, name)
	if !errors.Is(err, poller.ErrOperationGone) || admin.StatusCode(err) != http.StatusNotFound {
		t.Fatalf("Poll(unknown) = %v; want ErrOperationGone with the API's 404", err)
	}
	if recs, _ := r.Store.List(ctx, 10); len(recs) != 0 {
		t.Errorf("Poll(unknown) recorded %d operations; want none", len(recs))
	}
	if got := len(r.Slack.Messages()); got != 0 {
		t.Errorf("Poll(unknown) posted %d messages; want none", got)
	}
}

// TestConcurrentPollersReportOnce delivers one poll task four times at once,
// as Cloud Tasks may: one delivery takes the lease and polls, the others
// find it held and return without a GET, and one report is sent.
func TestConcurrentPollersReportOnce(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name  string
		steps []adminfake.Step
		gets  int
	}{
		{"success", []adminfake.Step{adminfake.Running("PROCESSING", 1, 2, 1, 2), adminfake.Successful(2, 2)}, 2},
		{"timeout", []adminfake.Step{adminfake.Running("PROCESSING", 1, 2, 1, 2)}, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newRig(t, 3)
			started := r.start(t, tt.steps...)
			var wg sync.WaitGroup
			var mu sync.Mutex
			held := 0
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					res, err := r.Poller.Poll(ctx, started.Name)
					switch {
					case err == nil && res.Status == poller.Held:
						mu.Lock()
						held++
						mu.Unlock()
					case err != nil:
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if got := len(r.Slack.Messages()); got != 1 {
				t.Fatalf("4 concurrent pollers sent %d reports; want 1", got)
			}
			if got, want := r.Admin.Gets(started.Name), tt.gets; got != want {
				t.Errorf("GETs = %d; want %d (one poller at a time)", got, want)
			}
			t.Logf("%d of 4 deliveries found the lease held", held)
			rec, err := r.Store.Get(ctx, started.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !rec.Reported() || rec.LeaseHolder != "" {
				t.Errorf("record reported %v, lease holder %q; want reported, lease released", rec.Reported(), rec.LeaseHolder)
			}
		})
	}
}

// TestStopWaitsForTheStepUnderWay stops a poller while its GET is in flight:
// the answer is still recorded, so no GET is made and forgotten.
func TestStopWaitsForTheStepUnderWay(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newRig(t, 5)
	started := r.start(t, adminfake.Running("PROCESSING", 7, 10, 70, 100))
	r.Admin.OnGet(func(string) { cancel() })
	res, err := r.Poller.Poll(ctx, started.Name)
	rec := res.Record
	if err == nil {
		t.Fatalf("Poll after a stop returned no error; want the context's")
	}
	stored, err := r.Store.Get(context.Background(), started.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := stored.Polls, 1; got != want {
		t.Fatalf("stored polls = %d; want %d (the GET made before the stop)", got, want)
	}
	if got, want := stored.EntitiesCompleted, int64(7); got != want {
		t.Errorf("stored progress = %d; want %d", got, want)
	}
	// The lease is given up despite the stop, so the task's redelivery
	// polls at once instead of finding it held.
	if stored.LeaseHolder != "" {
		t.Errorf("lease holder after the stop = %q; want the lease released", stored.LeaseHolder)
	}
	if rec.Polls != 1 || len(r.Slack.Messages()) != 0 {
		t.Errorf("Poll returned %d polls, %d reports; want 1, 0", rec.Polls, len(r.Slack.Messages()))
	}
}

// TestHungGetIsATransientFailure gives up on a GET after RequestTimeout and
// tries again at the next tick.
func TestHungGetIsATransientFailure(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, 5)
	started := r.start(t, adminfake.Slow(time.Minute, adminfake.Running("PROCESSING", 1, 2, 1, 2)), adminfake.Successful(2, 2))
	p := poller.New(poller.Config{
		Admin: r.AdminClient, Store: r.Store, Notifier: r.Notifier, Clock: r.Clock,
		Interval: time.Minute, MaxPolls: 5, RequestTimeout: 2 * time.Second,
	})
	res, err := p.Poll(ctx, started.Name)
	rec := res.Record
	if err != nil {
		t.Fatal(err)
	}
	if rec.Outcome != poller.OutcomeSuccess || rec.Polls != 2 {
		t.Errorf("record = outcome %q after %d polls; want success after 2", rec.Outcome, rec.Polls)
	}
}

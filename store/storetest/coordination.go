package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

func testLeases(t *testing.T, s Store) {
	ctx := context.Background()
	name := opName("leased")
	create(t, s, running(name), base)
	ttl := 3 * time.Minute
	rec, ok, err := s.AcquireLease(ctx, name, "a", base, ttl)
	if err != nil || !ok || rec.LeaseHolder != "a" || !rec.LeaseExpires.Equal(us(base.Add(ttl))) {
		t.Fatalf("AcquireLease(a) = %+v, %v, %v; want a's lease until %v", rec, ok, err, base.Add(ttl))
	}
	if rec, ok, err := s.AcquireLease(ctx, name, "b", base.Add(time.Minute), ttl); err != nil || ok || rec.LeaseHolder != "a" {
		t.Fatalf("AcquireLease(b) while a holds it = %v, %v (holder %q); want false and a", ok, err, rec.LeaseHolder)
	}
	// a's own retry (its first acquire committed but answered late) takes
	// its live lease again.
	if rec, ok, err := s.AcquireLease(ctx, name, "a", base, ttl); err != nil || !ok || rec.LeaseHolder != "a" {
		t.Fatalf("AcquireLease(a) again while a holds it = %v, %v (holder %q); want true and a", ok, err, rec.LeaseHolder)
	}
	if err := s.RenewLease(ctx, name, "a", base.Add(2*time.Minute), ttl); err != nil {
		t.Fatalf("RenewLease(a) = %v", err)
	}
	if err := s.RenewLease(ctx, name, "b", base.Add(2*time.Minute), ttl); !errors.Is(err, poller.ErrLeaseLost) {
		t.Fatalf("RenewLease(b) = %v; want ErrLeaseLost", err)
	}
	// Renewed at +2m, a's lease runs to +5m: b still waits at +4m, takes it at +6m.
	rec, ok, err = s.AcquireLease(ctx, name, "b", base.Add(4*time.Minute), ttl)
	if err != nil || ok {
		t.Fatalf("AcquireLease(b) before the renewed lease expired = %v, %v; want false, nil", ok, err)
	}
	if got, want := rec.LeaseExpires, us(base.Add(5*time.Minute)); got != want {
		t.Fatalf("refused AcquireLease: LeaseExpires = %v; want a's renewed %v", got, want)
	}
	if _, ok, err := s.AcquireLease(ctx, name, "b", base.Add(6*time.Minute), ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(b) after expiry = %v, %v; want true", ok, err)
	}
	checkReleases(t, s, name, ttl)
}

// checkReleases releases name's lease, held by b since +6m: a's late release
// leaves b's lease alone; b's own release frees it.
func checkReleases(t *testing.T, s Store, name string, ttl time.Duration) {
	t.Helper()
	ctx := context.Background()
	if err := s.ReleaseLease(ctx, name, "a", base.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Get(ctx, name); err != nil || rec.LeaseHolder != "b" {
		t.Fatalf("after a's release the holder is %q (%v); want b", rec.LeaseHolder, err)
	}
	if err := s.ReleaseLease(ctx, name, "b", base.Add(6*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if rec, err := s.Get(ctx, name); err != nil || rec.LeaseHolder != "" || !rec.LeaseExpires.IsZero() {
		t.Fatalf("after b's release the lease is %q until %v (%v); want none", rec.LeaseHolder, rec.LeaseExpires, err)
	}
	if _, ok, err := s.AcquireLease(ctx, name, "c", base.Add(6*time.Minute), ttl); err != nil || !ok {
		t.Fatalf("AcquireLease(c) after b's release = %v, %v; want true", ok, err)
	}
}

// testConcurrentLeases checks that of many pollers racing for a free lease, one wins.
func testConcurrentLeases(t *testing.T, s Store) {
	raced := opName("raced")
	create(t, s, running(raced), base)
	won := race(t, 6, func(i int) (bool, error) {
		_, ok, err := s.AcquireLease(context.Background(), raced, string(rune('a'+i)), base, 3*time.Minute)
		return ok, err
	})
	if got, want := won, 1; got != want {
		t.Fatalf("%d of 6 racing pollers got the lease; want %d", got, want)
	}
}

func testPending(t *testing.T, s Store) {
	ctx := context.Background()
	for _, id := range []string{"p1", "p2", "p3"} {
		create(t, s, running(opName(id)), base)
	}
	if err := s.MarkReported(ctx, opName("p2"), base); err != nil {
		t.Fatal(err)
	}
	// An outcome or a claim does not end pending: only delivery does.
	if _, err := s.SetOutcome(ctx, opName("p3"), poller.OutcomeSuccess, base); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ClaimReport(ctx, opName("p3"), "h", base, time.Minute); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Name] = true
	}
	if len(recs) != 2 || !got[opName("p1")] || !got[opName("p3")] {
		t.Fatalf("Pending = %v; want p1 and p3", got)
	}
}

// success is a record of a successful export named id of kinds that ended at end.
func success(id string, entities int64, end time.Time, kinds ...string) poller.Record {
	op := successful(opName(id))
	op.EntitiesCompleted, op.Kinds, op.EndTime = entities, kinds, end
	return poller.Record{Operation: op}
}

// recordSuccess calls RecordSuccess and fails the test unless it returns
// the previous success named previous ("" for none).
func recordSuccess(t *testing.T, s Store, rec poller.Record, at time.Time, previous, what string) poller.Success {
	t.Helper()
	prev, ok, err := s.RecordSuccess(context.Background(), rec, at)
	if err != nil {
		t.Fatalf("%s: RecordSuccess(%q): %v", what, rec.Name, err)
	}
	if got, want := ok, previous != ""; got != want {
		t.Fatalf("%s: RecordSuccess(%q) = %+v, %v; want a previous success: %v", what, rec.Name, prev, got, want)
	}
	if got, want := prev.Name, previous; got != want {
		t.Fatalf("%s: RecordSuccess(%q) previous = %q; want %q", what, rec.Name, got, want)
	}
	return prev
}

// health calls Health and fails the test unless the project is watched
// since since, with the last success named last ("" for none).
func health(t *testing.T, s Store, project string, at, since time.Time, last, what string) poller.ProjectHealth {
	t.Helper()
	h, err := s.Health(context.Background(), project, at)
	if err != nil {
		t.Fatalf("%s: Health(%q): %v", what, project, err)
	}
	if got, want := h.Since, us(since); !got.Equal(want) {
		t.Fatalf("%s: Health(%q).Since = %v; want %v", what, project, got, want)
	}
	if got, want := h.LastSuccess.Name, last; got != want {
		t.Fatalf("%s: Health(%q).LastSuccess = %+v; want %q", what, project, h.LastSuccess, want)
	}
	return h
}

func testRecordSuccessAndHealth(t *testing.T, s Store) {
	health(t, s, "example-proj", base, base, "", "first Health")
	recordSuccess(t, s, success("s1", 1000, base.Add(time.Hour), "User"), base.Add(time.Hour), "", "first success")
	prev := recordSuccess(t, s, success("s2", 800, base.Add(2*time.Hour), "User"), base.Add(2*time.Hour), opName("s1"), "second success")
	if got, want := prev.Entities, int64(1000); got != want {
		t.Fatalf("second RecordSuccess: previous Entities = %v; want s1's %v", got, want)
	}
	if got, want := prev.At, us(base.Add(time.Hour)); got != want {
		t.Fatalf("second RecordSuccess: previous At = %v; want s1's end %v", got, want)
	}
	// Recorded again (a retried report), s2 still compares with s1.
	recordSuccess(t, s, success("s2", 800, base.Add(2*time.Hour), "User"), base.Add(3*time.Hour), opName("s1"), "repeated success")
	// Another filter has its own history.
	recordSuccess(t, s, success("s3", 5, base.Add(3*time.Hour), "Order"), base.Add(4*time.Hour), "", "another filter's success")
	h := health(t, s, "example-proj", base.Add(5*time.Hour), base, opName("s3"), "Health after the successes")
	if got, want := h.LastSuccess.At, us(base.Add(3*time.Hour)); got != want {
		t.Fatalf("Health.LastSuccess.At = %v; want s3's end %v", got, want)
	}
	// Successes that ended earlier, reported late, change neither the
	// filter's history nor the project's last success.
	recordSuccess(t, s, success("s0", 2000, base.Add(30*time.Minute), "User"), base.Add(5*time.Hour), "", "an older success of a filter")
	recordSuccess(t, s, success("a0", 3, base.Add(30*time.Minute), "Audit"), base.Add(5*time.Hour), "", "an older success of a new filter")
	health(t, s, "example-proj", base.Add(5*time.Hour), base, opName("s3"), "Health after older successes")
	recordSuccess(t, s, success("s4", 900, base.Add(6*time.Hour), "User"), base.Add(6*time.Hour), opName("s2"), "a success after an older one")
	health(t, s, "example-proj", base.Add(6*time.Hour), base, opName("s4"), "Health after a newer success")
}

// testHealthFirstSeen checks that a project first seen in a success, or in
// an alarm, is watched from then on.
func testHealthFirstSeen(t *testing.T, s Store) {
	other := success("o1", 7, base.Add(39*time.Hour), "User")
	other.Project = "other-proj"
	recordSuccess(t, s, other, base.Add(40*time.Hour), "", "another project's success")
	health(t, s, "other-proj", base.Add(41*time.Hour), base.Add(40*time.Hour), other.Name, "Health of a project first seen in a success")
	if ok, err := s.ClaimStaleAlarm(context.Background(), "third-proj", "h", base, base.Add(42*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm of a project never seen = %v, %v; want true", ok, err)
	}
	h := health(t, s, "third-proj", base.Add(43*time.Hour), base.Add(42*time.Hour), "", "Health of a project first seen in an alarm")
	if got, want := h.AlarmFor, us(base); !got.Equal(want) {
		t.Fatalf("Health of a project first seen in an alarm: AlarmFor = %v; want %v", got, want)
	}
}

func testStaleAlarm(t *testing.T, s Store) {
	ctx := context.Background()
	recordSuccess(t, s, success("s1", 1000, base.Add(time.Hour), "User"), base.Add(time.Hour), "", "first success")
	h := health(t, s, "example-proj", base.Add(5*time.Hour), base.Add(time.Hour), opName("s1"), "Health")
	forTime := h.LastSuccess.At
	if err := s.ReleaseStaleAlarm(ctx, "never-seen-proj", "a", forTime); err != nil {
		t.Fatalf("ReleaseStaleAlarm of a project with no health record = %v; want nil (nothing to release)", err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "a", forTime, base.Add(30*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm = %v, %v; want true", ok, err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "a", forTime, base.Add(30*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm by the claimer again (a late commit retried) = %v, %v; want true", ok, err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "b", forTime, base.Add(31*time.Hour)); err != nil || ok {
		t.Fatalf("second ClaimStaleAlarm for the same success = %v, %v; want false", ok, err)
	}
	// Another's release leaves the claim.
	if err := s.ReleaseStaleAlarm(ctx, "example-proj", "b", forTime); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "b", forTime, base.Add(31*time.Hour)); err != nil || ok {
		t.Fatalf("ClaimStaleAlarm after another's release = %v, %v; want false", ok, err)
	}
	h = health(t, s, "example-proj", base.Add(31*time.Hour), base.Add(time.Hour), opName("s1"), "Health after the claim")
	if got, want := h.AlarmFor, forTime; !got.Equal(want) {
		t.Fatalf("Health after the claim: AlarmFor = %v; want %v", got, want)
	}
	// Releasing another alarm's claim leaves this one.
	if err := s.ReleaseStaleAlarm(ctx, "example-proj", "a", forTime.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "b", forTime, base.Add(31*time.Hour)); err != nil || ok {
		t.Fatalf("ClaimStaleAlarm after releasing another alarm = %v, %v; want false", ok, err)
	}
	if err := s.ReleaseStaleAlarm(ctx, "example-proj", "a", forTime); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ClaimStaleAlarm(ctx, "example-proj", "b", forTime, base.Add(32*time.Hour)); err != nil || !ok {
		t.Fatalf("ClaimStaleAlarm after a release = %v, %v; want true", ok, err)
	}
}

// beginStart calls BeginStart and fails the test unless it decides verdict
// on the export named name.
func beginStart(t *testing.T, s Store, req poller.StartRequest, at time.Time, verdict poller.StartVerdict, name, what string) {
	t.Helper()
	d, err := s.BeginStart(context.Background(), req, at)
	if err != nil {
		t.Fatalf("%s: BeginStart = %v", what, err)
	}
	if got, want := d, (poller.StartDecision{Verdict: verdict, Name: name}); got != want {
		t.Fatalf("%s: BeginStart = %+v; want %+v", what, got, want)
	}
}

func endStart(t *testing.T, s Store, req poller.StartRequest, name string, at time.Time) {
	t.Helper()
	if err := s.EndStart(context.Background(), req, name, at); err != nil {
		t.Fatalf("EndStart(%q): %v", name, err)
	}
}

func testStarts(t *testing.T, s Store) {
	ctx := context.Background()
	cron := poller.StartRequest{Project: "example-proj", FilterKey: poller.FilterKey("example-proj", nil, nil),
		Trigger: poller.TriggerCron, CronWindow: time.Hour, PerMinute: 3}
	beginStart(t, s, cron, base, poller.StartGo, "", "first cron start")
	if _, err := s.BeginStart(ctx, cron, base.Add(time.Second)); !errors.Is(err, poller.ErrStartInProgress) {
		t.Fatalf("BeginStart during a start = %v; want ErrStartInProgress", err)
	}
	name := opName("cron-1")
	create(t, s, running(name), base)
	endStart(t, s, cron, name, base.Add(2*time.Second))
	// App Engine retries the cron request: it duplicates cron-1.
	beginStart(t, s, cron, base.Add(5*time.Minute), poller.StartDuplicate, name, "repeated cron start")
	manual := cron
	manual.Trigger = poller.TriggerManual
	beginStart(t, s, manual, base.Add(5*time.Minute), poller.StartRunning, name, "manual start while cron-1 runs")
	manual.Force = true
	beginStart(t, s, manual, base.Add(5*time.Minute), poller.StartGo, "", "forced start")
	endStart(t, s, manual, "", base.Add(5*time.Minute))
	// Past the window a cron start is a new one, even while cron-1 runs: a
	// daily export is never skipped silently.
	beginStart(t, s, cron, base.Add(2*time.Hour), poller.StartGo, "", "cron start past the window while cron-1 runs")
	endStart(t, s, cron, "", base.Add(2*time.Hour))
	if _, err := s.SetOutcome(ctx, name, poller.OutcomeSuccess, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	beginStart(t, s, cron, base.Add(2*time.Hour), poller.StartGo, "", "cron start after cron-1 ended")
	endStart(t, s, cron, "", base.Add(2*time.Hour))
	// Two cron starts in the minute of +2h above (PerMinute 3): one more of
	// another filter fills the minute, and the next is refused.
	other := poller.StartRequest{Project: "example-proj", FilterKey: poller.FilterKey("example-proj", []string{"Order"}, nil), Trigger: poller.TriggerManual, PerMinute: 3}
	beginStart(t, s, other, base.Add(2*time.Hour), poller.StartGo, "", "third start in the minute")
	endStart(t, s, other, "", base.Add(2*time.Hour))
	if _, err := s.BeginStart(ctx, other, base.Add(2*time.Hour+10*time.Second)); !errors.Is(err, poller.ErrRateLimited) {
		t.Fatalf("fourth start in a minute = %v; want ErrRateLimited", err)
	}
	// Another project has its own count.
	elsewhere := poller.StartRequest{Project: "other-proj", FilterKey: poller.FilterKey("other-proj", nil, nil), Trigger: poller.TriggerManual, PerMinute: 3}
	beginStart(t, s, elsewhere, base.Add(2*time.Hour+10*time.Second), poller.StartGo, "", "another project's start in the full minute")
	beginStart(t, s, other, base.Add(2*time.Hour+time.Minute), poller.StartGo, "", "a start in the next minute")
	endStart(t, s, other, "", base.Add(2*time.Hour+time.Minute))
	// With cron-1 ended, a manual start of its filter needs no force.
	manual.Force = false
	beginStart(t, s, manual, base.Add(2*time.Hour+30*time.Minute), poller.StartGo, "", "manual start after cron-1 ended")
	endStart(t, s, manual, "", base.Add(2*time.Hour+30*time.Minute))
	// A manual start's name is not a cron start to repeat.
	manualName := opName("manual-1")
	create(t, s, running(manualName), base.Add(3*time.Hour))
	endStart(t, s, other, manualName, base.Add(3*time.Hour))
	beginStart(t, s, other, base.Add(3*time.Hour), poller.StartRunning, manualName, "manual start while manual-1 runs")
	// A reservation that was never ended frees the filter after StartReservation.
	beginStart(t, s, elsewhere, base.Add(4*time.Hour), poller.StartGo, "", "elsewhere, reserved")
	if _, err := s.BeginStart(ctx, elsewhere, base.Add(4*time.Hour+poller.StartReservation-time.Second)); !errors.Is(err, poller.ErrStartInProgress) {
		t.Fatalf("BeginStart just before the reservation ends = %v; want ErrStartInProgress", err)
	}
	beginStart(t, s, elsewhere, base.Add(4*time.Hour+poller.StartReservation), poller.StartGo, "", "elsewhere, after the reservation")
}

// testStartHolders: a start's reservation names its holder. The holder's
// retry of a BeginStart that committed but answered late goes on without
// counting the start twice, and only the holder's EndStart ends it.
func testStartHolders(t *testing.T, s Store) {
	ctx := context.Background()
	a := poller.StartRequest{Project: "example-proj", FilterKey: poller.FilterKey("example-proj", nil, nil),
		Trigger: poller.TriggerManual, Force: true, PerMinute: 2, Holder: "a"}
	b := a
	b.Holder = "b"
	beginStart(t, s, a, base, poller.StartGo, "", "a's start")
	d, err := s.BeginStart(ctx, a, base.Add(time.Second))
	if err != nil || d != (poller.StartDecision{Verdict: poller.StartGo, Again: true}) {
		t.Fatalf("a's BeginStart again = %+v, %v; want go, again", d, err)
	}
	if _, err := s.BeginStart(ctx, b, base.Add(time.Second)); !errors.Is(err, poller.ErrStartInProgress) {
		t.Fatalf("b's BeginStart during a's = %v; want ErrStartInProgress", err)
	}
	endStart(t, s, b, "", base.Add(2*time.Second))
	if _, err := s.BeginStart(ctx, b, base.Add(3*time.Second)); !errors.Is(err, poller.ErrStartInProgress) {
		t.Fatalf("b's BeginStart after b's EndStart of a's reservation = %v; want ErrStartInProgress", err)
	}
	create(t, s, running(opName("a-1")), base)
	endStart(t, s, a, opName("a-1"), base.Add(4*time.Second))
	// a's retry did not count twice: b's start is the minute's second.
	beginStart(t, s, b, base.Add(5*time.Second), poller.StartGo, "", "b's start after a's ended")
	create(t, s, running(opName("b-1")), base)
	endStart(t, s, b, opName("b-1"), base.Add(6*time.Second))
	// a's EndStart again (its first committed but answered late) must not
	// bring a-1 back over b-1, the export the filter started last.
	endStart(t, s, a, opName("a-1"), base.Add(7*time.Second))
	manual := b
	manual.Force, manual.Holder = false, "c"
	beginStart(t, s, manual, base.Add(8*time.Second), poller.StartRunning, opName("b-1"), "an unforced start while b-1 runs")
}

// testConcurrentSuccesses: successes of many filters of one project at once
// (a burst of exports ending together) each write only their own filter's
// record, so none waits on another, each within a poller's 5 s step; the
// project's health then names the newest.
func testConcurrentSuccesses(t *testing.T, s Store) {
	const n = 24
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			rec := success(fmt.Sprint("burst-", i), 10, base.Add(time.Duration(i)*time.Minute), fmt.Sprint("Kind", i))
			if _, _, err := s.RecordSuccess(ctx, rec, base.Add(time.Hour)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("RecordSuccess in a burst: %v", err)
	}
	health(t, s, "example-proj", base.Add(2*time.Hour), base.Add(time.Hour), opName(fmt.Sprint("burst-", n-1)), "Health after the burst")
}

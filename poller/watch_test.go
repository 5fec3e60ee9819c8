package poller_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

// backupsAdmin is the BackupsAdmin port answering fixed lists, as the
// Firestore Admin API adapter would parse them, of a database in nam5 of
// uid dbUID; its calls are counted and it fails where told to.
type backupsAdmin struct {
	mu          sync.Mutex
	uid         string
	location    string
	schedules   []poller.BackupSchedule
	backups     []poller.Backup
	unreachable []string
	fail        map[string]error // by method
	calls       map[string]int
}

func newBackupsAdmin(l poller.Listing) *backupsAdmin {
	return &backupsAdmin{uid: dbUID, location: "nam5", schedules: l.Schedules, backups: l.Backups, fail: map[string]error{}, calls: map[string]int{}}
}

func (a *backupsAdmin) call(method string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls[method]++
	return a.fail[method]
}

func (a *backupsAdmin) set(f func(a *backupsAdmin)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	f(a)
}

func (a *backupsAdmin) Database(ctx context.Context, project, database string) (poller.DatabaseInfo, error) {
	if err := a.call("Database"); err != nil {
		return poller.DatabaseInfo{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return poller.DatabaseInfo{Name: "projects/" + project + "/databases/" + database, UID: a.uid, Location: a.location, Type: "DATASTORE_MODE"}, nil
}

func (a *backupsAdmin) BackupSchedules(ctx context.Context, project, database string) ([]poller.BackupSchedule, error) {
	if err := a.call("BackupSchedules"); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]poller.BackupSchedule(nil), a.schedules...), nil
}

func (a *backupsAdmin) Backups(ctx context.Context, project, databaseUID string) ([]poller.Backup, []string, error) {
	if err := a.call("Backups"); err != nil {
		return nil, nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if databaseUID != a.uid {
		return nil, nil, fmt.Errorf("backups of uid %q asked; the database's is %q", databaseUID, a.uid)
	}
	return append([]poller.Backup(nil), a.backups...), append([]string(nil), a.unreachable...), nil
}

// sent records the backup notices the poller's notifier delivered (the
// real Slack notifier to slackfake, which it wraps).
type sent struct {
	next    poller.Notifier
	mu      sync.Mutex
	kinds   []string // "kind backup-or-schedule"
	notices []poller.BackupNotice
}

func (s *sent) Notify(ctx context.Context, r poller.Report) error {
	if err := s.next.Notify(ctx, r); err != nil {
		return err
	}
	if r.Backup != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		about := r.Backup.Backup.Name
		switch r.Backup.Kind {
		case poller.NoticeShortRetention, poller.NoticeNoSchedule:
			about = r.Backup.Schedule.Name
		case poller.NoticeWatchFailing:
			about = r.Backup.Target
		}
		s.kinds = append(s.kinds, strings.TrimSpace(string(r.Backup.Kind)+" "+about))
		s.notices = append(s.notices, *r.Backup)
	}
	return nil
}

func (s *sent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.kinds...)
}

func (s *sent) allNotices() []poller.BackupNotice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]poller.BackupNotice(nil), s.notices...)
}

// watchRig is a poller whose sweep watches the backups that admin lists,
// on the in-memory store, reporting to slackfake through the real
// notifier; the clock stands at at0.
type watchRig struct {
	*testrig.Rig
	admin *backupsAdmin
	sent  *sent
}

func newWatchRig(t *testing.T, admin *backupsAdmin, configure ...func(*poller.Config)) *watchRig {
	t.Helper()
	w := &watchRig{admin: admin}
	w.Rig = testrig.New(t, 10, append([]func(*poller.Config){func(c *poller.Config) {
		w.sent = &sent{next: c.Notifier}
		c.Notifier, c.Backups, c.ShrinkWarn = w.sent, admin, 0.1
	}}, configure...)...)
	w.Clock.Advance(at0.Sub(w.Clock.Now()))
	return w
}

// sweep sweeps the watched target and returns what it did.
func (w *watchRig) sweep(t *testing.T) (poller.SweepResult, error) {
	t.Helper()
	return w.Poller.Sweep(context.Background(), []poller.Target{watched()})
}

func (w *watchRig) mustSweep(t *testing.T) poller.SweepResult {
	t.Helper()
	res, err := w.sweep(t)
	if err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	return res
}

// TestWatchRaisesEachAlarmOnce: each kind of notice is delivered by the
// sweep that first sees its condition and by no sweep after.
func TestWatchRaisesEachAlarmOnce(t *testing.T) {
	yesterday := ready("b-yesterday", 20*time.Hour, 1000)
	old := ready("b-old", 50*time.Hour, 1000)
	s1 := daily("s1", 14*24*time.Hour)
	tests := []struct {
		name string
		l    poller.Listing
		want string
	}{
		{"no schedule", withSchedules(listing(yesterday)), "no-schedule"},
		{"missing", listing(old), "missing " + old.Name},
		{"not available", listing(yesterday, inState(old, poller.BackupNotAvailable)), "not-available " + old.Name},
		{"stuck", listing(yesterday, inState(ready("c1", 25*time.Hour, 0), poller.BackupCreating)), "stuck " + bname("c1")},
		{"short retention", withSchedules(listing(yesterday), daily("s1", 3*24*time.Hour)), "short-retention " + s1.Name},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWatchRig(t, newBackupsAdmin(tt.l))
			res := w.mustSweep(t)
			// The first watch reports the newest READY backup too.
			var want []string
			if n := newestReady(tt.l.Backups); n != "" {
				want = append(want, "ready "+n)
			}
			want = append([]string{tt.want}, want...)
			if got := w.sent.all(); !sameSet(got, want) {
				t.Fatalf("first sweep sent %q; want %q", got, want)
			}
			if res.Notices != len(want) {
				t.Errorf("SweepResult.Notices = %d; want %d", res.Notices, len(want))
			}
			w.Clock.Advance(10 * time.Minute)
			if res := w.mustSweep(t); res.Notices != 0 {
				t.Errorf("second sweep: %d notices; want none", res.Notices)
			}
			// Even a sweep that lost the watch's state sends nothing again:
			// the claims keep each notice once.
			if err := w.Store.SaveWatchState(context.Background(), poller.WatchState{Target: "analytics", Since: at0}); err != nil {
				t.Fatal(err)
			}
			w.mustSweep(t)
			if got := w.sent.all(); len(got) != len(want) {
				t.Fatalf("after three sweeps sent %q; want %q once", got, want)
			}
			if got := len(w.Slack.Messages()); got != len(want) {
				t.Errorf("Slack holds %d messages; want %d", got, len(want))
			}
		})
	}
}

func newestReady(bs []poller.Backup) string {
	var newest poller.Backup
	for _, b := range bs {
		if b.State == poller.BackupReady && !b.SnapshotTime.Before(newest.SnapshotTime) {
			newest = b
		}
	}
	return newest.Name
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	count := map[string]int{}
	for _, s := range a {
		count[s]++
	}
	for _, s := range b {
		count[s]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestWatchShrankAndReady: a new READY backup notably smaller than the one
// before raises the shrink and is reported; both are recorded.
func TestWatchShrankAndReady(t *testing.T) {
	old := ready("b-old", 30*time.Hour, 1000)
	admin := newBackupsAdmin(listing(old))
	w := newWatchRig(t, admin)
	w.mustSweep(t)
	small := ready("b-small", -2*time.Hour, 600)
	admin.set(func(a *backupsAdmin) { a.backups = append(a.backups, small) })
	w.Clock.Advance(3 * time.Hour)
	res := w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name, "shrank " + small.Name, "ready " + small.Name}; !sameSet(got, want) {
		t.Fatalf("sent %q; want %q", got, want)
	}
	if res.BackupsRecorded != 1 || res.Notices != 2 {
		t.Errorf("SweepResult = %+v; want 1 backup recorded, 2 notices", res)
	}
	bs, err := w.Store.Backups(context.Background(), "analytics", 10)
	if err != nil || len(bs) != 2 || bs[0].Name != small.Name || bs[0].Documents != 600 || bs[1].Name != old.Name {
		t.Fatalf("recorded backups = %+v, %v; want b-small (600 documents), b-old", bs, err)
	}
}

// TestWatchFirstWatchDoesNotFlood: a database with 14 backups, watched for
// the first time, has them all recorded and the newest alone reported.
func TestWatchFirstWatchDoesNotFlood(t *testing.T) {
	var bs []poller.Backup
	for i := range 14 {
		bs = append(bs, ready(fmt.Sprint("d", i), time.Duration(14-i)*24*time.Hour-time.Hour, 1000))
	}
	w := newWatchRig(t, newBackupsAdmin(listing(bs...)))
	res := w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + bname("d13")}; !sameSet(got, want) {
		t.Fatalf("first watch sent %q; want %q", got, want)
	}
	if res.BackupsRecorded != 14 {
		t.Errorf("first watch recorded %d backups; want 14", res.BackupsRecorded)
	}
	recorded, err := w.Store.Backups(context.Background(), "analytics", 100)
	if err != nil || len(recorded) != 14 || recorded[0].Name != bname("d13") {
		t.Fatalf("recorded = %d backups (newest %v), %v; want 14, d13 first", len(recorded), backupNamesOf(recorded), err)
	}
	w.Clock.Advance(time.Hour)
	if res := w.mustSweep(t); res.Notices != 0 || res.BackupsRecorded != 0 {
		t.Fatalf("second sweep = %+v; want nothing new", res)
	}
}

func backupNamesOf(bs []poller.Backup) []string {
	var ns []string
	for _, b := range bs {
		ns = append(ns, b.Name)
	}
	return ns
}

// TestWatchUnreachableSuppressesMissing: with the database's own location
// not answering (nam5, named by its id or in full), the newest backup may
// be there: no alarm, a log line; once it answers, the alarm is raised
// once. Another location not answering hides none of the database's
// backups: the alarm is not held back.
func TestWatchUnreachableSuppressesMissing(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	for _, own := range []string{"nam5", "projects/shop-prod/locations/nam5"} {
		t.Run(own, func(t *testing.T) {
			admin := newBackupsAdmin(listing(old))
			admin.unreachable = []string{"europe-west3", own}
			w := newWatchRig(t, admin)
			w.mustSweep(t)
			if got, want := w.sent.all(), []string{"ready " + old.Name}; !sameSet(got, want) {
				t.Fatalf("with the database's location unreachable sent %q; want %q alone", got, want)
			}
			if logs := w.Logs.String(); !strings.Contains(logs, "location did not answer") || !strings.Contains(logs, "nam5") {
				t.Fatalf("logs say nothing of the missing backup not raised:\n%s", logs)
			}
			admin.set(func(a *backupsAdmin) { a.unreachable = []string{"europe-west3"} })
			w.Clock.Advance(10 * time.Minute)
			w.mustSweep(t)
			w.Clock.Advance(10 * time.Minute)
			w.mustSweep(t)
			if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) {
				t.Fatalf("with the database's location answering sent %q; want %q", got, want)
			}
		})
	}
	t.Run("another location", func(t *testing.T) {
		admin := newBackupsAdmin(listing(old))
		admin.unreachable = []string{"europe-west3", "projects/shop-prod/locations/asia-northeast1"}
		w := newWatchRig(t, admin)
		w.mustSweep(t)
		if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) {
			t.Fatalf("with other locations unreachable sent %q; want %q", got, want)
		}
	})
	t.Run("location unknown", func(t *testing.T) {
		admin := newBackupsAdmin(listing(old))
		admin.location, admin.unreachable = "", []string{"europe-west3"}
		w := newWatchRig(t, admin)
		w.mustSweep(t)
		if got, want := w.sent.all(), []string{"ready " + old.Name}; !sameSet(got, want) {
			t.Fatalf("with the database's location unknown and a location unreachable sent %q; want %q alone", got, want)
		}
	})
}

// TestWatchFailedSendIsRetried: a notice Slack refuses is given back and
// delivered once by the next sweep; a READY backup whose report failed
// stays new until it is out.
func TestWatchFailedSendIsRetried(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	w := newWatchRig(t, newBackupsAdmin(listing(old)))
	w.Slack.SetChannels("#elsewhere") // the bot is not in the channel
	res, err := w.sweep(t)
	if err == nil || !strings.Contains(err.Error(), "analytics") || res.Notices != 0 {
		t.Fatalf("Sweep while Slack refuses = %+v, %v; want an error naming the target, no notice", res, err)
	}
	if len(w.sent.all()) != 0 {
		t.Fatalf("sent %q while Slack refuses", w.sent.all())
	}
	w.Slack.SetChannels(testrig.SlackChannel)
	// Well within ClaimTTL: the failed sweep gave its claims back.
	w.Clock.Advance(time.Second)
	res = w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) || res.Notices != 2 {
		t.Fatalf("next sweep sent %q (%d); want %q", got, res.Notices, want)
	}
	w.Clock.Advance(10 * time.Minute)
	w.mustSweep(t)
	if got := len(w.Slack.Messages()); got != 2 {
		t.Fatalf("Slack holds %d messages after three sweeps; want 2", got)
	}
}

// TestWatchConcurrentSweeps: sweeps of two instances at once, and sweeps
// one after the other, deliver each notice once.
func TestWatchConcurrentSweeps(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	l := listing(old, inState(ready("gone", 70*time.Hour, 0), poller.BackupNotAvailable),
		inState(ready("c1", 30*time.Hour, 0), poller.BackupCreating))
	l.Schedules = []poller.BackupSchedule{daily("s1", 24*time.Hour)}
	admin := newBackupsAdmin(l)
	w := newWatchRig(t, admin)
	// A second instance: its own poller on the same store, Slack and clock.
	other := poller.New(poller.Config{Store: w.Store, Notifier: w.sent, Backups: admin, Clock: w.Clock, Logger: w.Logger,
		Interval: time.Minute, MaxPolls: 10, ShrinkWarn: 0.1})
	const n = 4
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for i := range 2 * n {
		p := w.Poller
		if i%2 == 1 {
			p = other
		}
		wg.Go(func() {
			if _, err := p.Sweep(context.Background(), []poller.Target{watched()}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Sweep: %v", err)
	}
	w.Clock.Advance(10 * time.Minute)
	w.mustSweep(t)
	if _, err := other.Sweep(context.Background(), []poller.Target{watched()}); err != nil {
		t.Fatal(err)
	}
	want := []string{"ready " + old.Name, "missing " + old.Name, "not-available " + bname("gone"),
		"stuck " + bname("c1"), "short-retention " + daily("s1", 0).Name}
	if got := w.sent.all(); !sameSet(got, want) {
		t.Fatalf("sent %q; want %q, each once", got, want)
	}
}

// TestWatchLiveClaimIsLeftAlone: a notice another sweep claimed is not
// sent while its claim is live, and is taken over once it is older than
// ClaimTTL (that sweep died while sending).
func TestWatchLiveClaimIsLeftAlone(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	w := newWatchRig(t, newBackupsAdmin(listing(old)), func(c *poller.Config) { c.ClaimTTL = 5 * time.Minute })
	ctx := context.Background()
	if _, ok, err := w.Store.ClaimNotice(ctx, "analytics", "missing:"+old.Name, "dying-sweep", at0, 5*time.Minute); err != nil || !ok {
		t.Fatal(ok, err)
	}
	w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name}; !sameSet(got, want) {
		t.Fatalf("with the missing alarm claimed by a live sweep sent %q; want %q", got, want)
	}
	w.Clock.Advance(5 * time.Minute)
	w.mustSweep(t)
	w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) {
		t.Fatalf("after ClaimTTL sent %q; want %q", got, want)
	}
}

// TestWatchAdminErrorsRaiseWatchFailing: whichever Admin API call fails,
// each sweep returns the failure and watches nothing; once the failures
// have lasted the recurrence's allowance (two days), one watch-failing
// notice per target says so, whatever the sweeps after; other targets are
// swept all the same. A listing that succeeds ends the stretch, and a new
// stretch raises a new notice.
func TestWatchAdminErrorsRaiseWatchFailing(t *testing.T) {
	for _, method := range []string{"Database", "BackupSchedules", "Backups"} {
		t.Run(method, func(t *testing.T) {
			admin := newBackupsAdmin(withSchedules(listing()))
			failure := fmt.Errorf("%s: googleapi: Error 403: The caller does not have permission: %w", method, poller.ErrTransient)
			admin.fail[method] = failure
			w := newWatchRig(t, admin)
			second := watched()
			second.Name = "second"
			targets := []poller.Target{watched(), second}
			sweep := func(after time.Duration) {
				t.Helper()
				w.Clock.Advance(after)
				_, err := w.Poller.Sweep(context.Background(), targets)
				if !errors.Is(err, poller.ErrTransient) || !strings.Contains(err.Error(), "analytics") || !strings.Contains(err.Error(), "second") {
					t.Fatalf("Sweep = %v; want the Admin API's failure for both targets", err)
				}
			}
			sweep(0)
			sweep(24 * time.Hour)
			sweep(24*time.Hour - time.Second)
			if got := w.sent.all(); len(got) != 0 {
				t.Fatalf("sent %q while the Admin API failed for less than two days; want nothing", got)
			}
			if got, want := admin.calls["Database"], 6; got != want {
				t.Errorf("Database called %d times; want %d (each target, each sweep)", got, want)
			}
			st, err := w.Store.WatchState(context.Background(), "analytics")
			if err != nil || !st.First() || !st.FailingSince.Equal(at0) {
				t.Fatalf("WatchState = %+v, %v; want never watched, failing since %v", st, err, at0)
			}
			sweep(time.Second)
			sweep(time.Hour)
			sweep(5 * 24 * time.Hour)
			want := []string{"watch-failing analytics", "watch-failing second"}
			if got := w.sent.all(); !sameSet(got, want) {
				t.Fatalf("after two days of failures and more sent %q; want %q, once each", got, want)
			}
			if got := len(w.Slack.Messages()); got != 2 {
				t.Errorf("Slack holds %d messages; want 2", got)
			}
			n := w.sent.allNotices()[0]
			if !n.Since.Equal(at0) || n.Expected != 48*time.Hour || !strings.Contains(n.Error, "Error 403: The caller does not have permission") {
				t.Errorf("watch-failing notice = since %v, expected %v, error %q; want since %v, 48h, the API's failure", n.Since, n.Expected, n.Error, at0)
			}
			// Once the API answers, the database without a schedule nor a
			// backup is watched from then: no schedule, and no backup
			// missing yet; the failure is over.
			admin.set(func(a *backupsAdmin) { delete(a.fail, method) })
			w.Clock.Advance(time.Minute)
			if _, err := w.Poller.Sweep(context.Background(), targets); err != nil {
				t.Fatalf("Sweep once the API answers: %v", err)
			}
			if got, want := w.sent.all()[2:], []string{"no-schedule", "no-schedule"}; !sameSet(got, want) {
				t.Fatalf("once the API answers sent %q; want %q", got, want)
			}
			for _, target := range []string{"analytics", "second"} {
				if st, err := w.Store.WatchState(context.Background(), target); err != nil || !st.FailingSince.IsZero() || st.First() {
					t.Fatalf("WatchState(%s) once the API answers = %+v, %v; want watched, not failing", target, st, err)
				}
			}
			// A new stretch of failures: raised again once it lasts.
			admin.set(func(a *backupsAdmin) { a.fail[method] = failure })
			sweep(time.Hour)
			again := w.Clock.Now()
			sweep(47 * time.Hour)
			if got := len(w.sent.all()); got != 4 {
				t.Fatalf("a new stretch of failures of 47h sent %q; want nothing new", w.sent.all()[4:])
			}
			sweep(time.Hour)
			sweep(time.Hour)
			if got, want := w.sent.all()[4:], want; !sameSet(got, want) {
				t.Fatalf("a new stretch of failures of 49h sent %q; want %q", got, want)
			}
			if n := w.sent.allNotices()[4]; !n.Since.Equal(again) {
				t.Errorf("second watch-failing notice since %v; want %v", n.Since, again)
			}
		})
	}
}

// TestWatchFailingConcurrentSweeps: sweeps of two instances at once, past
// the allowance of a watch that keeps failing, deliver one notice.
func TestWatchFailingConcurrentSweeps(t *testing.T) {
	admin := newBackupsAdmin(listing())
	admin.fail["Database"] = fmt.Errorf("get database: googleapi: Error 404: database not found: %w", poller.ErrOperationGone)
	w := newWatchRig(t, admin)
	other := poller.New(poller.Config{Store: w.Store, Notifier: w.sent, Backups: admin, Clock: w.Clock, Logger: w.Logger,
		Interval: time.Minute, MaxPolls: 10, ShrinkWarn: 0.1})
	if _, err := w.sweep(t); err == nil {
		t.Fatal("Sweep while the database is gone succeeded")
	}
	w.Clock.Advance(48 * time.Hour)
	const n = 4
	var wg sync.WaitGroup
	for i := range 2 * n {
		p := w.Poller
		if i%2 == 1 {
			p = other
		}
		wg.Go(func() {
			if _, err := p.Sweep(context.Background(), []poller.Target{watched()}); !errors.Is(err, poller.ErrOperationGone) {
				t.Errorf("concurrent Sweep = %v; want the Admin API's failure", err)
			}
		})
	}
	wg.Wait()
	w.Clock.Advance(time.Hour)
	w.sweep(t)
	if got, want := w.sent.all(), []string{"watch-failing analytics"}; !sameSet(got, want) {
		t.Fatalf("sent %q; want %q once", got, want)
	}
}

// TestWatchDatabaseUID: a uid of 64 bytes, the most the adapter takes, is
// listed by whole; a longer one is refused, not cut, and nothing is listed
// by it.
func TestWatchDatabaseUID(t *testing.T) {
	uid := strings.Repeat("a1b2", 16)
	b := ready("b1", time.Hour, 10)
	b.DatabaseUID = uid
	admin := newBackupsAdmin(listing(b))
	admin.uid = uid
	w := newWatchRig(t, admin)
	if res := w.mustSweep(t); res.BackupsRecorded != 1 {
		t.Fatalf("with a uid of %d bytes: %+v; want its backup recorded", len(uid), res)
	}
	admin.set(func(a *backupsAdmin) { a.uid = uid + "c" })
	calls := admin.calls["Backups"]
	_, err := w.sweep(t)
	if err == nil || !strings.Contains(err.Error(), "uid of 65 bytes") || admin.calls["Backups"] != calls {
		t.Fatalf("with a uid of 65 bytes: %v, Backups called %d more times; want the uid refused, nothing listed", err, admin.calls["Backups"]-calls)
	}
}

// TestSweepWatchesOnlyTargetsWithBackups: a target without Backups, or a
// poller without Config.Backups, lists nothing.
func TestSweepWatchesOnlyTargetsWithBackups(t *testing.T) {
	admin := newBackupsAdmin(listing(ready("b1", time.Hour, 1)))
	w := newWatchRig(t, admin)
	exported := poller.Target{Name: "orders", Project: "shop-prod", Database: poller.DefaultDatabase}
	if _, err := w.Poller.Sweep(context.Background(), []poller.Target{exported}); err != nil {
		t.Fatal(err)
	}
	if got := admin.calls["Database"]; got != 0 {
		t.Fatalf("a target without Backups: Database called %d times; want 0", got)
	}
	plain := poller.New(poller.Config{Store: w.Store, Notifier: w.sent, Clock: w.Clock, Logger: w.Logger, Interval: time.Minute, MaxPolls: 10})
	if _, err := plain.Sweep(context.Background(), []poller.Target{watched()}); err != nil {
		t.Fatal(err)
	}
	if got := admin.calls["Database"]; got != 0 {
		t.Fatalf("a poller without Backups: Database called %d times; want 0", got)
	}
	if _, err := plain.WatchBackups(context.Background(), watched()); !errors.Is(err, poller.ErrNoBackupWatch) {
		t.Fatalf("WatchBackups without Backups = %v; want ErrNoBackupWatch", err)
	}
}

// TestWatchStopLeavesTheRest: a watch told to stop before its notices
// sends none and leaves them all to the next sweep, which sends each once.
func TestWatchStopLeavesTheRest(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	admin := newBackupsAdmin(listing(old))
	w := newWatchRig(t, admin)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := w.Poller.WatchBackups(ctx, watched())
	if !errors.Is(err, context.Canceled) || res.Notices != 0 || res.Unsent != 2 {
		t.Fatalf("stopped WatchBackups = %+v, %v; want context.Canceled, 2 notices left", res, err)
	}
	if got := w.sent.all(); len(got) != 0 {
		t.Fatalf("a stopped watch sent %q", got)
	}
	w.mustSweep(t)
	w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) {
		t.Fatalf("the next sweeps sent %q; want %q", got, want)
	}
}

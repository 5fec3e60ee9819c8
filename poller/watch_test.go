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
// Firestore Admin API adapter would parse them; its calls are counted and
// it fails where told to.
type backupsAdmin struct {
	mu          sync.Mutex
	schedules   []poller.BackupSchedule
	backups     []poller.Backup
	unreachable []string
	fail        map[string]error // by method
	calls       map[string]int
}

func newBackupsAdmin(l poller.Listing) *backupsAdmin {
	return &backupsAdmin{schedules: l.Schedules, backups: l.Backups, fail: map[string]error{}, calls: map[string]int{}}
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
	return poller.DatabaseInfo{Name: "projects/" + project + "/databases/" + database, UID: dbUID, Type: "DATASTORE_MODE"}, nil
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
	if databaseUID != dbUID {
		return nil, nil, fmt.Errorf("backups of uid %q asked; the database's is %q", databaseUID, dbUID)
	}
	return append([]poller.Backup(nil), a.backups...), append([]string(nil), a.unreachable...), nil
}

// sent records the backup notices the poller's notifier delivered (the
// real Slack notifier to slackfake, which it wraps).
type sent struct {
	next  poller.Notifier
	mu    sync.Mutex
	kinds []string // "kind backup-or-schedule"
}

func (s *sent) Notify(ctx context.Context, r poller.Report) error {
	if err := s.next.Notify(ctx, r); err != nil {
		return err
	}
	if r.Backup != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		about := r.Backup.Backup.Name
		if r.Backup.Kind == poller.NoticeShortRetention || r.Backup.Kind == poller.NoticeNoSchedule {
			about = r.Backup.Schedule.Name
		}
		s.kinds = append(s.kinds, strings.TrimSpace(string(r.Backup.Kind)+" "+about))
	}
	return nil
}

func (s *sent) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.kinds...)
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

// TestWatchUnreachableSuppressesMissing: with a location not answering,
// the newest backup may be there: no alarm, a log line; once every
// location answers, the alarm is raised once.
func TestWatchUnreachableSuppressesMissing(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	admin := newBackupsAdmin(listing(old))
	admin.unreachable = []string{"europe-west3"}
	w := newWatchRig(t, admin)
	w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name}; !sameSet(got, want) {
		t.Fatalf("with a location unreachable sent %q; want %q alone", got, want)
	}
	if !strings.Contains(w.Logs.String(), "some locations did not answer") || !strings.Contains(w.Logs.String(), "europe-west3") {
		t.Fatalf("logs say nothing of the missing backup not raised:\n%s", w.Logs.String())
	}
	admin.set(func(a *backupsAdmin) { a.unreachable = nil })
	w.Clock.Advance(10 * time.Minute)
	w.mustSweep(t)
	w.Clock.Advance(10 * time.Minute)
	w.mustSweep(t)
	if got, want := w.sent.all(), []string{"ready " + old.Name, "missing " + old.Name}; !sameSet(got, want) {
		t.Fatalf("with every location answering sent %q; want %q", got, want)
	}
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

// TestWatchAdminErrorsDoNotAlarm: whichever Admin API call fails, the sweep
// returns the failure, watches nothing, and raises no alarm however long
// it lasts; other targets are swept all the same.
func TestWatchAdminErrorsDoNotAlarm(t *testing.T) {
	for _, method := range []string{"Database", "BackupSchedules", "Backups"} {
		t.Run(method, func(t *testing.T) {
			admin := newBackupsAdmin(withSchedules(listing()))
			failure := fmt.Errorf("%s: 503 Service Unavailable: %w", method, poller.ErrTransient)
			admin.fail[method] = failure
			w := newWatchRig(t, admin)
			second := watched()
			second.Name = "second"
			for range 3 {
				_, err := w.Poller.Sweep(context.Background(), []poller.Target{watched(), second})
				if !errors.Is(err, poller.ErrTransient) || !strings.Contains(err.Error(), "analytics") || !strings.Contains(err.Error(), "second") {
					t.Fatalf("Sweep = %v; want the Admin API's failure for both targets", err)
				}
				w.Clock.Advance(24 * time.Hour)
			}
			if got := w.sent.all(); len(got) != 0 {
				t.Fatalf("sent %q while the Admin API fails; want nothing", got)
			}
			if got, want := admin.calls["Database"], 6; got != want {
				t.Errorf("Database called %d times; want %d (each target, each sweep)", got, want)
			}
			st, err := w.Store.WatchState(context.Background(), "analytics")
			if err != nil || !st.First() {
				t.Fatalf("WatchState = %+v, %v; want none written", st, err)
			}
			// Once the API answers, the database without a schedule nor a
			// backup is watched from then: no schedule, and no backup
			// missing yet.
			admin.set(func(a *backupsAdmin) { delete(a.fail, method) })
			w.mustSweep(t)
			if got, want := w.sent.all(), []string{"no-schedule"}; !sameSet(got, want) {
				t.Fatalf("once the API answers sent %q; want %q", got, want)
			}
		})
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

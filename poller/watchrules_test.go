package poller_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// watched is a target whose daily backups are watched, with a retention of
// at least a week and every new backup reported.
func watched() poller.Target {
	return poller.Target{Name: "analytics", Project: "shop-prod", Database: "analytics",
		Backups: &poller.BackupWatch{Recurrence: poller.Daily, Retention: 7 * 24 * time.Hour, Report: true}}
}

const dbUID = "6b1f2a3c-0000-4000-8000-000000000001"

func bname(id string) string { return "projects/shop-prod/locations/nam5/backups/" + id }

// ready is a READY backup named id of documents, taken ago before at0.
func ready(id string, ago time.Duration, documents int64) poller.Backup {
	return poller.Backup{Name: bname(id), Database: "projects/shop-prod/databases/analytics", DatabaseUID: dbUID,
		State: poller.BackupReady, SnapshotTime: at0.Add(-ago), ExpireTime: at0.Add(-ago + 14*24*time.Hour),
		Documents: documents, Bytes: documents * 100}
}

func inState(b poller.Backup, s poller.BackupState) poller.Backup {
	b.State = s
	if s != poller.BackupReady {
		b.Documents, b.Bytes = 0, 0
	}
	return b
}

func daily(id string, retention time.Duration) poller.BackupSchedule {
	return poller.BackupSchedule{Name: "projects/shop-prod/databases/analytics/backupSchedules/" + id, Recurrence: poller.Daily, Retention: retention}
}

// listing is what the API lists of the watched database: a daily schedule
// keeping backups two weeks, and backups.
func listing(backups ...poller.Backup) poller.Listing {
	return poller.Listing{Database: poller.DatabaseInfo{Name: "projects/shop-prod/databases/analytics", UID: dbUID},
		Schedules: []poller.BackupSchedule{daily("s1", 14*24*time.Hour)}, Backups: backups}
}

// watching is the state of a target watched since a month, which knows
// the backups named.
func watching(recorded ...poller.Backup) poller.WatchState {
	st := poller.WatchState{Target: "analytics", Since: at0.Add(-30 * 24 * time.Hour), Schedules: []string{daily("s1", 0).Name}}
	for _, b := range recorded {
		st.Recorded = append(st.Recorded, b.Name)
		if !b.SnapshotTime.Before(st.NewestReadyAt) {
			st.NewestReady, st.NewestReadyAt = b.Name, b.SnapshotTime
		}
	}
	slices.Sort(st.Recorded)
	return st
}

func keys(ns []poller.Notice) []string {
	var ks []string
	for _, n := range ns {
		ks = append(ks, n.Key)
	}
	return ks
}

func TestCheckBackupsAlarms(t *testing.T) {
	yesterday := ready("b-yesterday", 20*time.Hour, 1000)
	old := ready("b-old", 48*time.Hour, 1000)
	tests := []struct {
		name   string
		target func(*poller.Target)
		l      poller.Listing
		state  poller.WatchState
		shrink float64
		want   []string
	}{
		{"all well", nil, listing(yesterday), watching(yesterday), 0.1, nil},

		{"schedules deleted", nil, poller.Listing{Database: listing().Database, Backups: []poller.Backup{yesterday}}, watching(yesterday),
			0, []string{"no-schedule:" + daily("s1", 0).Name}},
		{"first watch without a schedule", nil, poller.Listing{Database: listing().Database}, poller.WatchState{Target: "analytics"}, 0,
			[]string{"no-schedule:never"}},

		{"newest READY 47h old", nil, listing(ready("b1", 47*time.Hour, 1000)), watching(ready("b1", 47*time.Hour, 1000)), 0, nil},
		{"newest READY 48h old", nil, listing(old), watching(old), 0, []string{"missing:" + old.Name}},
		{"a CREATING one does not count", nil, listing(old, inState(ready("b-now", time.Hour, 0), poller.BackupCreating)), watching(old), 0,
			[]string{"missing:" + old.Name}},
		{"weekly, 7 days old", weekly, listing(ready("w1", 7*24*time.Hour, 1)), watching(ready("w1", 7*24*time.Hour, 1)), 0, nil},
		{"weekly, 8 days old", weekly, listing(ready("w1", 8*24*time.Hour, 1)), watching(ready("w1", 8*24*time.Hour, 1)), 0,
			[]string{"missing:" + bname("w1")}},
		{"none ever, watched 2 days", nil, listing(), watching(), 0, []string{"missing:none"}},
		{"none ever, first watch", nil, listing(), poller.WatchState{Target: "analytics"}, 0, nil},
		{"the newest expired from the list", nil, listing(), watching(old), 0, []string{"missing:" + old.Name}},
		{"missing but locations unreachable", nil, unreachable(listing(old)), watching(old), 0, nil},
		{"missing, the database's location unreachable", nil, unreachable(in("nam5", listing(old))), watching(old), 0, nil},
		{"missing, another location unreachable", nil, elsewhere(in("nam5", listing(old))), watching(old), 0, []string{"missing:" + old.Name}},

		{"NOT_AVAILABLE", nil, listing(yesterday, inState(old, poller.BackupNotAvailable)), watching(yesterday), 0,
			[]string{"not-available:" + old.Name}},

		{"CREATING 23h", nil, listing(yesterday, inState(ready("c1", 23*time.Hour, 0), poller.BackupCreating)), watching(yesterday), 0, nil},
		{"CREATING 24h", nil, listing(yesterday, inState(ready("c1", 24*time.Hour, 0), poller.BackupCreating)), watching(yesterday), 0,
			[]string{"stuck:" + bname("c1")}},

		{"retention shorter", nil, withSchedules(listing(yesterday), daily("s1", 6*24*time.Hour)), watching(yesterday), 0,
			[]string{"retention:" + daily("s1", 0).Name + ":144h0m0s"}},
		{"retention not given by the API", nil, withSchedules(listing(yesterday), daily("s1", 0)), watching(yesterday), 0, nil},
		{"retention not asked for", noRetention, withSchedules(listing(yesterday), daily("s1", 24*time.Hour)), watching(yesterday), 0, nil},

		{"documents shrank 20%", nil, listing(old, ready("b-new", time.Hour, 800)), watching(old), 0.1,
			[]string{"shrank:" + bname("b-new"), "ready:" + bname("b-new")}},
		{"bytes shrank 50%", nil, listing(old, withBytes(ready("b-new", time.Hour, 1000), 50_000)), watching(old), 0.1,
			[]string{"shrank:" + bname("b-new"), "ready:" + bname("b-new")}},
		{"shrank within the warning", nil, listing(old, ready("b-new", time.Hour, 950)), watching(old), 0.1, []string{"ready:" + bname("b-new")}},
		{"no shrink warning", nil, listing(old, ready("b-new", time.Hour, 1)), watching(old), 0, []string{"ready:" + bname("b-new")}},
		{"an old pair that shrank is no news", nil, listing(old, ready("b-new", time.Hour, 1)), watching(old, ready("b-new", time.Hour, 1)), 0.1, nil},

		{"new READY, not reported", quiet, listing(old, ready("b-new", time.Hour, 1000)), watching(old), 0, nil},
		{"another database's backup", nil, listing(yesterday, foreign(ready("f1", time.Hour, 5))), watching(yesterday), 0.1, nil},
		{"raised already", nil, listing(old), raised(watching(old), "missing:"+old.Name), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := watched()
			if tt.target != nil {
				tt.target(&target)
			}
			c := poller.CheckBackups(target, tt.l, tt.state, at0, tt.shrink)
			if got := keys(c.Notices); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("CheckBackups notices = %q; want %q", got, tt.want)
			}
			for _, n := range c.Notices {
				if n.Target != "analytics" || n.Project != "shop-prod" || n.Database != "analytics" {
					t.Errorf("notice %s is about %s %s/%s; want analytics shop-prod/analytics", n.Key, n.Target, n.Project, n.Database)
				}
			}
		})
	}
}

func weekly(t *poller.Target)      { t.Backups.Recurrence = poller.Weekly }
func noRetention(t *poller.Target) { t.Backups.Retention = 0 }
func quiet(t *poller.Target)       { t.Backups.Report = false }

func unreachable(l poller.Listing) poller.Listing {
	l.Unreachable = []string{"nam5"}
	return l
}

// in is l of a database in location loc.
func in(loc string, l poller.Listing) poller.Listing {
	l.Database.Location = loc
	return l
}

// elsewhere is l with a location not the database's unreachable.
func elsewhere(l poller.Listing) poller.Listing {
	l.Unreachable = []string{"projects/shop-prod/locations/europe-west3"}
	return l
}

func withSchedules(l poller.Listing, s ...poller.BackupSchedule) poller.Listing {
	l.Schedules = s
	return l
}

func withBytes(b poller.Backup, n int64) poller.Backup {
	b.Bytes = n
	return b
}

func foreign(b poller.Backup) poller.Backup {
	b.DatabaseUID = "another-uid"
	return b
}

func raised(st poller.WatchState, keys ...string) poller.WatchState {
	st.Raised = keys
	return st
}

// TestCheckBackupsNoticeFacts checks what each notice tells.
func TestCheckBackupsNoticeFacts(t *testing.T) {
	old := ready("b-old", 60*time.Hour, 1000)
	l := listing(old, ready("b-new", time.Hour, 750))
	c := poller.CheckBackups(watched(), l, watching(old), at0, 0.1)
	if len(c.Notices) != 2 || c.Notices[0].Kind != poller.NoticeShrank || c.Notices[1].Kind != poller.NoticeReady {
		t.Fatalf("notices = %q; want shrank, ready", keys(c.Notices))
	}
	sh := c.Notices[0]
	if sh.Previous.Name != old.Name || sh.Backup.Name != bname("b-new") || sh.Shrink != 0.25 {
		t.Errorf("shrank = %s after %s by %v; want b-new after b-old by 0.25", sh.Backup.Name, sh.Previous.Name, sh.Shrink)
	}
	c = poller.CheckBackups(watched(), listing(old), watching(old), at0, 0)
	m := c.Notices[0]
	if m.Kind != poller.NoticeMissing || m.Expected != 48*time.Hour || !m.Since.Equal(old.SnapshotTime) || m.Backup != old {
		t.Errorf("missing = %+v; want the 48h allowance since b-old's snapshot, about b-old", m.BackupNotice)
	}
	st := watching()
	c = poller.CheckBackups(watched(), listing(), st, at0, 0)
	if m := c.Notices[0]; !m.Since.Equal(st.Since) || m.Backup.Name != "" {
		t.Errorf("missing with none ever = since %v about %q; want since the first watch %v, about none", m.Since, m.Backup.Name, st.Since)
	}
	c = poller.CheckBackups(watched(), withSchedules(listing(), daily("s1", 24*time.Hour)), watching(), at0.Add(-47*time.Hour), 0)
	if r := c.Notices[0]; r.Kind != poller.NoticeShortRetention || r.Expected != 7*24*time.Hour || r.Schedule.Retention != 24*time.Hour {
		t.Errorf("short retention = %+v; want the configured week against the schedule's day", r.BackupNotice)
	}
	c = poller.CheckBackups(watched(), unreachable(listing(old)), watching(old), at0, 0)
	if !c.MissingUnknown {
		t.Error("missing with unreachable locations: MissingUnknown is false")
	}
}

// TestCheckBackupsUnreachable: a database's backups are kept in its
// location, so only that location unreachable (or an unknown location,
// or an entry cut past telling) leaves the listing incomplete: the missing
// backup is held back and what was recorded stays known. Another location
// unreachable hides nothing: missing is raised, and a recorded backup no
// longer listed is forgotten.
func TestCheckBackupsUnreachable(t *testing.T) {
	old := ready("b-old", 50*time.Hour, 1000)
	expired := ready("b-expired", 20*24*time.Hour, 1000)
	tests := []struct {
		location    string
		unreachable []string
		incomplete  bool
	}{
		{"", nil, false},
		{"nam5", nil, false},
		{"", []string{"europe-west3"}, true},
		{"nam5", []string{"nam5"}, true},
		{"nam5", []string{"europe-west3", "projects/shop-prod/locations/nam5"}, true},
		{"nam5", []string{"europe-west3"}, false},
		{"nam5", []string{"projects/shop-prod/locations/nam55", "projects/shop-prod/locations/xnam5", "nam"}, false},
		{"nam5", []string{"projects/shop-prod/locations/europe-west3 … [cut: 9000 bytes in all]"}, true},
		{"nam5", []string{"eur3", "… [cut: 500 locations in all]"}, true},
	}
	for _, tt := range tests {
		l := in(tt.location, listing(old))
		l.Unreachable = tt.unreachable
		if got := l.Incomplete(); got != tt.incomplete {
			t.Errorf("database in %q, %q unreachable: Incomplete = %v; want %v", tt.location, tt.unreachable, got, tt.incomplete)
		}
		c := poller.CheckBackups(watched(), l, watching(old, expired), at0, 0)
		var want []string
		wantRecorded := []string{old.Name}
		if tt.incomplete {
			wantRecorded = []string{expired.Name, old.Name}
		} else {
			want = []string{"missing:" + old.Name}
		}
		if got := keys(c.Notices); !reflect.DeepEqual(got, want) || c.MissingUnknown != tt.incomplete {
			t.Errorf("database in %q, %q unreachable: notices %q, MissingUnknown %v; want %q, %v",
				tt.location, tt.unreachable, got, c.MissingUnknown, want, tt.incomplete)
		}
		if !reflect.DeepEqual(c.Next.Recorded, wantRecorded) {
			t.Errorf("database in %q, %q unreachable: Recorded %q; want %q", tt.location, tt.unreachable, c.Next.Recorded, wantRecorded)
		}
	}
	// A missing alarm raised before its location stopped answering still
	// holds: it stays raised, and is not raised again once it answers.
	st := raised(watching(old), "missing:"+old.Name)
	c := poller.CheckBackups(watched(), unreachable(in("nam5", listing(old))), st, at0, 0)
	if len(c.Notices) != 0 || !reflect.DeepEqual(c.Next.Raised, []string{"missing:" + old.Name}) {
		t.Fatalf("raised, then its location unreachable: notices %q, Raised %q; want none, missing still raised", keys(c.Notices), c.Next.Raised)
	}
}

// TestCheckFailedWatch: a failing watch raises nothing for less than the
// recurrence's allowance, then once per stretch of failures; a listing that
// succeeds ends the stretch.
func TestCheckFailedWatch(t *testing.T) {
	failure := errors.New("get database: googleapi: Error 403: The caller does not have permission")
	st := watching(ready("b1", time.Hour, 1))
	step := func(at time.Time, want ...string) poller.WatchCheck {
		t.Helper()
		c := poller.CheckFailedWatch(watched(), st, at, failure)
		if got := keys(c.Notices); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("at %v: notices = %q; want %q", at, got, want)
		}
		st = c.Next
		return c
	}
	step(at0)
	if !st.FailingSince.Equal(at0) || st.Since.Equal(at0) || st.NewestReady != bname("b1") {
		t.Fatalf("after the first failure: %+v; want FailingSince %v, the rest kept", st, at0)
	}
	step(at0.Add(47 * time.Hour))
	key := poller.WatchFailingKey(at0)
	c := step(at0.Add(48*time.Hour), key)
	n := c.Notices[0]
	if n.Kind != poller.NoticeWatchFailing || !n.Since.Equal(at0) || n.Expected != 48*time.Hour || n.Error != failure.Error() ||
		n.Target != "analytics" || n.Project != "shop-prod" || n.Database != "analytics" {
		t.Fatalf("watch failing notice = %+v; want since %v, the 48h allowance, the failure's text", n.BackupNotice, at0)
	}
	if key != "watch-failing:"+at0.UTC().Format(time.RFC3339Nano) {
		t.Fatalf("key = %q", key)
	}
	step(at0.Add(49 * time.Hour))
	step(at0.Add(10 * 24 * time.Hour))
	// Not delivered: worked out again.
	again := poller.CheckFailedWatch(watched(), st.Unsettled(n), at0.Add(10*24*time.Hour), failure)
	if got := keys(again.Notices); !reflect.DeepEqual(got, []string{key}) {
		t.Fatalf("after a failed send: notices %q; want %q again", got, key)
	}
	// A listing that succeeds ends the stretch and forgets its notice.
	ok := poller.CheckBackups(watched(), listing(ready("b2", time.Hour, 1)), st, at0.Add(10*24*time.Hour), 0)
	if !ok.Next.FailingSince.IsZero() || slices.Contains(ok.Next.Raised, key) {
		t.Fatalf("after a listing that succeeded: FailingSince %v, Raised %q; want zero, without %q", ok.Next.FailingSince, ok.Next.Raised, key)
	}
	st = ok.Next
	later := at0.Add(20 * 24 * time.Hour)
	step(later)
	step(later.Add(48*time.Hour), poller.WatchFailingKey(later))
	// A weekly target waits its 8 days; a huge failure is bounded.
	weeklyTarget := watched()
	weekly(&weeklyTarget)
	if c := poller.CheckFailedWatch(weeklyTarget, poller.WatchState{Target: "analytics", FailingSince: at0}, at0.Add(7*24*time.Hour), failure); len(c.Notices) != 0 {
		t.Fatalf("weekly, failing 7 days: notices %q; want none", keys(c.Notices))
	}
	huge := errors.New(strings.Repeat("denied ", 10000))
	c = poller.CheckFailedWatch(weeklyTarget, poller.WatchState{Target: "analytics", FailingSince: at0}, at0.Add(8*24*time.Hour), huge)
	if len(c.Notices) != 1 || len(c.Notices[0].Error) > poller.MaxErrorText || !strings.Contains(c.Notices[0].Error, "cut") {
		t.Fatalf("weekly, failing 8 days with a huge error: %d notices; want one, its error within %d bytes and said to be cut", len(c.Notices), poller.MaxErrorText)
	}
	if !c.Next.Equal(c.Next) || c.Next.Equal(poller.WatchState{Target: "analytics", FailingSince: at0.Add(time.Hour), Raised: c.Next.Raised}) {
		t.Fatal("Equal does not tell states of different FailingSince apart")
	}
}

// TestCheckBackupsFirstWatch: a database with 14 backups watched for the
// first time records all 14 and reports the newest alone.
func TestCheckBackupsFirstWatch(t *testing.T) {
	var bs []poller.Backup
	for i := range 14 {
		bs = append(bs, ready(fmt.Sprint("d", i), time.Duration(14-i)*24*time.Hour-time.Hour, int64(1000-i*50)))
	}
	c := poller.CheckBackups(watched(), listing(bs...), poller.WatchState{Target: "analytics"}, at0, 0.01)
	if got, want := keys(c.Notices), []string{"shrank:" + bname("d13"), "ready:" + bname("d13")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first watch notices = %q; want %q", got, want)
	}
	if got, want := len(c.Record), 14; got != want {
		t.Fatalf("first watch records %d backups; want %d", got, want)
	}
	if !c.Next.Since.Equal(at0) || len(c.Next.Recorded) != 14 || c.Next.NewestReady != bname("d13") {
		t.Fatalf("first watch next state = %+v; want since now, 14 recorded, newest d13", c.Next)
	}
	// The next day: one new backup, the one reported.
	bs = append(bs, ready("d14", -23*time.Hour, 100))
	c = poller.CheckBackups(watched(), listing(bs...), c.Next, at0.Add(24*time.Hour), 0.01)
	if got, want := keys(c.Notices), []string{"shrank:" + bname("d14"), "ready:" + bname("d14")}; !reflect.DeepEqual(got, want) {
		t.Fatalf("second watch notices = %q; want %q", got, want)
	}
	if got := len(c.Record); got != 1 {
		t.Fatalf("second watch records %d backups; want 1", got)
	}
	c = poller.CheckBackups(watched(), listing(bs...), c.Next, at0.Add(25*time.Hour), 0.01)
	if len(c.Notices) != 0 || len(c.Record) != 0 {
		t.Fatalf("third watch = %q, %d recorded; want nothing new", keys(c.Notices), len(c.Record))
	}
}

// TestCheckBackupsEpisodes: the no-schedule alarm is once per episode,
// missing once per newest backup; a raised alarm stays raised while it
// holds and is forgotten when it ends.
func TestCheckBackupsEpisodes(t *testing.T) {
	b := ready("b1", 20*time.Hour, 10)
	tgt := watched()
	st := watching(b)
	noSchedules := listing(b)
	noSchedules.Schedules = nil
	step := func(l poller.Listing, at time.Time, want ...string) {
		t.Helper()
		c := poller.CheckBackups(tgt, l, st, at, 0)
		if got := keys(c.Notices); !reflect.DeepEqual(got, want) && (len(got) != 0 || len(want) != 0) {
			t.Fatalf("at %v: notices = %q; want %q", at, got, want)
		}
		st = c.Next
	}
	s1 := "no-schedule:" + daily("s1", 0).Name
	step(noSchedules, at0, s1)
	step(noSchedules, at0.Add(time.Hour))
	if got, want := st.Raised, []string{s1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Raised while no schedule = %q; want %q", got, want)
	}
	if !st.NoScheduleSince.Equal(at0) {
		t.Fatalf("NoScheduleSince = %v; want %v", st.NoScheduleSince, at0)
	}
	// A new schedule, then deleted: a new episode, a new alarm.
	step(withSchedules(listing(b), daily("s2", 14*24*time.Hour)), at0.Add(2*time.Hour))
	if len(st.Raised) != 0 || !st.NoScheduleSince.IsZero() {
		t.Fatalf("with a schedule back: Raised %q since %v; want none", st.Raised, st.NoScheduleSince)
	}
	step(noSchedules, at0.Add(3*time.Hour), "no-schedule:"+daily("s2", 0).Name)
	// Missing once for b1, again once for the next newest.
	step(listing(b), at0.Add(28*time.Hour), "missing:"+b.Name)
	step(listing(b), at0.Add(30*time.Hour))
	b2 := ready("b2", -29*time.Hour, 10)
	step(listing(b, b2), at0.Add(31*time.Hour), "ready:"+b2.Name)
	step(listing(b, b2), at0.Add(78*time.Hour), "missing:"+b2.Name)
}

// TestUnsettled: a notice that did not go out is worked out again.
func TestUnsettled(t *testing.T) {
	old := ready("b-old", 60*time.Hour, 1000)
	c := poller.CheckBackups(watched(), listing(old, ready("b-new", time.Hour, 500)), watching(old), at0, 0.1)
	next := c.Next
	for _, n := range c.Notices {
		next = next.Unsettled(n)
	}
	if slices.Contains(next.Recorded, bname("b-new")) {
		t.Fatalf("Recorded after its notices failed = %q; want b-new out", next.Recorded)
	}
	again := poller.CheckBackups(watched(), listing(old, ready("b-new", time.Hour, 500)), next, at0.Add(10*time.Minute), 0.1)
	if got, want := keys(again.Notices), keys(c.Notices); !reflect.DeepEqual(got, want) {
		t.Fatalf("notices after a failed send = %q; want %q again", got, want)
	}
	c = poller.CheckBackups(watched(), listing(old), watching(old), at0, 0)
	if next := c.Next.Unsettled(c.Notices[0]); slices.Contains(next.Raised, "missing:"+old.Name) {
		t.Fatalf("Raised after the missing alarm failed = %q; want it out", next.Raised)
	}
	if !c.Next.Equal(c.Next) || c.Next.Equal(c.Next.Unsettled(c.Notices[0])) {
		t.Fatal("Equal does not tell a state from one without a raised key")
	}
}

// TestCheckBackupsUnreachableKeepsRecorded: backups missing from an
// incomplete list stay known, so they are not new when they come back.
func TestCheckBackupsUnreachableKeepsRecorded(t *testing.T) {
	a, b := ready("a", 30*time.Hour, 10), ready("b", 6*time.Hour, 10)
	st := watching(a, b)
	c := poller.CheckBackups(watched(), unreachable(listing()), st, at0, 0)
	if !reflect.DeepEqual(c.Next.Recorded, st.Recorded) || len(c.Notices) != 0 {
		t.Fatalf("with every backup unreachable: Recorded %q, notices %q; want %q kept, none", c.Next.Recorded, keys(c.Notices), st.Recorded)
	}
	c = poller.CheckBackups(watched(), listing(a, b), c.Next, at0.Add(time.Hour), 0)
	if len(c.Notices) != 0 || len(c.Record) != 0 {
		t.Fatalf("backups back from an unreachable location = %q, %d recorded; want nothing new", keys(c.Notices), len(c.Record))
	}
	// In a complete list, a backup that is gone expired: forgotten.
	c = poller.CheckBackups(watched(), listing(b), c.Next, at0.Add(2*time.Hour), 0)
	if got, want := c.Next.Recorded, []string{b.Name}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Recorded after a expired = %q; want %q", got, want)
	}
}

// TestCheckBackupsRecordsUnavailable: a recorded backup that turns
// NOT_AVAILABLE is recorded again, once.
func TestCheckBackupsRecordsUnavailable(t *testing.T) {
	a, b := ready("a", 30*time.Hour, 10), ready("b", 6*time.Hour, 10)
	c := poller.CheckBackups(watched(), listing(inState(a, poller.BackupNotAvailable), b), watching(a, b), at0, 0)
	if len(c.Record) != 1 || c.Record[0].Name != a.Name || c.Record[0].State != poller.BackupNotAvailable {
		t.Fatalf("Record = %+v; want a, NOT_AVAILABLE", c.Record)
	}
	c = poller.CheckBackups(watched(), listing(inState(a, poller.BackupNotAvailable), b), c.Next, at0.Add(time.Hour), 0)
	if len(c.Record) != 0 {
		t.Fatalf("Record the next time = %+v; want none", c.Record)
	}
}

func TestCanClaimNotice(t *testing.T) {
	ttl := time.Minute
	tests := []struct {
		name   string
		c      poller.NoticeClaim
		holder string
		want   bool
	}{
		{"unclaimed", poller.NoticeClaim{}, "a", true},
		{"sent", poller.NoticeClaim{SentAt: at0.Add(-time.Hour)}, "a", false},
		{"sent, claim left", poller.NoticeClaim{SentAt: at0.Add(-time.Hour), Claimed: at0, Claimer: "a"}, "a", false},
		{"another's live claim", poller.NoticeClaim{Claimed: at0.Add(-ttl + time.Second), Claimer: "b"}, "a", false},
		{"another's stale claim", poller.NoticeClaim{Claimed: at0.Add(-ttl), Claimer: "b"}, "a", true},
		{"own live claim", poller.NoticeClaim{Claimed: at0, Claimer: "a"}, "a", true},
		{"no holder is nobody's own", poller.NoticeClaim{Claimed: at0}, "", false},
	}
	for _, tt := range tests {
		if got := poller.CanClaimNotice(tt.c, tt.holder, at0, ttl); got != tt.want {
			t.Errorf("%s: CanClaimNotice = %v; want %v", tt.name, got, tt.want)
		}
	}
}

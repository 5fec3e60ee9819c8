package storetest

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// BackupStore is the backup watch's part of the contract: the poller's port
// and the status page's listing.
type BackupStore interface {
	poller.BackupStore
	Backups(ctx context.Context, target string, limit int) ([]poller.Backup, error)
}

// testBackups runs the backup watch's subtests, each on a store of its own.
func testBackups(t *testing.T, open func(t *testing.T) Store) {
	tests := []struct {
		name string
		test func(t *testing.T, s Store)
	}{
		{"RecordIdempotent", testRecordBackupIdempotent},
		{"NewestFirstPerTarget", testBackupsNewestFirst},
		{"SameBackupTwoTargets", testSameBackupTwoTargets},
		{"WatchStateRoundTrip", testWatchStateRoundTrip},
		{"NoticeClaims", testNoticeClaims},
		{"ConcurrentNoticeClaims", testConcurrentNoticeClaims},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.test(t, open(t)) })
	}
}

// backupName is a managed backup's name in the contract's project.
func backupName(id string) string { return "projects/example-proj/locations/nam5/backups/" + id }

// readyBackup is a READY backup named id taken at snapshot, with
// nanoseconds the store has to cut and a zone it has to turn to UTC.
func readyBackup(id string, snapshot time.Time, documents int64) poller.Backup {
	return poller.Backup{
		Name: backupName(id), Database: "projects/example-proj/databases/analytics", DatabaseUID: "6b1f2a3c-uid",
		State: poller.BackupReady, SnapshotTime: snapshot.In(time.FixedZone("CET", 3600)),
		ExpireTime: snapshot.Add(14 * 7 * 24 * time.Hour), Documents: documents, Bytes: documents * 512,
	}
}

// stored is b as the store gives it back.
func stored(b poller.Backup) poller.Backup {
	b.SnapshotTime, b.ExpireTime = us(b.SnapshotTime), us(b.ExpireTime)
	return b
}

func backups(t *testing.T, s Store, target string, limit int) []poller.Backup {
	t.Helper()
	bs, err := s.Backups(context.Background(), target, limit)
	if err != nil {
		t.Fatalf("Backups(%q, %d): %v", target, limit, err)
	}
	return bs
}

func record(t *testing.T, s Store, target string, b poller.Backup, at time.Time) {
	t.Helper()
	if err := s.RecordBackup(context.Background(), target, b, at); err != nil {
		t.Fatalf("RecordBackup(%q, %q): %v", target, b.Name, err)
	}
}

func testRecordBackupIdempotent(t *testing.T, s Store) {
	b := readyBackup("daily-1", base.Add(123_456_789), 1000)
	record(t, s, "analytics", b, base.Add(time.Hour))
	record(t, s, "analytics", b, base.Add(2*time.Hour))
	if got, want := backups(t, s, "analytics", 10), []poller.Backup{stored(b)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups after recording one backup twice = %+v; want %+v", got, want)
	}
	gone := b
	gone.State = poller.BackupNotAvailable
	record(t, s, "analytics", gone, base.Add(3*time.Hour))
	// A sweep that listed it READY before the change records it late: it
	// stays NOT_AVAILABLE.
	record(t, s, "analytics", b, base.Add(4*time.Hour))
	if got, want := backups(t, s, "analytics", 10), []poller.Backup{stored(gone)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups after NOT_AVAILABLE and a late READY = %+v; want %+v", got, want)
	}
	if err := s.RecordBackup(context.Background(), "analytics", poller.Backup{State: poller.BackupReady}, base); err == nil {
		t.Fatal("RecordBackup of a backup without a name succeeded")
	}
}

func testBackupsNewestFirst(t *testing.T, s Store) {
	b1 := readyBackup("b1", base, 10)
	b2 := readyBackup("b2", base.Add(24*time.Hour), 20)
	b3 := readyBackup("b3", base.Add(48*time.Hour), 30)
	other := readyBackup("o1", base.Add(72*time.Hour), 5)
	for _, b := range []poller.Backup{b2, b3, b1} {
		record(t, s, "analytics", b, base.Add(50*time.Hour))
	}
	record(t, s, "orders", other, base.Add(73*time.Hour))
	if got, want := backups(t, s, "analytics", 10), []poller.Backup{stored(b3), stored(b2), stored(b1)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups(analytics) = %v; want b3, b2, b1", backupNames(got))
	}
	if got, want := backupNames(backups(t, s, "analytics", 2)), []string{b3.Name, b2.Name}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups(analytics, 2) = %v; want %v", got, want)
	}
	if got, want := backupNames(backups(t, s, "orders", 10)), []string{other.Name}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups(orders) = %v; want %v", got, want)
	}
	if got := backups(t, s, "nobody", 10); len(got) != 0 {
		t.Fatalf("Backups of a target with none = %v; want none", backupNames(got))
	}
	if _, err := s.Backups(context.Background(), "analytics", 0); err == nil {
		t.Fatal("Backups with limit 0 succeeded")
	}
}

// testSameBackupTwoTargets: two targets watching one database record the
// same backups, each its own records: neither's record replaces the
// other's, nor its NOT_AVAILABLE the other's READY.
func testSameBackupTwoTargets(t *testing.T, s Store) {
	b := readyBackup("shared-1", base, 100)
	record(t, s, "analytics", b, base.Add(time.Hour))
	record(t, s, "analytics-copy", b, base.Add(2*time.Hour))
	for _, target := range []string{"analytics", "analytics-copy"} {
		if got, want := backups(t, s, target, 10), []poller.Backup{stored(b)}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Backups(%s) after both targets recorded it = %+v; want %+v", target, got, want)
		}
	}
	gone := b
	gone.State = poller.BackupNotAvailable
	record(t, s, "analytics-copy", gone, base.Add(3*time.Hour))
	if got, want := backups(t, s, "analytics", 10), []poller.Backup{stored(b)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups(analytics) after analytics-copy recorded it NOT_AVAILABLE = %+v; want its own READY record", got)
	}
	if got, want := backups(t, s, "analytics-copy", 10), []poller.Backup{stored(gone)}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Backups(analytics-copy) = %+v; want %+v", got, want)
	}
	// A record's name is "target/name", within a key name's 1,500 bytes.
	prefix := backupName("")
	longest := readyBackup(strings.Repeat("x", poller.MaxName-len("analytics/")-len(prefix)), base.Add(time.Hour), 1)
	record(t, s, "analytics", longest, base.Add(4*time.Hour))
	if got := backupNames(backups(t, s, "analytics", 1)); !reflect.DeepEqual(got, []string{longest.Name}) {
		t.Fatalf("Backups(analytics, 1) = %.80q; want the backup of the longest name that fits", got)
	}
	over := readyBackup(strings.Repeat("x", poller.MaxName-len("analytics/")-len(prefix)+1), base.Add(2*time.Hour), 1)
	if err := s.RecordBackup(context.Background(), "analytics", over, base); err == nil {
		t.Fatal("RecordBackup of a name one byte over a record's name succeeded")
	}
	if err := s.RecordBackup(context.Background(), "", b, base); err == nil {
		t.Fatal("RecordBackup without a target succeeded")
	}
}

func backupNames(bs []poller.Backup) []string {
	var ns []string
	for _, b := range bs {
		ns = append(ns, b.Name)
	}
	return ns
}

func testWatchStateRoundTrip(t *testing.T, s Store) {
	ctx := context.Background()
	st, err := s.WatchState(ctx, "analytics")
	if err != nil || !reflect.DeepEqual(st, poller.WatchState{Target: "analytics"}) || !st.First() {
		t.Fatalf("WatchState of a target never watched = %+v, %v; want a first, empty state", st, err)
	}
	want := poller.WatchState{
		Target: "analytics", Since: base.Add(1), Schedules: []string{"projects/example-proj/databases/analytics/backupSchedules/s1"},
		NoScheduleSince: base.Add(time.Hour).In(time.FixedZone("CET", 3600)), NewestReady: backupName("b3"), NewestReadyAt: base.Add(2 * time.Hour),
		Recorded: []string{backupName("b1"), backupName("b3")}, Raised: []string{"missing:" + backupName("b3"), "stuck:" + backupName("b4")},
		FailingSince: base.Add(3*time.Hour + 7),
	}
	if err := s.SaveWatchState(ctx, want); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveWatchState(ctx, poller.WatchState{Target: "orders", Since: base, Schedules: []string{}, Raised: []string{}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.WatchState(ctx, "analytics")
	want.Since, want.NoScheduleSince, want.NewestReadyAt = us(want.Since), us(want.NoScheduleSince), us(want.NewestReadyAt)
	want.FailingSince = us(want.FailingSince)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("WatchState after SaveWatchState = %+v, %v; want %+v", got, err, want)
	}
	// Another target's state is its own; empty lists come back nil.
	got, err = s.WatchState(ctx, "orders")
	if err != nil || !reflect.DeepEqual(got, poller.WatchState{Target: "orders", Since: us(base)}) {
		t.Fatalf("WatchState(orders) = %+v, %v; want Since %v alone", got, err, us(base))
	}
	// A watch that failed before it ever listed keeps its failure alone.
	failing := poller.WatchState{Target: "failing", FailingSince: base.Add(5)}
	if err := s.SaveWatchState(ctx, failing); err != nil {
		t.Fatal(err)
	}
	if got, err := s.WatchState(ctx, "failing"); err != nil || !reflect.DeepEqual(got, poller.WatchState{Target: "failing", FailingSince: us(failing.FailingSince)}) || !got.First() {
		t.Fatalf("WatchState(failing) = %+v, %v; want FailingSince %v alone, never watched", got, err, us(failing.FailingSince))
	}
	// Saving replaces the state whole.
	if err := s.SaveWatchState(ctx, poller.WatchState{Target: "analytics", Since: base}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.WatchState(ctx, "analytics"); err != nil || !reflect.DeepEqual(got, poller.WatchState{Target: "analytics", Since: us(base)}) {
		t.Fatalf("WatchState after replacing it = %+v, %v; want Since alone", got, err)
	}
	if err := s.SaveWatchState(ctx, poller.WatchState{Since: base}); err == nil {
		t.Fatal("SaveWatchState without a target succeeded")
	}
}

// claimNotice calls ClaimNotice and fails the test unless it answers ok.
func claimNotice(t *testing.T, s Store, target, key, holder string, at time.Time, ok bool, what string) poller.NoticeClaim {
	t.Helper()
	c, got, err := s.ClaimNotice(context.Background(), target, key, holder, at, time.Minute)
	if err != nil || got != ok {
		t.Fatalf("%s: ClaimNotice(%q, %q, %q) = %+v, %v, %v; want %v", what, target, key, holder, c, got, err, ok)
	}
	return c
}

func testNoticeClaims(t *testing.T, s Store) {
	ctx := context.Background()
	key := "missing:" + backupName("b3")
	c := claimNotice(t, s, "analytics", key, "a", base, true, "first claim")
	if c.Claimer != "a" || !c.Claimed.Equal(us(base)) || c.Sent() {
		t.Fatalf("first claim = %+v; want a's at %v, not sent", c, us(base))
	}
	c = claimNotice(t, s, "analytics", key, "b", base.Add(30*time.Second), false, "claim while a's is live")
	if c.Claimer != "a" || c.Sent() {
		t.Fatalf("refused claim = %+v; want a's, not sent", c)
	}
	claimNotice(t, s, "analytics", key, "a", base.Add(30*time.Second), true, "a's own claim again (a late commit retried)")
	// The same key of another target is another notice.
	claimNotice(t, s, "orders", key, "b", base.Add(30*time.Second), true, "another target's notice of the same key")
	// Another's release leaves a's claim; a's own lets b claim.
	if err := s.ReleaseNotice(ctx, "analytics", key, "b"); err != nil {
		t.Fatal(err)
	}
	claimNotice(t, s, "analytics", key, "b", base.Add(40*time.Second), false, "claim after another's release")
	if err := s.ReleaseNotice(ctx, "analytics", key, "a"); err != nil {
		t.Fatal(err)
	}
	claimNotice(t, s, "analytics", key, "b", base.Add(40*time.Second), true, "claim after a's release")
	// Sent stays sent: no claim, no release, no second mark changes it.
	if err := s.MarkNoticeSent(ctx, "analytics", key, base.Add(50*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseNotice(ctx, "analytics", key, "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkNoticeSent(ctx, "analytics", key, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{time.Minute, 48 * time.Hour} {
		c = claimNotice(t, s, "analytics", key, "c", base.Add(at), false, fmt.Sprintf("claim of a sent notice at +%v", at))
		if !c.Sent() || !c.SentAt.Equal(us(base.Add(50*time.Second))) {
			t.Fatalf("claim of a sent notice = %+v; want sent at %v", c, us(base.Add(50*time.Second)))
		}
	}
	// A claim older than the ttl belongs to a sweep that died while
	// sending: it is taken over.
	stale := "stuck:" + backupName("b4")
	claimNotice(t, s, "analytics", stale, "dead", base, true, "the claim of a sweep that dies")
	claimNotice(t, s, "analytics", stale, "e", base.Add(time.Minute-time.Microsecond), false, "claim just before the ttl")
	c = claimNotice(t, s, "analytics", stale, "e", base.Add(time.Minute), true, "claim after the ttl")
	if c.Claimer != "e" || !c.Claimed.Equal(us(base.Add(time.Minute))) {
		t.Fatalf("claim after the ttl = %+v; want e's at %v", c, us(base.Add(time.Minute)))
	}
	// The dead sweep's late release leaves e's claim.
	if err := s.ReleaseNotice(ctx, "analytics", stale, "dead"); err != nil {
		t.Fatal(err)
	}
	claimNotice(t, s, "analytics", stale, "f", base.Add(time.Minute+time.Second), false, "claim after the dead sweep's release")
}

// testConcurrentNoticeClaims: of sweeps racing for one notice, one claims it.
func testConcurrentNoticeClaims(t *testing.T, s Store) {
	key := "no-schedule:never"
	won := race(t, 6, func(i int) (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, ok, err := s.ClaimNotice(ctx, "analytics", key, fmt.Sprint("sweep-", i), base, time.Minute)
		return ok, err
	})
	if got, want := won, 1; got != want {
		t.Fatalf("%d of 6 racing sweeps claimed the notice; want %d", got, want)
	}
}

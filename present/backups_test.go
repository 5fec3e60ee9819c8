package present

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

const (
	readyName = "projects/shop-prod/locations/nam5/backups/cf9f748a-7980-4703-b1a1-d1ffff591db0"
	prevName  = "projects/shop-prod/locations/nam5/backups/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	schedName = "projects/shop-prod/databases/analytics/backupSchedules/091a49a0-223f-4c98-8c69-a284abbdb26b"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func readyBackup() poller.Backup {
	return poller.Backup{
		Name: readyName, Database: "projects/shop-prod/databases/analytics", DatabaseUID: "uid-1",
		State: poller.BackupReady, SnapshotTime: at("2026-12-01T02:13:00Z"), ExpireTime: at("2027-03-09T02:13:00Z"),
		Documents: 1204331, Bytes: 5368709120,
	}
}

func notice(kind poller.NoticeKind) poller.BackupNotice {
	return poller.BackupNotice{Kind: kind, Target: "shop-analytics", Project: "shop-prod", Database: "analytics", Backup: readyBackup()}
}

func fieldMap(m Message) map[string]string {
	f := make(map[string]string)
	for _, x := range m.Fields {
		f[x.Title] = x.Value
	}
	return f
}

func commands(m Message) map[string]string {
	c := make(map[string]string)
	for _, n := range m.Notes {
		if n.Command {
			c[n.Label] = n.Text
		}
	}
	return c
}

// TestFormatBackupNotices renders each kind of notice: its title, badge and
// colour, the facts an on-call engineer needs, and its commands exactly.
func TestFormatBackupNotices(t *testing.T) {
	listBackups := `gcloud firestore backups list --project=shop-prod --filter='database="projects/shop-prod/databases/analytics"' --format="table(name, state, snapshotTime, expireTime, stats.documentCount, stats.sizeBytes)"`
	listSchedules := "gcloud firestore backups schedules list --database=analytics --project=shop-prod"
	restore := "gcloud firestore databases restore --source-backup=" + readyName + " --destination-database=analytics-restore-20261201 --project=shop-prod"

	missing := notice(poller.NoticeMissing)
	missing.Expected = 48 * time.Hour
	missing.Since = at("2026-12-03T02:13:00Z")
	never := notice(poller.NoticeMissing)
	never.Backup, never.Since = poller.Backup{}, at("2026-11-20T00:00:00Z")
	stuck := notice(poller.NoticeStuck)
	stuck.Backup.State, stuck.Backup.Documents, stuck.Backup.Bytes = poller.BackupCreating, 0, 0
	stuck.Expected = 6 * time.Hour
	gone := notice(poller.NoticeNotAvailable)
	gone.Backup.State = poller.BackupNotAvailable
	short := notice(poller.NoticeShortRetention)
	short.Backup = poller.Backup{}
	short.Schedule = poller.BackupSchedule{Name: schedName, Recurrence: poller.Weekly, Weekday: "MONDAY", Retention: 7 * 24 * time.Hour}
	short.Expected = 14 * 7 * 24 * time.Hour
	shrank := notice(poller.NoticeShrank)
	shrank.Previous = readyBackup()
	shrank.Previous.Name, shrank.Previous.SnapshotTime = prevName, at("2026-11-30T02:11:00Z")
	shrank.Backup.Documents, shrank.Backup.Bytes = 722599, 3221225472
	shrank.Shrink = 0.4
	none := notice(poller.NoticeNoSchedule)
	none.Backup, none.Database, none.Since = poller.Backup{}, "", at("2026-11-20T00:00:00Z")
	now := at("2026-12-04T08:13:00Z")
	failing := notice(poller.NoticeWatchFailing)
	failing.Backup, failing.Expected, failing.Since = poller.Backup{}, 48*time.Hour, at("2026-12-02T02:00:00Z")
	failing.Error = "get database: googleapi: Error 403: The caller does not have permission, forbidden"

	tests := []struct {
		name   string
		n      poller.BackupNotice
		title  string
		badge  Badge
		color  string
		fields map[string]string
		cmds   map[string]string
	}{
		{"ready", notice(poller.NoticeReady), "shop-analytics: Managed backup ready", Badge{"ok", "backup ready"}, ColorSuccess,
			map[string]string{
				"Target": "shop-analytics", "Project": "shop-prod", "Database": "analytics", "Backup": readyName,
				"State": "READY", "Snapshot time": "2026-12-01 02:13:00 UTC", "Expires": "2027-03-09 02:13:00 UTC",
				"Documents": "1,204,331", "Size": "5.0 GiB (5,368,709,120 bytes)",
			},
			map[string]string{"Restore": restore}},
		{"missing", missing, "shop-analytics: No new managed backup for over 2 days", Badge{"bad", "backup missing"}, ColorFailure,
			map[string]string{
				"Newest READY backup": readyName, "Age": "3 days 6h", "Allowed age": "2 days",
				"A new one was due by": "2026-12-03 02:13:00 UTC", "Missing since": "2026-12-03 02:13:00 UTC",
			},
			map[string]string{"Backups": listBackups, "Schedules": listSchedules, "Restore the newest": restore}},
		{"never", never, "shop-analytics: No managed backup seen", Badge{"bad", "backup missing"}, ColorFailure,
			map[string]string{"Newest READY backup": "none seen since 2026-11-20 00:00:00 UTC", "Allowed age": "2 days"},
			map[string]string{"Backups": listBackups, "Schedules": listSchedules}},
		{"stuck", stuck, "shop-analytics: Managed backup stuck creating", Badge{"bad", "backup stuck"}, ColorFailure,
			map[string]string{"State": "CREATING", "Documents": None, "Size": None,
				"Creating since": "2026-12-01 02:13:00 UTC", "Expected within": "6h"},
			map[string]string{"Backups": listBackups, "Schedules": listSchedules}},
		{"not available", gone, "shop-analytics: Managed backup no longer available", Badge{"bad", "backup not available"}, ColorFailure,
			map[string]string{"State": "NOT_AVAILABLE", "Backup": readyName},
			map[string]string{"Backups": listBackups, "Schedules": listSchedules}},
		{"short retention", short, "shop-analytics: Backup retention shorter than configured", Badge{"warn", "retention too short"}, ColorWarning,
			map[string]string{"Schedule": schedName, "Recurrence": "weekly on MONDAY", "Retention": "7 days", "Configured retention": "14 weeks"},
			map[string]string{"Keep them longer": "gcloud firestore backups schedules update --backup-schedule=091a49a0-223f-4c98-8c69-a284abbdb26b --database=analytics --retention=98d --project=shop-prod"}},
		{"shrank", shrank, "shop-analytics: Managed backup shrank by 40.0%", Badge{"warn", "backup shrank"}, ColorWarning,
			map[string]string{
				"Documents":       "722,599; previous 1,204,331: 40.0% fewer",
				"Size":            "3.0 GiB (3,221,225,472 bytes); previous 5.0 GiB: 40.0% smaller",
				"Previous backup": prevName, "Previous snapshot time": "2026-11-30 02:11:00 UTC",
			},
			map[string]string{"Restore the previous": "gcloud firestore databases restore --source-backup=" + prevName + " --destination-database=analytics-restore-20261130 --project=shop-prod"}},
		{"watch failing", failing, "shop-analytics: Cannot watch the managed backups for 2 days", Badge{"bad", "backups not watched"}, ColorFailure,
			map[string]string{
				"Target": "shop-analytics", "Project": "shop-prod", "Database": "analytics", "Error": failing.Error,
				"Failing since": "2026-12-02 02:00:00 UTC", "Failing for": "2 days 6h13m", "Raised after": "2 days",
			},
			map[string]string{
				"Backups":   "gcloud firestore backups list --project=shop-prod",
				"Schedules": listSchedules,
			}},
		{"no schedule", none, "shop-analytics: No managed backup schedule", Badge{"bad", "no backup schedule"}, ColorFailure,
			map[string]string{"Database": "(default)", "Backup schedules": "none seen since 2026-11-20 00:00:00 UTC"},
			map[string]string{
				"Create one": "gcloud firestore backups schedules create --database='(default)' --recurrence=daily --retention=7d --project=shop-prod",
				"Schedules":  "gcloud firestore backups schedules list --database='(default)' --project=shop-prod",
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := poller.Report{Backup: &tc.n}
			m := FormatAt(r, time.UTC, now)
			if got, want := m.Title, tc.title; got != want {
				t.Errorf("title = %q; want %q", got, want)
			}
			if got, want := BadgeOf(r), tc.badge; got != want {
				t.Errorf("badge = %v; want %v", got, want)
			}
			if got, want := m.Color, tc.color; got != want {
				t.Errorf("color = %q; want %q", got, want)
			}
			f := fieldMap(m)
			for k, want := range tc.fields {
				if got := f[k]; got != want {
					t.Errorf("field %q = %q; want %q", k, got, want)
				}
			}
			got := commands(m)
			for k, want := range tc.cmds {
				if got[k] != want {
					t.Errorf("command %q = %q;\nwant %q", k, got[k], want)
				}
			}
			if len(got) != len(tc.cmds) {
				t.Errorf("commands = %v; want %d", got, len(tc.cmds))
			}
			if c, ok := NextCommand(r); !ok || c.Text != m.Notes[firstCommand(m)].Text {
				t.Errorf("NextCommand = %v, %v; want the first command", c, ok)
			}
		})
	}
}

func firstCommand(m Message) int {
	for i, n := range m.Notes {
		if n.Command {
			return i
		}
	}
	return -1
}

// TestFormatBackupWithoutClock leaves the age out rather than guess it.
func TestFormatBackupWithoutClock(t *testing.T) {
	n := notice(poller.NoticeMissing)
	if got := fieldMap(Format(poller.Report{Backup: &n}, nil))["Age"]; got != None {
		t.Errorf("age without a clock = %q; want %q", got, None)
	}
}

var validID = regexp.MustCompile(`^[a-z][a-z0-9-]{2,61}[a-z0-9]$`)
var uuidLike = regexp.MustCompile(`[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}`)

func TestRestoreDatabaseID(t *testing.T) {
	day := at("2026-12-01T23:59:00Z")
	long := strings.Repeat("a", 63)
	tests := []struct {
		database string
		snapshot time.Time
		want     string
	}{
		{"analytics", day, "analytics-restore-20261201"},
		{"(default)", day, "default-restore-20261201"},
		{"", day, "default-restore-20261201"},
		{"analytics", time.Time{}, "analytics-restore"},
		{long, day, strings.Repeat("a", 46) + "-restore-20261201"},
		{"shop-" + strings.Repeat("b", 40) + "-x-y", day, "shop-" + strings.Repeat("b", 40) + "-restore-20261201"},
		{"123-Ünicode <db>", day, "nicode-db-restore-20261201"},
		{"😀", day, "db-restore-20261201"},
		{"cf9f748a-7980-4703-b1a1-d1ffff591db0", day, "cf9f748a79804703b1a1d1ffff591db0-restore-20261201"},
	}
	for _, tc := range tests {
		got := RestoreDatabaseID(tc.database, tc.snapshot)
		if got != tc.want {
			t.Errorf("RestoreDatabaseID(%.40q, %v) = %q; want %q", tc.database, tc.snapshot, got, tc.want)
		}
	}
	rng := rand.New(rand.NewPCG(11, 11))
	runes := []rune("aZ9-_.()é😀 /\x00")
	for range 2000 {
		var b strings.Builder
		for range rng.IntN(200) {
			b.WriteRune(runes[rng.IntN(len(runes))])
		}
		got := RestoreDatabaseID(b.String(), day)
		if !validID.MatchString(got) || uuidLike.MatchString(got) || poller.ValidateDatabase(got) != nil {
			t.Fatalf("RestoreDatabaseID(%q) = %q; not a valid new database id", b.String(), got)
		}
	}
}

// TestBackupCommandsRefuseBadNames shows no command made of a name that is
// not one gcloud takes, and says why.
func TestBackupCommandsRefuseBadNames(t *testing.T) {
	hostile := strings.Repeat("x; rm -rf / & <b>", 600)
	ready := notice(poller.NoticeReady)
	ready.Backup.Name = "projects/shop-prod/locations/nam5/backups/" + hostile
	missing := notice(poller.NoticeMissing)
	missing.Database = hostile
	short := notice(poller.NoticeShortRetention)
	short.Schedule = poller.BackupSchedule{Name: "projects/shop-prod/databases/" + hostile + "/backupSchedules/x", Retention: time.Hour}
	short.Expected = time.Hour * 24
	badProject := notice(poller.NoticeNoSchedule)
	badProject.Project = "shop prod'; echo"
	for _, n := range []poller.BackupNotice{ready, missing, short, badProject} {
		m := Format(poller.Report{Backup: &n}, nil)
		for _, note := range m.Notes {
			if note.Command && (strings.Contains(note.Text, "rm -rf") || strings.Contains(note.Text, "echo")) {
				t.Errorf("%s: command made of a hostile name: %.120q", n.Kind, note.Text)
			}
		}
		if !strings.Contains(notesText(m), "no command: ") {
			t.Errorf("%s: notes do not say why a command is missing: %q", n.Kind, notesText(m))
		}
		for _, f := range m.Fields {
			if n := len([]rune(f.Value)); n > MaxName {
				t.Errorf("field %q has %d characters; want at most %d", f.Title, n, MaxName)
			}
		}
	}
}

func notesText(m Message) string {
	var b strings.Builder
	for _, n := range m.Notes {
		b.WriteString(n.Label + ": " + n.Text + "\n")
	}
	return b.String()
}

func TestSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, None},
		{90 * time.Second, "1m30s"},
		{6 * time.Hour, "6h"},
		{24 * time.Hour, "1 day"},
		{48 * time.Hour, "2 days"},
		{7 * 24 * time.Hour, "7 days"},
		{14 * 7 * 24 * time.Hour, "14 weeks"},
		{78*time.Hour + 30*time.Minute, "3 days 6h30m"},
	}
	for _, tc := range tests {
		if got := Span(tc.d); got != tc.want {
			t.Errorf("Span(%v) = %q; want %q", tc.d, got, tc.want)
		}
	}
}

func TestRetentionFlag(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{7 * 24 * time.Hour, "7d"},
		{14 * 7 * 24 * time.Hour, "98d"},
		{36 * time.Hour, "36h"},
		{90 * time.Minute, "5400s"},
	}
	for _, tc := range tests {
		if got := RetentionFlag(tc.d); got != tc.want {
			t.Errorf("RetentionFlag(%v) = %q; want %q", tc.d, got, tc.want)
		}
	}
}

func TestCreateWeeklySchedule(t *testing.T) {
	got, ok := CreateScheduleCommand("shop-prod", "analytics", poller.Weekly, "SUNDAY", 0)
	want := "gcloud firestore backups schedules create --database=analytics --recurrence=weekly --day-of-week=SUN --retention=98d --project=shop-prod"
	if !ok || got != want {
		t.Errorf("CreateScheduleCommand(weekly) = %q, %v; want %q", got, ok, want)
	}
}

// TestFormatTargetedExport shows a named database's consistent export with
// its target, database and snapshot time, and its restore command.
func TestFormatTargetedExport(t *testing.T) {
	op := poller.Operation{
		Name: "projects/shop-prod/databases/analytics/operations/ASA3", Project: "shop-prod", Database: "analytics",
		Target: "shop-analytics", Done: true, State: poller.StateSuccessful, OutputURL: "gs://b/analytics/2026-12-01",
		SnapshotTime: at("2026-12-01T03:00:00Z"),
	}
	r := poller.Report{Outcome: poller.OutcomeSuccess, Operation: op}
	m := Format(r, nil)
	if got, want := m.Title, "shop-analytics: Datastore export succeeded"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	f := fieldMap(m)
	for k, want := range map[string]string{"Target": "shop-analytics", "Database": "analytics", "Consistent as of": "2026-12-01 03:00:00 UTC"} {
		if f[k] != want {
			t.Errorf("field %q = %q; want %q", k, f[k], want)
		}
	}
	if got, want := commands(m)["Restore"], "gcloud firestore import gs://b/analytics/2026-12-01 --project=shop-prod --database=analytics"; got != want {
		t.Errorf("restore = %q; want %q", got, want)
	}
	if got, want := Headline(r, nil), "shop-analytics: Datastore export succeeded (shop-prod/databases/analytics) — 0 entities, 0 B"; got != want {
		t.Errorf("headline = %q; want %q", got, want)
	}
	for _, m := range []Message{FormatStarted(r, nil), FormatProgress(r, nil, op.SnapshotTime)} {
		if !strings.HasPrefix(m.Title, "shop-analytics: ") || fieldMap(m)["Consistent as of"] == "" {
			t.Errorf("%q lacks the target or the snapshot time: %+v", m.Title, m.Fields)
		}
	}
	plain := op
	plain.Target, plain.Database, plain.SnapshotTime, plain.Name = "", "", time.Time{}, "projects/shop-prod/operations/x"
	f = fieldMap(Format(poller.Report{Outcome: poller.OutcomeSuccess, Operation: plain}, nil))
	for _, k := range []string{"Target", "Database", "Consistent as of"} {
		if _, ok := f[k]; ok {
			t.Errorf("a (default) export of no target has field %q", k)
		}
	}
}

// TestFormatStaleTarget names the target and lists a named database's
// operations through gcloud firestore.
func TestFormatStaleTarget(t *testing.T) {
	st := poller.Stale{Project: "shop-prod/databases/analytics", Target: "shop-analytics", LastSuccess: poller.Success{Name: "x"}, After: 36 * time.Hour}
	m := Format(poller.Report{Stale: &st}, nil)
	if got, want := m.Title, "No Datastore export of shop-analytics (shop-prod/databases/analytics) has succeeded for over 36h"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	f := fieldMap(m)
	if f["Target"] != "shop-analytics" || f["Project"] != "shop-prod" || f["Database"] != "analytics" {
		t.Errorf("fields = %v", f)
	}
	if got, want := commands(m)["Check"], "gcloud firestore operations list --project=shop-prod --database=analytics"; got != want {
		t.Errorf("check = %q; want %q", got, want)
	}
}

// TestFormatWatchFailing names the roles the watch needs, keeps a long
// error to MaxDetail, and makes no command of a project gcloud would not
// take.
func TestFormatWatchFailing(t *testing.T) {
	n := notice(poller.NoticeWatchFailing)
	n.Backup, n.Expected, n.Since = poller.Backup{}, 8*24*time.Hour, at("2026-12-01T00:00:00Z")
	n.Error = strings.Repeat("permission denied; ", 500)
	m := Format(poller.Report{Backup: &n}, nil)
	if got, want := m.Title, "shop-analytics: Cannot watch the managed backups for 8 days"; got != want {
		t.Errorf("title = %q; want %q", got, want)
	}
	if got := fieldMap(m)["Error"]; len([]rune(got)) > MaxDetail || !strings.Contains(got, "characters in all") {
		t.Errorf("error field of %d characters, %.60q…; want at most %d, said to be cut", len([]rune(got)), got, MaxDetail)
	}
	notes := notesText(m)
	for _, role := range []string{"roles/datastore.backupsViewer", "roles/datastore.backupSchedulesViewer", "roles/datastore.importExportAdmin"} {
		if !strings.Contains(notes, role) {
			t.Errorf("notes do not name %s:\n%s", role, notes)
		}
	}
	if got := fieldMap(m)["Failing for"]; got != None {
		t.Errorf("failing for, without a clock = %q; want %q", got, None)
	}
	if got, want := Headline(poller.Report{Backup: &n}, time.UTC), "shop-analytics: Cannot watch the managed backups for 8 days (shop-prod/databases/analytics) — failing since 2026-12-01 00:00:00 UTC"; got != want {
		t.Errorf("headline = %q; want %q", got, want)
	}
	n.Project = "shop prod; rm -rf /"
	m = Format(poller.Report{Backup: &n}, nil)
	if got := commands(m); len(got) != 0 || !strings.Contains(notesText(m), "no command: ") {
		t.Errorf("commands of a bad project = %q; want none, and why", got)
	}
}

func TestBackupHeadline(t *testing.T) {
	n := notice(poller.NoticeReady)
	got := Headline(poller.Report{Backup: &n}, nil)
	want := "shop-analytics: Managed backup ready (shop-prod/databases/analytics) — 1,204,331 documents, 5.0 GiB, as of 2026-12-01 02:13:00 UTC"
	if got != want {
		t.Errorf("headline = %q; want %q", got, want)
	}
}

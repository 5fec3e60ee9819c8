package present

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// MaxName is the most of a name or id from outside dsexport (a backup or
// schedule name, a database id, a target's name) that a report shows, in
// characters: a valid one is well under it (a backup name is about 100), so
// only a broken or hostile answer is cut.
const MaxName = 300

// maxTargetInTitle bounds the target's name where it leads a title, which
// Slack shows in 150 characters.
const maxTargetInTitle = 60

// Name is s as a report shows a name from outside: whole up to MaxName
// characters, else cut, saying so.
func Name(s string) string { return Cut(s, MaxName) }

// TargetOf is the name of the target r is about: its operation's, its
// staleness alarm's or its backup notice's ("" : none named, the
// environment's one target).
func TargetOf(r poller.Report) string {
	switch {
	case r.Backup != nil:
		return r.Backup.Target
	case r.Stale != nil:
		return r.Stale.Target
	case r.Drill != nil:
		return r.Drill.Target
	}
	return r.Operation.Target
}

// ScopeOf is the database r is about, as poller.Scope names it: the
// project alone for its (default) database ("" when r names none).
func ScopeOf(r poller.Report) string {
	switch {
	case r.Backup != nil:
		return poller.Scope(r.Backup.Project, r.Backup.Database)
	case r.Stale != nil:
		return r.Stale.Project
	case r.Drill != nil:
		return poller.Scope(r.Drill.Project, r.Drill.Database)
	}
	if r.Operation.ProjectID() == "" {
		return ""
	}
	return r.Operation.Scope()
}

// withTarget leads title with the target's name, so a channel that hears of
// many targets tells at a glance which one a report is about.
func withTarget(target, title string) string {
	if target == "" {
		return title
	}
	return Cut(target, maxTargetInTitle) + ": " + title
}

// BackupTitle says in a few words what a backup notice is about.
func BackupTitle(n poller.BackupNotice) string {
	switch n.Kind {
	case poller.NoticeReady:
		return "Managed backup ready"
	case poller.NoticeNoSchedule:
		return "No managed backup schedule"
	case poller.NoticeMissing:
		if n.Backup.Name == "" {
			return "No managed backup seen"
		}
		return "No new managed backup for over " + Span(allowance(n))
	case poller.NoticeNotAvailable:
		return "Managed backup no longer available"
	case poller.NoticeStuck:
		return "Managed backup stuck creating"
	case poller.NoticeShortRetention:
		return "Backup retention shorter than configured"
	case poller.NoticeShrank:
		return fmt.Sprintf("Managed backup shrank by %.1f%%", 100*n.Shrink)
	case poller.NoticeWatchFailing:
		if n.Expected <= 0 {
			return "Cannot watch the managed backups"
		}
		return "Cannot watch the managed backups for " + Span(n.Expected)
	}
	return "Managed backup notice " + Cut(string(n.Kind), 40)
}

// BackupBadge is the badge of a backup notice: ok for a new READY backup,
// bad for a database that may have no backup to restore, warn for one
// whose backups are there but not as configured.
func BackupBadge(kind poller.NoticeKind) Badge {
	switch kind {
	case poller.NoticeReady:
		return Badge{"ok", "backup ready"}
	case poller.NoticeNoSchedule:
		return Badge{"bad", "no backup schedule"}
	case poller.NoticeMissing:
		return Badge{"bad", "backup missing"}
	case poller.NoticeNotAvailable:
		return Badge{"bad", "backup not available"}
	case poller.NoticeStuck:
		return Badge{"bad", "backup stuck"}
	case poller.NoticeShortRetention:
		return Badge{"warn", "retention too short"}
	case poller.NoticeShrank:
		return Badge{"warn", "backup shrank"}
	case poller.NoticeWatchFailing:
		// Nothing else can be raised while it lasts, a missing backup
		// included.
		return Badge{"bad", "backups not watched"}
	}
	return Badge{"warn", Cut(string(kind), 40)}
}

// BackupColor is the colour of a backup notice, as its badge says.
func BackupColor(kind poller.NoticeKind) string {
	switch BackupBadge(kind).Class {
	case "ok":
		return ColorSuccess
	case "bad":
		return ColorFailure
	}
	return ColorWarning
}

// formatBackup renders a backup notice, which is about no operation. now,
// when not zero, is when it is rendered, for the age of the newest backup.
func formatBackup(n poller.BackupNotice, loc *time.Location, now time.Time) Message {
	m := Message{Title: withTarget(n.Target, BackupTitle(n)), Color: BackupColor(n.Kind)}
	m.Fields = backupIdentity(n)
	switch n.Kind {
	case poller.NoticeNoSchedule:
		since := "none seen"
		if !n.Since.IsZero() {
			since = "none seen since " + Clock(n.Since, loc)
		}
		m.Fields = append(m.Fields, Field{Title: "Backup schedules", Value: since})
	case poller.NoticeMissing:
		if n.Backup.Name == "" {
			v := "none ever seen"
			if !n.Since.IsZero() {
				v = "none seen since " + Clock(n.Since, loc)
			}
			m.Fields = append(m.Fields, Field{Title: "Newest READY backup", Value: v},
				Field{Title: "Allowed age", Value: Span(allowance(n)), Short: true})
			break
		}
		m.Fields = append(m.Fields, backupFields(n.Backup, "Newest READY backup", loc)...)
		age := None
		if !now.IsZero() && !n.Backup.SnapshotTime.IsZero() {
			age = Span(now.Sub(n.Backup.SnapshotTime).Truncate(time.Minute))
		}
		m.Fields = append(m.Fields,
			Field{Title: "Age", Value: age, Short: true},
			Field{Title: "Allowed age", Value: Span(allowance(n)), Short: true},
			Field{Title: "A new one was due by", Value: Clock(due(n), loc), Short: true})
		if !n.Since.IsZero() {
			m.Fields = append(m.Fields, Field{Title: "Missing since", Value: Clock(n.Since, loc), Short: true})
		}
	case poller.NoticeStuck:
		since := n.Since
		if since.IsZero() {
			since = n.Backup.SnapshotTime
		}
		m.Fields = append(m.Fields, backupFields(n.Backup, "Backup", loc)...)
		m.Fields = append(m.Fields,
			Field{Title: "Creating since", Value: Clock(since, loc), Short: true},
			Field{Title: "Expected within", Value: Span(n.Expected), Short: true})
	case poller.NoticeShortRetention:
		m.Fields = append(m.Fields,
			Field{Title: "Schedule", Value: OrNone(Name(n.Schedule.Name))},
			Field{Title: "Recurrence", Value: recurrenceText(n.Schedule), Short: true},
			Field{Title: "Retention", Value: Span(n.Schedule.Retention), Short: true},
			Field{Title: "Configured retention", Value: Span(n.Expected), Short: true})
	case poller.NoticeShrank:
		b, p := n.Backup, n.Previous
		m.Fields = append(m.Fields,
			Field{Title: "Backup", Value: OrNone(Name(b.Name))},
			Field{Title: "Snapshot time", Value: Clock(b.SnapshotTime, loc), Short: true},
			Field{Title: "Expires", Value: Clock(b.ExpireTime, loc), Short: true},
			Field{Title: "Documents", Value: Count(b.Documents) + against(b.Documents, p.Documents, Count, "fewer", "more"), Short: true},
			Field{Title: "Size", Value: ByteSize(b.Bytes) + against(b.Bytes, p.Bytes, Bytes, "smaller", "larger"), Short: true},
			Field{Title: "Previous backup", Value: OrNone(Name(p.Name))},
			Field{Title: "Previous snapshot time", Value: Clock(p.SnapshotTime, loc), Short: true})
	case poller.NoticeWatchFailing:
		failing := None
		if !now.IsZero() && !n.Since.IsZero() {
			failing = Span(now.Sub(n.Since).Truncate(time.Minute))
		}
		m.Fields = append(m.Fields,
			Field{Title: "Error", Value: OrNone(Detail(n.Error))},
			Field{Title: "Failing since", Value: Clock(n.Since, loc), Short: true},
			Field{Title: "Failing for", Value: failing, Short: true},
			Field{Title: "Raised after", Value: Span(n.Expected), Short: true})
	default: // Ready, NotAvailable, and kinds this version does not know.
		m.Fields = append(m.Fields, backupFields(n.Backup, "Backup", loc)...)
	}
	m.Notes = BackupNotes(n)
	return m
}

// backupIdentity is the fields every backup notice starts with: which
// target, which database of which project.
func backupIdentity(n poller.BackupNotice) []Field {
	var fs []Field
	if n.Target != "" {
		fs = append(fs, Field{Title: "Target", Value: Name(n.Target), Short: true})
	}
	db := n.Database
	if db == "" {
		db = poller.DefaultDatabase
	}
	return append(fs,
		Field{Title: "Project", Value: OrNone(Name(n.Project)), Short: true},
		Field{Title: "Database", Value: Name(db), Short: true})
}

// backupFields are the facts of one backup: its name (titled title), state,
// times and stats, which are only known once it is READY.
func backupFields(b poller.Backup, title string, loc *time.Location) []Field {
	docs, size := None, None
	if b.State == poller.BackupReady || b.Documents != 0 || b.Bytes != 0 {
		docs, size = Count(b.Documents), ByteSize(b.Bytes)
	}
	return []Field{
		{Title: title, Value: OrNone(Name(b.Name))},
		{Title: "State", Value: OrNone(Cut(string(b.State), 40)), Short: true},
		{Title: "Snapshot time", Value: Clock(b.SnapshotTime, loc), Short: true},
		{Title: "Expires", Value: Clock(b.ExpireTime, loc), Short: true},
		{Title: "Documents", Value: docs, Short: true},
		{Title: "Size", Value: size, Short: true},
	}
}

// against says how now compares with before, in unit: "; previous
// 1,000,000: 40.0% fewer" (less, or more when it grew); "" without a
// previous value.
func against(now, before int64, unit func(int64) string, less, more string) string {
	if before <= 0 {
		return ""
	}
	pct := 100 * float64(before-now) / float64(before)
	word := less
	if pct < 0 {
		pct, word = -pct, more
	}
	return fmt.Sprintf("; previous %s: %.1f%% %s", unit(before), pct, word)
}

// recurrenceText is a schedule's recurrence: "daily", "weekly on MONDAY".
func recurrenceText(s poller.BackupSchedule) string {
	switch {
	case s.Recurrence == poller.Weekly && s.Weekday != "":
		return "weekly on " + Cut(s.Weekday, 20)
	case s.Recurrence != "":
		return Cut(string(s.Recurrence), 20)
	}
	return None
}

// allowance is how old the newest READY backup may be: the notice's, or a
// daily schedule's when it carries none.
func allowance(n poller.BackupNotice) time.Duration {
	if n.Expected > 0 {
		return n.Expected
	}
	return recurrenceOf(n).Allowance()
}

// due is when a READY backup newer than the notice's was due.
func due(n poller.BackupNotice) time.Time {
	if n.Backup.SnapshotTime.IsZero() {
		return time.Time{}
	}
	return n.Backup.SnapshotTime.Add(allowance(n))
}

// recurrenceOf is the recurrence a schedule for n's database should have:
// its schedule's, else the one a missing backup's allowance tells, else
// daily. (The notice does not carry the target's configured recurrence.)
func recurrenceOf(n poller.BackupNotice) poller.Recurrence {
	switch {
	case n.Schedule.Recurrence != "":
		return n.Schedule.Recurrence
	case n.Kind == poller.NoticeMissing && n.Expected == poller.Weekly.Allowance():
		return poller.Weekly
	}
	return poller.Daily
}

// Span writes a length of time for people: "2 days", "3 days 4h",
// "14 weeks", "6h30m"; None for zero.
func Span(d time.Duration) string {
	const day, week = 24 * time.Hour, 7 * 24 * time.Hour
	switch {
	case d <= 0:
		return None
	case d%week == 0 && d >= 2*week:
		return fmt.Sprintf("%d weeks", d/week)
	case d%day == 0:
		return fmt.Sprintf("%d %s", d/day, Plural(int(d/day), "day", "days"))
	case d > day:
		days := d / day
		return fmt.Sprintf("%d %s %s", days, Plural(int(days), "day", "days"), hoursMinutes(d-days*day))
	}
	return hoursMinutes(d)
}

// hoursMinutes writes d to the minute past an hour ("6h", "6h30m"), else to
// the second.
func hoursMinutes(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	d = d.Round(time.Minute)
	if m := d % time.Hour / time.Minute; m != 0 {
		return fmt.Sprintf("%dh%dm", d/time.Hour, m)
	}
	return fmt.Sprintf("%dh", d/time.Hour)
}

// BackupNotes are what to read or run about a notice: the restore command
// of a backup that can be restored, the commands that show the backups or
// the schedules as Google sees them, the one that mends a schedule.
func BackupNotes(n poller.BackupNotice) []Note {
	var ns []Note
	add := func(label, cmd string, ok bool, why string) {
		if ok {
			ns = append(ns, Note{Label: label, Text: cmd, Command: true})
		} else if why != "" {
			ns = append(ns, Note{Label: label, Text: why})
		}
	}
	const badName = "no command: the backup's name is not one gcloud takes"
	const badDatabase = "no command: the project or database is not an id gcloud takes"
	lists := func() {
		cmd, ok := ListBackupsCommand(n.Project, n.Database)
		add("Backups", cmd, ok, badDatabase)
		cmd, ok = ListSchedulesCommand(n.Project, n.Database)
		add("Schedules", cmd, ok, "")
	}
	switch n.Kind {
	case poller.NoticeReady:
		cmd, ok := RestoreBackupCommand(n.Backup, n.Database)
		add("Restore", cmd, ok, badName)
	case poller.NoticeMissing:
		lists()
		if n.Backup.Name != "" {
			cmd, ok := RestoreBackupCommand(n.Backup, n.Database)
			add("Restore the newest", cmd, ok, "")
		}
	case poller.NoticeNotAvailable:
		ns = append(ns, Note{Label: "Warning", Text: "this backup can no longer be restored; check that a newer one is READY"})
		lists()
	case poller.NoticeStuck:
		lists()
	case poller.NoticeNoSchedule:
		ns = append(ns, Note{Label: "Why", Text: "the database has no backup schedule: it was deleted, or never created; no managed backup will be taken"})
		cmd, ok := CreateScheduleCommand(n.Project, n.Database, recurrenceOf(n), n.Schedule.Weekday, n.Expected)
		add("Create one", cmd, ok, badDatabase)
		cmd, ok = ListSchedulesCommand(n.Project, n.Database)
		add("Schedules", cmd, ok, "")
	case poller.NoticeShortRetention:
		cmd, ok := UpdateScheduleCommand(n.Schedule, n.Expected)
		add("Keep them longer", cmd, ok, "no command: the schedule's name is not one gcloud takes")
	case poller.NoticeWatchFailing:
		ns = append(ns, Note{Label: "Why", Text: "every listing of the database's managed backups failed: no other backup alarm, a missing backup included, can be raised until one succeeds"})
		cmd, ok := ListProjectBackupsCommand(n.Project)
		add("Backups", cmd, ok, badDatabase)
		cmd, ok = ListSchedulesCommand(n.Project, n.Database)
		add("Schedules", cmd, ok, badDatabase)
		ns = append(ns, Note{Label: "Roles", Text: "dsexport's service account needs roles/datastore.backupsViewer (to list the backups), " +
			"roles/datastore.backupSchedulesViewer (to list the schedules) and roles/datastore.importExportAdmin (to read the database, databases.get). " +
			"A database deleted, or deleted and made again (it has a new uid), fails too: check that the target names it"})
	case poller.NoticeShrank:
		ns = append(ns, Note{Label: "Warning", Text: fmt.Sprintf(
			"%s documents and %s, against %s documents and %s in the backup before: a shrink this large may be data lost before the backup was taken",
			Count(n.Backup.Documents), Bytes(n.Backup.Bytes), Count(n.Previous.Documents), Bytes(n.Previous.Bytes))})
		cmd, ok := RestoreBackupCommand(n.Previous, n.Database)
		add("Restore the previous", cmd, ok, badName)
	default:
		lists()
	}
	return ns
}

// The grammars of what a command is built of. A command from a name that
// does not match is not shown: pasted, it would do something else or
// nothing, and a name this long or odd came from a broken answer.
var (
	// projectRE is a project id (6 to 30 characters), or a domain-scoped
	// one ("example.com:my-project").
	projectRE = regexp.MustCompile(`^(?:[a-z0-9][a-z0-9.-]{0,61}[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	// backupNameRE is projects/P/locations/L/backups/ID.
	backupNameRE = regexp.MustCompile(`^projects/([^/]{1,100})/locations/([a-z0-9-]{1,63})/backups/([A-Za-z0-9_-]{1,128})$`)
	// scheduleNameRE is projects/P/databases/D/backupSchedules/ID.
	scheduleNameRE = regexp.MustCompile(`^projects/([^/]{1,100})/databases/([^/]{1,63})/backupSchedules/([A-Za-z0-9_-]{1,128})$`)
	// uuidRE is what Google calls UUID-like in a database id.
	uuidRE = regexp.MustCompile(`[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}`)
	// weekdays are gcloud's --day-of-week values by the API's day names.
	weekdays = map[string]string{"MONDAY": "MON", "TUESDAY": "TUE", "WEDNESDAY": "WED", "THURSDAY": "THU",
		"FRIDAY": "FRI", "SATURDAY": "SAT", "SUNDAY": "SUN"}
)

// ids tells whether project and database are ids gcloud takes, and gives
// the database by its id ("" is "(default)").
func ids(project, database string) (string, bool) {
	if database == "" {
		database = poller.DefaultDatabase
	}
	return database, projectRE.MatchString(project) && poller.ValidateDatabase(database) == nil
}

// RestoreBackupCommand restores backup b of database into a new database
// (RestoreDatabaseID), in the backup's project; ok is false when b's name is
// not a backup name gcloud takes.
func RestoreBackupCommand(b poller.Backup, database string) (cmd string, ok bool) {
	m := backupNameRE.FindStringSubmatch(b.Name)
	if m == nil || !projectRE.MatchString(m[1]) {
		return "", false
	}
	if database == "" {
		database = databaseOfName(b.Database)
	}
	return "gcloud firestore databases restore --source-backup=" + b.Name +
		" --destination-database=" + RestoreDatabaseID(database, b.SnapshotTime) +
		" --project=" + m[1], true
}

// databaseOfName is the id in projects/P/databases/D, "" when there is none.
func databaseOfName(name string) string {
	if _, db, ok := strings.Cut(name, "/databases/"); ok {
		return db
	}
	return ""
}

// RestoreDatabaseID is a new database's id for a restore of database's
// backup taken at snapshot: "analytics-restore-20261201",
// "default-restore-20261201" for (default). It is always a valid database
// id (4 to 63 lower-case letters, digits and hyphens, starting with a
// letter, not ending with a hyphen, never UUID-like), whatever database
// holds: what is not a letter, digit or hyphen becomes a hyphen, and a
// long id is cut to leave room for the date.
func RestoreDatabaseID(database string, snapshot time.Time) string {
	if poller.IsDefaultDatabase(database) {
		database = "default"
	}
	suffix := "-restore"
	if !snapshot.IsZero() {
		suffix += "-" + snapshot.UTC().Format("20060102")
	}
	var b strings.Builder
	for _, r := range strings.ToLower(database) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	base := strings.TrimLeft(b.String(), "0123456789-")
	if len(base) > 63-len(suffix) {
		base = base[:63-len(suffix)]
	}
	base = strings.TrimRight(base, "-")
	if uuidRE.MatchString(base) {
		// Google refuses an id that looks like a uuid; one holding a uuid
		// loses its hyphens so no reading of the rule can refuse it.
		base = strings.ReplaceAll(base, "-", "")
	}
	if base == "" {
		base = "db"
	}
	return base + suffix
}

// ListBackupsCommand lists the backups of project's database, in every
// location, with their state, times and stats.
func ListBackupsCommand(project, database string) (cmd string, ok bool) {
	database, ok = ids(project, database)
	if !ok {
		return "", false
	}
	return `gcloud firestore backups list --project=` + project +
		` --filter='database="projects/` + project + `/databases/` + database + `"'` +
		` --format="table(name, state, snapshotTime, expireTime, stats.documentCount, stats.sizeBytes)"`, true
}

// ListProjectBackupsCommand lists every backup of project, in every
// location: what the watch lists, without its filter by database uid.
func ListProjectBackupsCommand(project string) (cmd string, ok bool) {
	if !projectRE.MatchString(project) {
		return "", false
	}
	return "gcloud firestore backups list --project=" + project, true
}

// ListSchedulesCommand lists the backup schedules of project's database.
func ListSchedulesCommand(project, database string) (cmd string, ok bool) {
	database, ok = ids(project, database)
	if !ok {
		return "", false
	}
	return "gcloud firestore backups schedules list --database=" + shellWord(database) + " --project=" + project, true
}

// CreateScheduleCommand creates a backup schedule of project's database
// recurring as rec (weekly on weekday, the API's MONDAY…, Monday when it is
// not one) and keeping backups for retention (7 days for a daily schedule
// and 14 weeks for a weekly one when 0).
func CreateScheduleCommand(project, database string, rec poller.Recurrence, weekday string, retention time.Duration) (cmd string, ok bool) {
	database, ok = ids(project, database)
	if !ok {
		return "", false
	}
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
		if rec == poller.Weekly {
			retention = 14 * 7 * 24 * time.Hour
		}
	}
	cmd = "gcloud firestore backups schedules create --database=" + shellWord(database) +
		" --recurrence=daily --retention=" + RetentionFlag(retention) + " --project=" + project
	if rec == poller.Weekly {
		day, ok := weekdays[weekday]
		if !ok {
			day = "MON"
		}
		cmd = "gcloud firestore backups schedules create --database=" + shellWord(database) +
			" --recurrence=weekly --day-of-week=" + day + " --retention=" + RetentionFlag(retention) + " --project=" + project
	}
	return cmd, true
}

// UpdateScheduleCommand sets schedule s to keep its backups for retention;
// ok is false when its name is not a schedule name gcloud takes.
func UpdateScheduleCommand(s poller.BackupSchedule, retention time.Duration) (cmd string, ok bool) {
	m := scheduleNameRE.FindStringSubmatch(s.Name)
	if m == nil || retention <= 0 {
		return "", false
	}
	database, ok := ids(m[1], m[2])
	if !ok {
		return "", false
	}
	return "gcloud firestore backups schedules update --backup-schedule=" + m[3] +
		" --database=" + shellWord(database) + " --retention=" + RetentionFlag(retention) + " --project=" + m[1], true
}

// RetentionFlag writes a retention as gcloud's --retention takes it: in
// whole days ("98d" for 14 weeks, as gcloud's own examples write "7d"),
// else hours or seconds.
func RetentionFlag(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return fmt.Sprintf("%ds", (d+time.Second-1)/time.Second)
}

// backupHeadline is a notice in one line: its title, the database, and the
// fact that matters most.
func backupHeadline(n poller.BackupNotice, loc *time.Location) string {
	line := withTarget(n.Target, BackupTitle(n))
	if s := poller.Scope(n.Project, n.Database); n.Project != "" {
		line += " (" + Name(s) + ")"
	}
	b := n.Backup
	switch n.Kind {
	case poller.NoticeReady:
		return line + " — " + Count(b.Documents) + " documents, " + Bytes(b.Bytes) + ", as of " + Clock(b.SnapshotTime, loc)
	case poller.NoticeShrank:
		return line + " — " + Count(b.Documents) + " documents, against " + Count(n.Previous.Documents) + " before"
	case poller.NoticeMissing:
		if b.Name == "" {
			return line
		}
		return line + " — newest READY backup as of " + Clock(b.SnapshotTime, loc)
	case poller.NoticeShortRetention:
		return line + " — " + Span(n.Schedule.Retention) + ", configured " + Span(n.Expected)
	case poller.NoticeWatchFailing:
		if n.Since.IsZero() {
			return line
		}
		return line + " — failing since " + Clock(n.Since, loc)
	}
	return line
}

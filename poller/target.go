package poller

import (
	"fmt"
	"regexp"
	"time"
)

// DefaultDatabase is the id of a project's default database. The Datastore
// Admin API exports only it; named databases go through the Firestore Admin
// API.
const DefaultDatabase = "(default)"

// databaseRE is Firestore's database id grammar: 4 to 63 lower-case
// letters, digits and hyphens, starting with a letter and not ending with a
// hyphen; "(default)" is the one other id.
var databaseRE = regexp.MustCompile(`^[a-z][a-z0-9-]{2,61}[a-z0-9]$`)

// databasePattern is the id of a database in an operation name.
const databasePattern = `\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9]`

// ValidateDatabase checks a database id; "" stands for "(default)".
func ValidateDatabase(id string) error {
	if id == "" || id == DefaultDatabase || databaseRE.MatchString(id) {
		return nil
	}
	return fieldErrorf("database", "database %s is not \"(default)\" nor a database id (4 to 63 lower-case letters, digits and hyphens, starting with a letter)", quote(id))
}

// IsDefaultDatabase tells whether id names the project's default database.
func IsDefaultDatabase(id string) bool { return id == "" || id == DefaultDatabase }

// Scope names one database of one project where records are grouped by
// database: the project for its (default) database, so that records of the
// versions before named databases keep their meaning, and
// "project/databases/id" for a named one.
func Scope(project, database string) string {
	if IsDefaultDatabase(database) {
		return project
	}
	return project + "/databases/" + database
}

// Target is one database of one project that dsexport looks after: what it
// does with it and where its reports go.
type Target struct {
	// Name is the target's name in the configuration, in routes (?target=)
	// and on the command line (--target).
	Name     string
	Project  string
	Database string // "(default)" or a named database
	// Export is the export a schedule starts, nil when the target is not
	// exported (only watched).
	Export *ExportRequest
	// Schedule is the App Engine cron / Cloud Scheduler text of the export's
	// schedule ("every day 03:00"), Every the longest wait between two of
	// its starts, which the status page ages the last export against.
	Schedule string
	Every    time.Duration
	// Backups, when set, has the sweep watch the database's managed backups.
	Backups *BackupWatch
	// Channel is the Slack channel of the target's reports ("" : the
	// deployment's default).
	Channel string
	// Drill, when set, has the sweep run a restore drill of the target's
	// latest verified export every Drill.Every.
	Drill *DrillSpec
}

// Exported tells whether the target's database is exported, so that the
// staleness alarm watches it: a target that only watches managed backups is
// not.
func (t Target) Exported() bool { return t.Export != nil || t.Backups == nil }

// Scope is the target's database, as Scope names it.
func (t Target) Scope() string { return Scope(t.Project, t.Database) }

// BackupWatch is what a target expects of its managed backups.
type BackupWatch struct {
	// Recurrence is Daily or Weekly: how often a schedule should take one.
	Recurrence Recurrence
	// Retention is the shortest retention a schedule may keep backups for
	// (0: any).
	Retention time.Duration
	// Report sends a report for every new READY backup, with its restore
	// command; otherwise only alarms are sent.
	Report bool
}

// Recurrence is how often managed backups are expected.
type Recurrence string

// The recurrences of Firestore backup schedules.
const (
	Daily  Recurrence = "daily"
	Weekly Recurrence = "weekly"
)

// Allowance is how old the newest READY backup may be before it is missing:
// a daily schedule runs at a different time each day, so two days; a weekly
// one, eight.
func (r Recurrence) Allowance() time.Duration {
	if r == Weekly {
		return 8 * 24 * time.Hour
	}
	return 48 * time.Hour
}

// ParseRecurrence reads "daily" or "weekly".
func ParseRecurrence(s string) (Recurrence, error) {
	switch Recurrence(s) {
	case Daily, Weekly:
		return Recurrence(s), nil
	}
	return "", fmt.Errorf("%s is not daily or weekly", quote(s))
}

// dbOf is database with "" spelled "(default)".
func dbOf(database string) string {
	if database == "" {
		return DefaultDatabase
	}
	return database
}

// ConsistentSnapshotTime is the snapshot time of a consistent export started
// at now: the last whole minute, which is in the past and well within the
// point-in-time-recovery window (an hour without PITR, seven days with it).
func ConsistentSnapshotTime(now time.Time) time.Time {
	return now.UTC().Truncate(time.Minute)
}

// carryOver fills in what dsexport knows of an operation and the API's
// answers do not hold: the database, the target, the snapshot time asked
// for, the trigger (the Firestore Admin API has no labels).
func carryOver(op, known Operation) Operation {
	if op.Database == "" {
		op.Database = known.Database
	}
	if op.Target == "" {
		op.Target = known.Target
	}
	if op.SnapshotTime.IsZero() {
		op.SnapshotTime = known.SnapshotTime
	}
	if op.Trigger == "" {
		op.Trigger = known.Trigger
	}
	return op
}

// DatabaseOf is the database an operation exported: its Database field,
// or the one its name holds, "(default)" when neither says.
func (op Operation) DatabaseOf() string {
	if op.Database != "" {
		return op.Database
	}
	if _, db, err := ParseNameIn(op.Name); err == nil && db != "" {
		return db
	}
	return DefaultDatabase
}

// Scope is the operation's database, as Scope names it.
func (op Operation) Scope() string { return Scope(op.ProjectID(), op.DatabaseOf()) }

package poller

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// BackupState is the state of a managed backup. There is no FAILED: a
// backup that could not be taken is never listed, and one that can no
// longer be restored is NOT_AVAILABLE.
type BackupState string

// The states of a Firestore managed backup.
const (
	BackupCreating     BackupState = "CREATING"
	BackupReady        BackupState = "READY"
	BackupNotAvailable BackupState = "NOT_AVAILABLE"
)

// Backup is one managed backup of a database, as the Firestore Admin API
// lists it (projects.locations.backups).
type Backup struct {
	// Name is projects/{project}/locations/{location}/backups/{id}, what
	// gcloud firestore databases restore --source-backup takes.
	Name string
	// Database is projects/{project}/databases/{database}; DatabaseUID the
	// database's uid, which outlives a database deleted and made again.
	Database    string
	DatabaseUID string
	State       BackupState
	// SnapshotTime is the point in time the backup holds; ExpireTime when
	// Google deletes it.
	SnapshotTime, ExpireTime time.Time
	// Documents and Bytes are its stats (documentCount, sizeBytes), zero
	// until it is READY.
	Documents, Bytes int64
}

// BackupSchedule is one backup schedule of a database
// (projects.databases.backupSchedules).
type BackupSchedule struct {
	// Name is projects/{project}/databases/{database}/backupSchedules/{id}.
	Name string
	// Recurrence is Daily or Weekly ("" : one this version does not know);
	// Weekday the day of a weekly one (MONDAY…).
	Recurrence Recurrence
	Weekday    string
	// Retention is how long its backups are kept; 0 when the API did not
	// say (unknown, not "none").
	Retention              time.Duration
	CreateTime, UpdateTime time.Time
}

// DatabaseInfo is what projects.databases.get tells of a database.
type DatabaseInfo struct {
	// Name is projects/{project}/databases/{database}.
	Name string
	// UID identifies the database; backups are listed by it. It has at most
	// MaxDatabaseUID bytes.
	UID string
	// Location is its locationId (nam5, europe-west3, …); Type
	// DATASTORE_MODE or FIRESTORE_NATIVE.
	Location string
	Type     string
	// VersionRetention is the point-in-time-recovery window (an hour
	// without PITR, seven days with it); EarliestVersion the oldest time a
	// consistent export may read.
	VersionRetention time.Duration
	EarliestVersion  time.Time
}

// MaxDatabaseUID bounds a database uid: Google's are UUID4s (36
// characters); the adapter takes up to 64 letters, digits and hyphens, and
// the watch refuses a longer one rather than cut it, as a cut uid lists no
// backup.
const MaxDatabaseUID = 64

// CheckBackupRecord checks that target's record of the backup called name
// can be kept: both named, and "target/name", which the store keys it by,
// within MaxName bytes, the most a Datastore key name holds. Any backup
// name the adapter takes (at most about 700 bytes) with any target name
// (at most 63) is within it.
func CheckBackupRecord(target, name string) error {
	switch {
	case target == "":
		return errors.New("backup record: no target")
	case name == "":
		return errors.New("backup record: no backup name")
	case len(target)+1+len(name) > MaxName:
		return fmt.Errorf("backup record: backup name %s of %d bytes with target %s is longer than the %d bytes of a record's name",
			quote(name), len(name), quote(target), MaxName)
	}
	return nil
}

// BackupsAdmin is what the backup watch calls of the Firestore Admin API
// adapter (admin.Firestore). Its errors are the domain's, as Admin's are:
// ErrTransient for a failure that may pass, ErrOperationGone wrapped for a
// database that does not exist.
type BackupsAdmin interface {
	Database(ctx context.Context, project, database string) (DatabaseInfo, error)
	BackupSchedules(ctx context.Context, project, database string) ([]BackupSchedule, error)
	// Backups lists the backups of the database whose uid is databaseUID in
	// every location of project; unreachable names the locations that did
	// not answer, whose backups may be missing from the list.
	Backups(ctx context.Context, project, databaseUID string) (backups []Backup, unreachable []string, err error)
}

// NoticeKind says what a backup notice is about.
type NoticeKind string

// The backup notices: one report of a new READY backup, and the alarms.
const (
	// NoticeReady: a new READY backup (reported when the target asks).
	NoticeReady NoticeKind = "ready"
	// NoticeNoSchedule: the database has no backup schedule, or it was deleted.
	NoticeNoSchedule NoticeKind = "no-schedule"
	// NoticeMissing: no READY backup newer than the recurrence allows.
	NoticeMissing NoticeKind = "missing"
	// NoticeNotAvailable: a backup can no longer be restored.
	NoticeNotAvailable NoticeKind = "not-available"
	// NoticeStuck: a backup CREATING for far longer than one takes.
	NoticeStuck NoticeKind = "stuck"
	// NoticeShortRetention: a schedule keeps backups for less than configured.
	NoticeShortRetention NoticeKind = "short-retention"
	// NoticeShrank: a backup holds notably fewer documents or bytes than the one before.
	NoticeShrank NoticeKind = "shrank"
	// NoticeWatchFailing: the Admin API has refused or failed every listing
	// of the database's backups for longer than the recurrence allows, so
	// that no other alarm can be raised (a missing IAM role, a database
	// deleted or made again).
	NoticeWatchFailing NoticeKind = "watch-failing"
)

// BackupNotice is a report about a target's managed backups: an alarm or a
// new READY backup. It is about no export operation.
type BackupNotice struct {
	Kind     NoticeKind
	Target   string
	Project  string
	Database string
	// Backup is the backup it is about: the new, unavailable, stuck or
	// shrunk one; for NoticeMissing the newest READY one (zero: none ever).
	Backup Backup
	// Previous is the READY backup before Backup (NoticeShrank).
	Previous Backup
	// Schedule is the schedule at fault (NoticeShortRetention).
	Schedule BackupSchedule
	// Expected is what was expected: the allowance of NoticeMissing, the
	// configured retention of NoticeShortRetention, the time a backup may
	// be CREATING for NoticeStuck, the allowance a failing watch outlasted
	// for NoticeWatchFailing.
	Expected time.Duration
	// Since is, for NoticeMissing, NoticeNoSchedule and NoticeWatchFailing,
	// since when the condition holds as far as dsexport saw.
	Since time.Time
	// Shrink is the fraction (0.25: a quarter) by which Backup is smaller
	// than Previous (NoticeShrank).
	Shrink float64
	// Error is the Admin API's failure the watch last met
	// (NoticeWatchFailing), within MaxErrorText bytes.
	Error string
}

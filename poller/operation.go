// Package poller is the domain of dsexport: the export operation snapshot, how an
// operation's outcome is decided, the Admin API client, and the poll loop that
// follows an export to its end and reports it once.
package poller

import (
	"fmt"
	"regexp"
	"time"
)

// State is metadata.common.state of a Datastore admin operation.
type State string

// The states the Admin API documents for an export operation.
const (
	StateUnspecified  State = "STATE_UNSPECIFIED"
	StateInitializing State = "INITIALIZING"
	StateProcessing   State = "PROCESSING"
	StateCancelling   State = "CANCELLING"
	StateFinalizing   State = "FINALIZING"
	StateSuccessful   State = "SUCCESSFUL"
	StateFailed       State = "FAILED"
	StateCancelled    State = "CANCELLED"
)

// Trigger names what started an export; it is sent as the operation label "trigger".
type Trigger string

// The triggers dsexport knows.
const (
	TriggerCron   Trigger = "cron"
	TriggerManual Trigger = "manual"
)

// Operation is one snapshot of an export's long-running operation, parsed from
// the Admin API's wire format.
type Operation struct {
	// Name is projects/{project}/operations/{id}, or
	// projects/{project}/databases/{database}/operations/{id} for an export
	// through the Firestore Admin API.
	Name    string
	Project string
	// Database is the exported database: "" or "(default)" for the
	// default one. Target is the configured target that started it ("" :
	// none, the single-target configuration of the environment).
	Database string
	Target   string
	Done     bool
	State    State
	Trigger  Trigger

	Kinds           []string
	Namespaces      []string
	OutputURLPrefix string
	// OutputURL is the .overall_export_metadata file, set on success; it is what
	// `gcloud datastore import` takes.
	OutputURL string

	EntitiesCompleted, EntitiesEstimated int64
	BytesCompleted, BytesEstimated       int64

	StartTime, EndTime time.Time
	// SnapshotTime is the point in time a consistent export reads (zero:
	// none; a Datastore Admin API export is never one point in time).
	SnapshotTime time.Time

	// ErrorCode is the google.rpc code of a failed or cancelled operation (0: none).
	ErrorCode    int
	ErrorMessage string

	// Refused marks a start the Admin API refused: there is no operation at
	// Google, only dsexport's record of the refusal, whose ErrorMessage is
	// the API's.
	Refused bool
}

// Outcome is how an operation ended, as far as dsexport is concerned.
type Outcome string

// The outcomes. The zero Outcome means the operation is still running.
const (
	OutcomeNone       Outcome = ""
	OutcomeSuccess    Outcome = "success"
	OutcomeFailure    Outcome = "failure"
	OutcomeUnexpected Outcome = "unexpected"
	OutcomeTimeout    Outcome = "timeout"
)

// Classify decides the outcome of a snapshot: OutcomeNone while it is running.
// Timeouts are not decided here: they depend on the poll count, not the snapshot.
func Classify(op Operation) Outcome {
	if !op.Done {
		// A final state without done is left alone: the response or error that
		// tells the outcome arrives with done.
		return OutcomeNone
	}
	if op.ErrorCode != 0 || op.ErrorMessage != "" {
		return OutcomeFailure
	}
	switch op.State {
	case StateSuccessful:
		return OutcomeSuccess
	case StateFailed, StateCancelled:
		return OutcomeFailure
	}
	return OutcomeUnexpected
}

// projectPattern is the one grammar of a project ID in dsexport: lower-case
// letters, digits and hyphens, starting with a letter (Google's IDs have 6 to
// 30 characters; the emulator takes shorter ones), optionally scoped by a
// domain ("example.com:my-app") whose labels start and end with a letter or
// digit. Operation names and configured projects are checked against it
// alike, so a project that passes configuration always makes valid names.
const projectPattern = `(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*:)?[a-z][a-z0-9-]{0,61}[a-z0-9]`

// nameRE matches exactly projects/{project}/operations/{id}; operation IDs
// are URL-safe base64. Nothing else may appear, so a name can never steer a
// request to another API path or host.
// The Firestore Admin API names an operation of a database
// projects/{project}/databases/{database}/operations/{id}; the database part
// is held to its own grammar as strictly.
var nameRE = regexp.MustCompile(`^projects/(` + projectPattern + `)/(?:databases/(` + databasePattern + `)/)?operations/([A-Za-z0-9_-]{1,500})$`)

// ParseName checks that name is projects/{project}/operations/{id} (the
// Datastore Admin API's) or projects/{project}/databases/{database}/operations/{id}
// (the Firestore Admin API's) and returns the project. gcloud's bare id form
// is not accepted here: it needs a project, see QualifyName.
func ParseName(name string) (project string, err error) {
	project, _, err = ParseNameIn(name)
	return project, err
}

// ParseNameIn is ParseName that also returns the database the name is in:
// "" for a Datastore Admin API name, which is always of (default).
func ParseNameIn(name string) (project, database string, err error) {
	m := nameRE.FindStringSubmatch(name)
	if m == nil {
		return "", "", fmt.Errorf("operation name %s is not projects/{project}/operations/{id} nor projects/{project}/databases/{database}/operations/{id}", quote(name))
	}
	return m[1], m[2], nil
}

// IsFirestoreName tells whether an operation name is the Firestore Admin
// API's (it holds a database).
func IsFirestoreName(name string) bool {
	_, db, err := ParseNameIn(name)
	return err == nil && db != ""
}

// QualifyName turns a bare operation id into a full name in project, as gcloud
// does, and validates the result.
func QualifyName(project, nameOrID string) (string, error) {
	return QualifyNameIn(project, "", nameOrID)
}

// QualifyNameIn is QualifyName for an operation of database: a bare id of a
// named database becomes a Firestore Admin API name.
func QualifyNameIn(project, database, nameOrID string) (string, error) {
	name := nameOrID
	if idRE.MatchString(nameOrID) {
		name = operationsOf(project, database) + nameOrID
	}
	if _, err := ParseName(name); err != nil {
		return "", err
	}
	return name, nil
}

// operationsOf is the prefix of the operation names of a database: the
// Datastore Admin API's for (default), the Firestore Admin API's otherwise.
func operationsOf(project, database string) string {
	if IsDefaultDatabase(database) {
		return "projects/" + project + "/operations/"
	}
	return "projects/" + project + "/databases/" + database + "/operations/"
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,500}$`)

// Report is what the notifier is asked to tell: the outcome and the last snapshot.
type Report struct {
	Outcome   Outcome
	Operation Operation
	// Polls is how many times the operation was read after it was started.
	Polls int
	// LastError is why the latest poll failed, when it did.
	LastError string
	// StartError is set when the export could not be started at all; Operation
	// then holds only what was asked for (project, prefix, filter, trigger).
	StartError string
	// Shrink is set on a success that holds notably fewer entities than the
	// previous success of the same database and filter.
	Shrink *Shrink
	// Verification is set on a success whose files were read (Config.Content):
	// what they hold, and what disagrees.
	Verification *Verification
	// Drill is set on the report of a restore drill, which is about no
	// export.
	Drill *Drill
	// Stale is set on the staleness alarm, which is about no operation.
	Stale *Stale
	// Backup is set on a report about managed backups (an alarm or a new
	// READY backup), which is about no operation.
	Backup *BackupNotice
	// Message, when set, is the progress message the report replaces; the
	// notifier also says it in the message's thread so the channel hears it.
	Message MessageRef
}

// Shrink compares a successful export with the previous one.
type Shrink struct {
	PreviousName     string
	PreviousEntities int64
	Entities         int64
}

// Percent is how much smaller the export is, in percent of the previous one.
func (s Shrink) Percent() float64 {
	if s.PreviousEntities == 0 {
		return 0
	}
	return 100 * float64(s.PreviousEntities-s.Entities) / float64(s.PreviousEntities)
}

// Stale says how long a project has gone without a successful export.
type Stale struct {
	// Project is the database's Scope: the project, for its (default)
	// database. Target names the target ("" : the environment's one).
	Project string
	Target  string
	// LastSuccess is zero when no export ever succeeded; Since is then when
	// dsexport started watching.
	LastSuccess Success
	Since       time.Time
	After       time.Duration
}

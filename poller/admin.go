package poller

import (
	"context"
	"errors"
	"time"
)

// ExportRequest is what an export is started with.
type ExportRequest struct {
	Project string
	// Database is the database to export: "" or "(default)" for the default
	// one, through the Datastore Admin API unless Firestore is set; a named
	// one through the Firestore Admin API.
	Database string
	// Firestore exports (default) through the Firestore Admin API too.
	Firestore bool
	// Target names the configured target ("" : the environment's single one).
	Target string
	// Consistent asks for an export of one point in time: Start sets
	// SnapshotTime to the last whole minute (Firestore Admin API only).
	Consistent   bool
	SnapshotTime time.Time
	// CronWindow, when set and shorter than the poller's, is this export's
	// window for cron retries (Config.CronWindow): a schedule that runs more
	// often than the poller's window must not have its starts taken for
	// retries of the one before.
	CronWindow      time.Duration
	OutputURLPrefix string
	Kinds           []string
	Namespaces      []string
	Trigger         Trigger
	// Force starts even while an export of the same database and filter runs.
	Force bool
}

// Admin is what the poller calls of an Admin API adapter (admin.Datastore):
// start an export, read an operation. Its errors are the domain's:
// ErrOperationGone for an operation the API does not know, ErrTransient for
// a failure that may pass, a *RefusedError for a start the API refused.
type Admin interface {
	Export(ctx context.Context, req ExportRequest) (Operation, error)
	Get(ctx context.Context, name string) (Operation, error)
}

// ErrOperationGone is wrapped by an adapter's error when the API does not
// know the operation (HTTP 404): it never existed, or it was deleted.
var ErrOperationGone = errors.New("operation not found")

// ErrTransient is wrapped by an adapter's error when the call may succeed if
// tried again (429, 5xx, timeouts, network failures).
var ErrTransient = errors.New("temporary failure")

// RefusedError is a start the Admin API refused or could not be asked to
// make. Code is the google.rpc code the adapter mapped the failure to
// (PERMISSION_DENIED is 7), so a report can name the kind of refusal
// whatever the transport said.
type RefusedError struct {
	Code int
	Err  error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// refusalCode is the google.rpc code of a failed start: the adapter's, or
// UNKNOWN (2) for an error that is no *RefusedError.
func refusalCode(err error) int {
	var re *RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	return 2
}

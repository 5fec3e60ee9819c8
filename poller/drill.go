package poller

import (
	"context"
	"errors"
	"time"
)

// DrillSpec is a target's restore drill (drill: in the targets file): every
// Every, the latest verified export of the target is imported into a
// scratch database, counted per kind, compared with its verification, and
// the scratch database deleted.
type DrillSpec struct {
	Every time.Duration
	// Kinds, when set, is the subset of kinds imported and counted: an
	// import writes every entity it imports, and is billed so.
	Kinds []string
	// Project is the scratch database's project ("" : the target's).
	Project string
	// Database, when set, is an existing database the drill imports into,
	// which dsexport neither creates nor deletes; "" : dsexport creates a
	// Datastore-mode database of its own for each drill (DrillDatabaseID)
	// in Location (""  : the source database's) and deletes it after.
	Database string
	Location string
	// Timeout bounds the import; zero means DefaultDrillTimeout.
	Timeout time.Duration
}

// DefaultDrillTimeout bounds a drill's import when its spec does not.
const DefaultDrillTimeout = 24 * time.Hour

// DrillStep is a step of a drill. A drill records the step it is at; a
// failed drill names the step that failed.
type DrillStep string

// The steps of a drill, in order.
const (
	// DrillChoose picks the latest verified export of the target.
	DrillChoose DrillStep = "choose"
	// DrillCreate creates the scratch database and waits for it.
	DrillCreate DrillStep = "create"
	// DrillImport starts the import and waits for its end.
	DrillImport DrillStep = "import"
	// DrillCount counts the scratch database's entities per kind.
	DrillCount DrillStep = "count"
	// DrillCompare compares the counts with the export's verification.
	DrillCompare DrillStep = "compare"
	// DrillDelete deletes the scratch database dsexport created.
	DrillDelete DrillStep = "delete"
	// DrillReport sends the drill's report, once.
	DrillReport DrillStep = "report"
	// DrillDone: the drill ended and was reported.
	DrillDone DrillStep = "done"
)

// DrillOutcome is how a drill ended ("" while it runs).
type DrillOutcome string

// The outcomes of a drill.
const (
	DrillRunning DrillOutcome = ""
	DrillPassed  DrillOutcome = "passed"
	DrillFailed  DrillOutcome = "failed"
)

// Drill is one restore drill of a target, as the store keeps it: each step
// advances it and is recorded before the next, so that a drill survives
// restarts and is followed by one sweep at a time (its lease).
type Drill struct {
	// ID is TARGET/BEGAN, BEGAN the drill's start as 20060102T150405Z.
	ID      string
	Target  string
	Project string
	// Database is the source database ("(default)" or a named one).
	Database string
	Trigger  Trigger
	Began    time.Time
	// Step is the step the drill is at (the next to do).
	Step DrillStep

	// Export is the export restored, InputURL its .overall_export_metadata,
	// ExportTime the point in time it holds; Expected its entities per kind
	// (cut to the spec's Kinds), from its Verification.
	Export     string
	InputURL   string
	ExportTime time.Time
	Kinds      []string
	Expected   []KindCount

	// ScratchProject and ScratchDatabase are where the drill imports;
	// CreateScratch says dsexport creates (and deletes) the database, in
	// Location.
	ScratchProject  string
	ScratchDatabase string
	CreateScratch   bool
	Location        string
	// CreateOp is the database creation's operation; CreateRequested is
	// recorded before the creation is asked for (the scratch database is
	// deleted whenever it is set), CreateStart when it was asked for.
	CreateOp        string
	CreateRequested time.Time
	CreateStart     time.Time
	// ImportOp is the import's operation; ImportStart and ImportEnd its
	// start and end; ImportEntities and ImportBytes its progress.
	ImportOp string
	// ImportRequested is recorded before the import is asked for;
	// ImportLeftRunning is set when the drill failed with an import that
	// may still be running (its name lost, or past Timeout).
	ImportRequested   time.Time
	ImportLeftRunning bool
	ImportStart       time.Time
	ImportEnd         time.Time
	ImportEntities    int64
	ImportBytes       int64
	// Timeout bounds the import.
	Timeout time.Duration
	// Attempts counts the failed tries of the step under way that may pass
	// (a transient error); MaxDrillAttempts of them fail the drill.
	Attempts int

	// Counted are the scratch database's entities per expected kind, in
	// Expected's order (a count under way holds the kinds counted so far).
	Counted []KindCount
	// Findings are the counts that differ from Expected.
	Findings []ContentFinding

	Outcome DrillOutcome
	// FailedStep and Error say what failed, when the drill failed.
	FailedStep DrillStep
	Error      string
	// Deleted is set when the scratch database was deleted; DeleteError
	// says why it was not (the report then says to delete it by hand).
	Deleted     bool
	DeleteError string
	Ended       time.Time
	ReportedAt  time.Time
	Updated     time.Time

	// LeaseHolder follows the drill until LeaseExpires; the lease is also
	// the claim on its report.
	LeaseHolder  string
	LeaseExpires time.Time
}

// Finished tells whether the drill ended and was reported.
func (d Drill) Finished() bool { return d.Step == DrillDone }

// RTO is the drill's restore time: from the scratch database's creation (or
// the import's start, into an existing database) to the import's end.
func (d Drill) RTO() time.Duration {
	start := d.CreateStart
	if start.IsZero() {
		start = d.ImportStart
	}
	if start.IsZero() || d.ImportEnd.IsZero() || d.ImportEnd.Before(start) {
		return 0
	}
	return d.ImportEnd.Sub(start)
}

// RPO is the age of the restored point when the drill began.
func (d Drill) RPO() time.Duration {
	if d.ExportTime.IsZero() || d.Began.Before(d.ExportTime) {
		return 0
	}
	return d.Began.Sub(d.ExportTime)
}

// ContentDrillCount: the scratch database's count of a kind after the
// import is not what the export's files hold.
const ContentDrillCount ContentRule = "drill-count"

// ImportRequest is an import into a database.
type ImportRequest struct {
	Project  string
	Database string
	// InputURL is the export's .overall_export_metadata object.
	InputURL   string
	Kinds      []string
	Namespaces []string
	Trigger    Trigger
}

// DrillAdmin is what a drill calls of the Admin APIs (admin.Router): create
// and delete the scratch database, import into it, read the operations.
type DrillAdmin interface {
	// CreateDatabase asks for a Datastore-mode database; the operation
	// may be done already.
	CreateDatabase(ctx context.Context, project, database, location string) (Operation, error)
	// DeleteDatabase deletes a database; one already gone is no error.
	DeleteDatabase(ctx context.Context, project, database string) error
	// Import starts an import.
	Import(ctx context.Context, req ImportRequest) (Operation, error)
	// Get reads an operation (a creation or an import).
	Get(ctx context.Context, name string) (Operation, error)
	// Database reads a database: the scratch database is created in the
	// source's location unless the spec names one.
	Database(ctx context.Context, project, database string) (DatabaseInfo, error)
}

// ScratchCounter counts, lists and clears the entities of a drill's
// scratch database (count.Counter): an existing scratch database must hold
// none before an import, and is emptied after.
type ScratchCounter interface {
	Counter
	// Kinds lists the kinds with entities, in every namespace.
	Kinds(ctx context.Context, project, database string) ([]KindCount, error)
	// Clear deletes the entities of kind in namespace, and says how many.
	Clear(ctx context.Context, project, database, namespace, kind string) (int64, error)
}

// DrillStore keeps drills (store.Store, memstore.Store).
type DrillStore interface {
	// BeginDrill records d as its target's drill under way, in one
	// transaction, unless the target has a drill under way already, or
	// began one at or after notBefore: it then returns that drill and
	// false. A zero notBefore begins unless one is under way.
	BeginDrill(ctx context.Context, d Drill, notBefore time.Time) (Drill, bool, error)
	// Drill returns drill id, or an error wrapping ErrNotFound.
	Drill(ctx context.Context, id string) (Drill, error)
	// LatestDrill returns target's latest drill; false when it has none.
	LatestDrill(ctx context.Context, target string) (Drill, bool, error)
	// UnfinishedDrills returns the drills that are not Finished.
	UnfinishedDrills(ctx context.Context) ([]Drill, error)
	// AcquireDrill leases drill id to holder until at+ttl, when no other
	// holder's lease runs; false (and the drill as it is) otherwise.
	// holder's own lease is taken again.
	AcquireDrill(ctx context.Context, id, holder string, at time.Time, ttl time.Duration) (Drill, bool, error)
	// SaveDrill replaces drill d.ID with d (its lease fields kept as they
	// are stored) when holder holds its lease: ErrLeaseLost otherwise.
	// A Finished drill is no longer its target's drill under way.
	SaveDrill(ctx context.Context, d Drill, holder string, at time.Time) error
	// ReleaseDrill ends holder's lease; another's is left alone.
	ReleaseDrill(ctx context.Context, id, holder string) error
}

// ErrNoVerifiedExport is why a drill cannot begin: its target has no
// verified export to restore.
var ErrNoVerifiedExport = errors.New("no verified export to restore")

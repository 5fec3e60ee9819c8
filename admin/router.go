package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/dsexport/dsexport/poller"
)

// Router is the poller's Admin when both Admin APIs are in use: it sends
// each call to the API that serves it. An export goes to Firestore when
// the request asks for it (Firestore) or names a database other than
// (default), which the Datastore Admin API cannot export; otherwise to
// Datastore. A read goes to Firestore for an operation name of the
// Firestore Admin API (projects/P/databases/D/operations/ID), otherwise to
// Datastore.
//
// A restore drill's calls (poller.DrillAdmin) go the same ways: the
// scratch database is created and deleted through Firestore, which alone
// manages databases; an import into (default) goes to Datastore unless
// FirestoreDefault is set, into a named database to Firestore; a side
// that cannot make the call (no Import, no CreateDatabase) is refused as a
// missing one is.
//
// Either side may be nil when a deployment uses one API only; a call for
// the missing side fails without being sent (an export with a
// *poller.RefusedError, FAILED_PRECONDITION). Leave a side nil rather
// than set it to a nil pointer, which is not a nil interface.
type Router struct {
	Datastore poller.Admin
	Firestore poller.Admin
	// FirestoreDefault sends imports into (default) through the Firestore
	// Admin API too, as an export request's Firestore sends its export.
	FirestoreDefault bool
}

// Export starts the export through the API that serves req.
func (r Router) Export(ctx context.Context, req poller.ExportRequest) (poller.Operation, error) {
	if req.Firestore || !poller.IsDefaultDatabase(req.Database) {
		if r.Firestore == nil {
			return poller.Operation{}, &poller.RefusedError{Code: codeFailedPrecondition,
				Err: fmt.Errorf("start export of %s: no Firestore Admin API client is configured, and it is the one that exports this database", poller.Scope(req.Project, dbID(req.Database)))}
		}
		return r.Firestore.Export(ctx, req)
	}
	if r.Datastore == nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeFailedPrecondition,
			Err: fmt.Errorf("start export of %s: no Datastore Admin API client is configured", req.Project)}
	}
	return r.Datastore.Export(ctx, req)
}

// Get reads the operation through the API whose name it has. A name that is
// neither API's is an error and never sent.
func (r Router) Get(ctx context.Context, name string) (poller.Operation, error) {
	_, db, err := poller.ParseNameIn(name)
	if err != nil {
		return poller.Operation{}, err
	}
	if db != "" {
		if r.Firestore == nil {
			return poller.Operation{}, fmt.Errorf("get %s: %w", name, errNoFirestore)
		}
		return r.Firestore.Get(ctx, name)
	}
	if r.Datastore == nil {
		return poller.Operation{}, fmt.Errorf("get %s: %w", name, errNoDatastore)
	}
	return r.Datastore.Get(ctx, name)
}

var (
	errNoFirestore = errors.New("no Firestore Admin API client is configured to read this operation")
	errNoDatastore = errors.New("no Datastore Admin API client is configured to read this operation")
)

// importer is a side that imports (Datastore, Firestore).
type importer interface {
	Import(ctx context.Context, req poller.ImportRequest) (poller.Operation, error)
}

// databaseAdmin is a side that creates and deletes databases (Firestore).
type databaseAdmin interface {
	CreateDatabase(ctx context.Context, project, database, location string) (poller.Operation, error)
	DeleteDatabase(ctx context.Context, project, database string) error
	Database(ctx context.Context, project, database string) (poller.DatabaseInfo, error)
}

// Database reads a database through Firestore: a drill creates its
// scratch database in the source's location.
func (r Router) Database(ctx context.Context, project, database string) (poller.DatabaseInfo, error) {
	d, err := r.databases("read database " + poller.Scope(project, dbID(database)))
	if err != nil {
		return poller.DatabaseInfo{}, err
	}
	return d.Database(ctx, project, database)
}

// databases is the Firestore side as a databaseAdmin, or an error saying
// why there is none.
func (r Router) databases(what string) (databaseAdmin, error) {
	if d, ok := r.Firestore.(databaseAdmin); ok {
		return d, nil
	}
	return nil, &poller.RefusedError{Code: codeFailedPrecondition,
		Err: fmt.Errorf("%s: no Firestore Admin API client is configured that manages databases", what)}
}

// CreateDatabase creates the database through Firestore.
func (r Router) CreateDatabase(ctx context.Context, project, database, location string) (poller.Operation, error) {
	d, err := r.databases("create database " + poller.Scope(project, dbID(database)))
	if err != nil {
		return poller.Operation{}, err
	}
	return d.CreateDatabase(ctx, project, database, location)
}

// DeleteDatabase deletes the database through Firestore.
func (r Router) DeleteDatabase(ctx context.Context, project, database string) error {
	d, err := r.databases("delete database " + poller.Scope(project, dbID(database)))
	if err != nil {
		return err
	}
	return d.DeleteDatabase(ctx, project, database)
}

// Import starts the import through the API that serves req's database.
func (r Router) Import(ctx context.Context, req poller.ImportRequest) (poller.Operation, error) {
	what := "start import into " + poller.Scope(req.Project, dbID(req.Database))
	if r.FirestoreDefault || !poller.IsDefaultDatabase(req.Database) {
		if im, ok := r.Firestore.(importer); ok {
			return im.Import(ctx, req)
		}
		return poller.Operation{}, &poller.RefusedError{Code: codeFailedPrecondition,
			Err: fmt.Errorf("%s: no Firestore Admin API client is configured that imports, and it is the one that imports into this database", what)}
	}
	if im, ok := r.Datastore.(importer); ok {
		return im.Import(ctx, req)
	}
	return poller.Operation{}, &poller.RefusedError{Code: codeFailedPrecondition,
		Err: fmt.Errorf("%s: no Datastore Admin API client is configured that imports", what)}
}

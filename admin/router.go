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
// Either side may be nil when a deployment uses one API only; a call for
// the missing side fails without being sent (an export with a
// *poller.RefusedError, FAILED_PRECONDITION). Leave a side nil rather
// than set it to a nil pointer, which is not a nil interface.
type Router struct {
	Datastore poller.Admin
	Firestore poller.Admin
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

package admin

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	dsadmin "google.golang.org/api/datastore/v1"
	fsadmin "google.golang.org/api/firestore/v1"

	"github.com/dsexport/dsexport/internal/retry"
	"github.com/dsexport/dsexport/poller"
)

// This file holds the Admin API calls of a restore drill: create a
// scratch database, import an export into it, delete it.

// Import starts an import (projects.import) into the (default) database
// of req.Project: inputUrl is req.InputURL, the export's
// .overall_export_metadata; kinds and namespaces, when given, its
// entityFilter (which must be one the export holds); the trigger goes into
// its labels, as an export's does.
//
// Import is not idempotent: a retried POST the API had acted on would
// start a second import of the same entities, billed again. So it retries
// as Export does, only a 429 and a connection never opened; a refusal is a
// *poller.RefusedError with the google.rpc code of the refusal.
//
// The Datastore Admin API imports only into the (default) database: a
// request for a named one is refused without a call (INVALID_ARGUMENT), as
// importing into (default) instead would overwrite its entities; named
// databases go through Firestore (see Router). So is an input that is no
// gs://…/….overall_export_metadata (against the emulator, a local path to
// one too).
func (a *Datastore) Import(ctx context.Context, req poller.ImportRequest) (poller.Operation, error) {
	if !poller.IsDefaultDatabase(req.Database) {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument,
			Err: fmt.Errorf("start import into %s: the Datastore Admin API imports only into the (default) database; database %q goes through the Firestore Admin API",
				req.Project, poller.BoundText(req.Database, poller.MaxLabel))}
	}
	if err := poller.ValidateProject(req.Project); err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("start import: %w", err)}
	}
	if err := checkInput(req.InputURL, a.emulator); err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("start import into %s: %w", req.Project, err)}
	}
	body := &dsadmin.GoogleDatastoreAdminV1ImportEntitiesRequest{
		InputUrl:     req.InputURL,
		Labels:       map[string]string{"trigger": string(req.Trigger)},
		EntityFilter: entityFilter(req.Kinds, req.Namespaces),
	}
	var lro *dsadmin.GoogleLongrunningOperation
	err := retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Import(req.Project, body).Context(ctx).Do()
			return err
		})
	}, classifyExport)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: RPCCode(err),
			Err: fmt.Errorf("start import into %s from %s: %w", req.Project, quoteBounded(req.InputURL), err)}
	}
	op, err := ParseOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("start import into %s: %w", req.Project, err)
	}
	if op.Project == "" {
		op.Project = req.Project
	}
	if op.Trigger == "" {
		op.Trigger = req.Trigger
	}
	return op, nil
}

// checkInput refuses an import's input that is not an export's
// .overall_export_metadata object in Cloud Storage (or, when local is set,
// a local path to one: the emulator's).
func checkInput(in string, local bool) error {
	if !strings.HasSuffix(in, metadataSuffix) || len(in) > poller.MaxURL {
		return fmt.Errorf("input %s is not an export's %s file", quoteBounded(in), metadataSuffix)
	}
	if !strings.HasPrefix(in, "gs://") && !(local && strings.HasPrefix(in, "/")) {
		return fmt.Errorf("input %s is not in Cloud Storage (gs://BUCKET/…)", quoteBounded(in))
	}
	return nil
}

// locationRE is a Firestore location id: nam5, eur3, us-central1.
var locationRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// CreateDatabase asks for a Datastore-mode database (projects.databases.create
// with databaseId database, locationId location) and returns its
// operation, which may be done already. The database must be a named one:
// a drill never creates (default). A bad project, database or location is
// refused without a call (INVALID_ARGUMENT).
//
// Creating is retried only when the API certainly did not act (a 429, a
// connection never opened): a retry of a creation that went through
// answers ALREADY_EXISTS, which would pass for another's database. A
// refusal is a *poller.RefusedError: ALREADY_EXISTS (6) for a database of
// that id that exists (or was deleted too recently for its id to be
// taken again).
func (a *Firestore) CreateDatabase(ctx context.Context, project, database, location string) (poller.Operation, error) {
	name, err := namedDatabase(project, database)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("create database: %w", err)}
	}
	if !locationRE.MatchString(location) {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument,
			Err: fmt.Errorf("create database %s: location %s is not a location id (nam5, us-central1)", name, quoteBounded(location))}
	}
	body := &fsadmin.GoogleFirestoreAdminV1Database{Type: "DATASTORE_MODE", LocationId: location}
	var lro *fsadmin.GoogleLongrunningOperation
	err = retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Databases.Create("projects/"+project, body).DatabaseId(database).Context(ctx).Do()
			return err
		})
	}, classifyExport)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: RPCCode(err), Err: fmt.Errorf("create database %s in %s: %w", name, location, err)}
	}
	op, err := ParseFirestoreOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("create database %s: %w", name, err)
	}
	if op.Project == "" {
		op.Project, op.Database = project, database
	}
	return op, nil
}

// DeleteDatabase deletes a named database (projects.databases.delete); one
// that is not there (404) is no error. It does not wait for the deletion's
// operation: a database being deleted is gone for a drill. Deleting is
// retried as a read is: a retry of a deletion that went through answers
// 404, which is the outcome asked for. (default) is never deleted: it is
// refused without a call, whatever asks.
func (a *Firestore) DeleteDatabase(ctx context.Context, project, database string) error {
	name, err := namedDatabase(project, database)
	if err != nil {
		return &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("delete database: %w", err)}
	}
	err = a.read(ctx, func(ctx context.Context) error {
		_, err := a.svc.Projects.Databases.Delete(name).Context(ctx).Do()
		return err
	})
	if StatusCode(err) == http.StatusNotFound {
		return nil
	}
	if err != nil {
		return domainError(fmt.Errorf("delete database %s: %w", name, err))
	}
	return nil
}

// Import starts an import into req's database ("" : "(default)") with
// projects.databases.importDocuments: inputUriPrefix is the export's
// folder (the directory that holds req.InputURL, its
// .overall_export_metadata), kinds its collectionIds, namespaces its
// namespaceIds. The Firestore Admin API has no labels: the operation
// returned carries req's trigger. It retries, and refuses, as Export does.
func (a *Firestore) Import(ctx context.Context, req poller.ImportRequest) (poller.Operation, error) {
	db, err := databaseName(req.Project, req.Database)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("start import: %w", err)}
	}
	if err := checkInput(req.InputURL, false); err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("start import into %s: %w", db, err)}
	}
	body := &fsadmin.GoogleFirestoreAdminV1ImportDocumentsRequest{
		InputUriPrefix: exportFolderOf(req.InputURL),
		CollectionIds:  req.Kinds,
		NamespaceIds:   req.Namespaces,
	}
	var lro *fsadmin.GoogleLongrunningOperation
	err = retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Databases.ImportDocuments(db, body).Context(ctx).Do()
			return err
		})
	}, classifyExport)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: RPCCode(err),
			Err: fmt.Errorf("start import into %s from %s: %w", db, quoteBounded(body.InputUriPrefix), err)}
	}
	op, err := ParseFirestoreOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("start import into %s: %w", db, err)
	}
	if op.Project == "" {
		op.Project, op.Database = req.Project, dbID(req.Database)
	}
	if op.Trigger == "" {
		op.Trigger = req.Trigger
	}
	return op, nil
}

// exportFolderOf is the folder that holds an export's
// .overall_export_metadata object (gs://b/x/F/F.overall_export_metadata:
// gs://b/x/F), which importDocuments takes.
func exportFolderOf(file string) string {
	i := strings.LastIndex(file, "/")
	if i <= len("gs://") {
		return file
	}
	return file[:i]
}

// namedDatabase is databaseName of a database other than (default).
func namedDatabase(project, database string) (string, error) {
	if poller.IsDefaultDatabase(database) {
		return "", fmt.Errorf("database of %s: a drill's scratch database is a named one, never (default)", poller.BoundText(project, poller.MaxLabel))
	}
	return databaseName(project, database)
}

package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	fsadmin "google.golang.org/api/firestore/v1"

	"github.com/dsexport/dsexport/internal/retry"
	"github.com/dsexport/dsexport/poller"
)

// Firestore is the Firestore Admin API client
// (google.golang.org/api/firestore/v1) for what the Datastore Admin API
// cannot do: export a named database (projects.databases.exportDocuments
// and projects.databases.operations.get) and read a database's managed
// backups (projects.databases.get, projects.databases.backupSchedules.list,
// projects.locations.backups.list). It is a poller.Admin and a
// poller.BackupsAdmin.
type Firestore struct {
	svc   *fsadmin.Service
	retry retry.Policy
}

// The bounds of the lists Firestore keeps of an answer. An answer of up to
// MaxAnswer bytes is decoded, then cut to these.
const (
	// MaxBackups bounds the backups Backups returns: the newest by snapshot
	// time are kept. A daily schedule kept 14 weeks and a weekly one make
	// about 112; a longer list is broken or hostile, and the oldest
	// backups are the least useful to a watch.
	MaxBackups = 1000
	// MaxSchedules bounds the schedules BackupSchedules returns (the first
	// ones are kept): Firestore allows one daily and one weekly schedule
	// per database.
	MaxSchedules = 100
	// MaxUnreachable bounds the unreachable locations Backups returns
	// (Firestore has a few dozen locations).
	MaxUnreachable = 100
)

// NewFirestore builds the Firestore Admin API client, as NewDatastore builds
// the Datastore one: with an empty endpoint it talks to Google with
// Application Default Credentials; with an endpoint (a fake) it sends
// requests there without authentication. Every answer is read through the
// bound (MaxAnswer), the API's part of an error's text is at most
// poller.MaxErrorText bytes, and opts set the retry policy (DefaultRetry).
func NewFirestore(ctx context.Context, endpoint string, hc *http.Client, opts ...Option) (*Firestore, error) {
	copts, err := clientOptions(ctx, endpoint, hc, fsadmin.CloudPlatformScope, fsadmin.DatastoreScope)
	if err != nil {
		return nil, fmt.Errorf("firestore admin client: %w", err)
	}
	svc, err := fsadmin.NewService(ctx, copts...)
	if err != nil {
		return nil, fmt.Errorf("firestore admin client: %w", err)
	}
	return &Firestore{svc: svc, retry: newSettings(opts).retry}, nil
}

// Export starts an export of req's database ("" : "(default)") with
// projects.databases.exportDocuments: kinds are its collectionIds,
// namespaces its namespaceIds (as given: [""] is the default namespace
// only, none all of them), and SnapshotTime, when set, its snapshotTime
// (a consistent export of that moment). The Firestore Admin API has no
// labels, so the trigger is not sent; the operation returned carries
// req's trigger, database and snapshot time.
//
// Export retries as Datastore.Export does, only what certainly started
// nothing (a 429, a connection never opened), and a refused start is a
// *poller.RefusedError with the google.rpc code of the refusal; a project
// or database that is no valid id is refused (INVALID_ARGUMENT) without a
// call.
//
// The API makes a folder of its own for the export only under a bare bucket;
// under a prefix with a path (gs://bucket/path) it would write every export
// into the same place. Export therefore names a folder under such a prefix
// as the Datastore Admin API does (ExportFolder), so that each export of a
// schedule has its own files and restore command.
func (a *Firestore) Export(ctx context.Context, req poller.ExportRequest) (poller.Operation, error) {
	db, err := databaseName(req.Project, req.Database)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: codeInvalidArgument, Err: fmt.Errorf("start export: %w", err)}
	}
	body := &fsadmin.GoogleFirestoreAdminV1ExportDocumentsRequest{
		OutputUriPrefix: ExportFolder(req.OutputURLPrefix, time.Now()),
		CollectionIds:   req.Kinds,
		NamespaceIds:    req.Namespaces,
	}
	if !req.SnapshotTime.IsZero() {
		body.SnapshotTime = req.SnapshotTime.UTC().Format(time.RFC3339Nano)
	}
	var lro *fsadmin.GoogleLongrunningOperation
	err = retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, func(ctx context.Context) (err error) {
			lro, err = a.svc.Projects.Databases.ExportDocuments(db, body).Context(ctx).Do()
			return err
		})
	}, classifyExport)
	if err != nil {
		return poller.Operation{}, &poller.RefusedError{Code: RPCCode(err),
			Err: fmt.Errorf("start export of %s to %s: %w", db, req.OutputURLPrefix, err)}
	}
	op, err := ParseFirestoreOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("start export of %s: %w", db, err)
	}
	if op.Project == "" {
		op.Project = req.Project
	}
	if op.Database == "" {
		op.Database = dbID(req.Database)
	}
	if op.Trigger == "" {
		op.Trigger = req.Trigger
	}
	if op.SnapshotTime.IsZero() {
		op.SnapshotTime = req.SnapshotTime.UTC()
	}
	return op, nil
}

// ExportFolder is where an export started at now under prefix writes its
// files: prefix itself when it is a bare bucket (gs://bucket, where the
// Firestore Admin API names a folder of its own), else a folder under it
// named as the Datastore Admin API names its own, the start time and a
// random number (gs://bucket/path/2026-12-02T03:00:00_04217).
func ExportFolder(prefix string, now time.Time) string {
	rest, ok := strings.CutPrefix(prefix, "gs://")
	if !ok {
		return prefix // refused by the API, as it is
	}
	bucket, path, _ := strings.Cut(rest, "/")
	path = strings.TrimSuffix(path, "/")
	if path == "" {
		return prefix
	}
	return fmt.Sprintf("gs://%s/%s/%s_%05d", bucket, path, now.UTC().Format("2006-01-02T15:04:05"), rand.IntN(100000))
}

// Get reads the operation name, which must be
// projects/{project}/databases/{database}/operations/{id}; any other name
// is an error and never sent. Reading is idempotent, so Get retries every
// transient failure, as Datastore.Get does; a 404 wraps
// poller.ErrOperationGone, a failure that may pass poller.ErrTransient.
func (a *Firestore) Get(ctx context.Context, name string) (poller.Operation, error) {
	project, db, err := poller.ParseNameIn(name)
	if err != nil {
		return poller.Operation{}, err
	}
	if db == "" {
		return poller.Operation{}, fmt.Errorf("operation name %q is the Datastore Admin API's, not projects/{project}/databases/{database}/operations/{id}", name)
	}
	var lro *fsadmin.GoogleLongrunningOperation
	err = a.read(ctx, func(ctx context.Context) (err error) {
		lro, err = a.svc.Projects.Databases.Operations.Get(name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return poller.Operation{}, domainError(fmt.Errorf("get %s: %w", name, err))
	}
	op, err := ParseFirestoreOperation(lro)
	if err != nil {
		return poller.Operation{}, fmt.Errorf("get %s: %w", name, err)
	}
	if op.Name == "" {
		op.Name, op.Project, op.Database = name, project, db
	}
	return op, nil
}

// read calls do, a read of the API, with the retries of an idempotent call
// and its error bounded.
func (a *Firestore) read(ctx context.Context, do func(ctx context.Context) error) error {
	return retry.Do(ctx, a.retry, func(ctx context.Context) error {
		return bounded(ctx, do)
	}, classifyGet)
}

// ParseFirestoreOperationJSON parses an export operation as the Firestore
// Admin API's REST answer has it.
func ParseFirestoreOperationJSON(data []byte) (poller.Operation, error) {
	var lro fsadmin.GoogleLongrunningOperation
	if err := json.Unmarshal(data, &lro); err != nil {
		return poller.Operation{}, fmt.Errorf("parse operation: %w", err)
	}
	return ParseFirestoreOperation(&lro)
}

// ParseFirestoreOperation turns the API's long-running operation, whose
// metadata is an ExportDocumentsMetadata, into a snapshot: operationState
// is the state (the Datastore Admin API's names), progressDocuments the
// entities, progressBytes the bytes (int64s sent as strings, absent until
// known), and on success the response's outputUriPrefix is the OutputURL:
// the folder gcloud firestore import takes. A name, when present, must be
// projects/{project}/databases/{database}/operations/{id}; the project and
// database are taken from it. Strings and lists are bounded as
// ParseOperation bounds them.
func ParseFirestoreOperation(lro *fsadmin.GoogleLongrunningOperation) (poller.Operation, error) {
	op := poller.Operation{Name: lro.Name, Done: lro.Done}
	if lro.Name != "" {
		project, db, err := poller.ParseNameIn(lro.Name)
		if err != nil {
			return poller.Operation{}, err
		}
		if db == "" {
			return poller.Operation{}, fmt.Errorf("operation name %q holds no database: not a Firestore Admin API operation", lro.Name)
		}
		op.Project, op.Database = project, db
	}
	if len(lro.Metadata) > 0 {
		var md fsadmin.GoogleFirestoreAdminV1ExportDocumentsMetadata
		if err := json.Unmarshal(lro.Metadata, &md); err != nil {
			return poller.Operation{}, fmt.Errorf("parse operation metadata: %w", err)
		}
		op.State = operationState(md.OperationState)
		op.Kinds, op.Namespaces = md.CollectionIds, md.NamespaceIds
		op.OutputURLPrefix = md.OutputUriPrefix
		if p := md.ProgressDocuments; p != nil {
			op.EntitiesCompleted, op.EntitiesEstimated = p.CompletedWork, p.EstimatedWork
		}
		if p := md.ProgressBytes; p != nil {
			op.BytesCompleted, op.BytesEstimated = p.CompletedWork, p.EstimatedWork
		}
		var err error
		if op.StartTime, err = parseTime("startTime", md.StartTime); err != nil {
			return poller.Operation{}, err
		}
		if op.EndTime, err = parseTime("endTime", md.EndTime); err != nil {
			return poller.Operation{}, err
		}
		if op.SnapshotTime, err = parseTime("snapshotTime", md.SnapshotTime); err != nil {
			return poller.Operation{}, err
		}
	}
	if len(lro.Response) > 0 {
		var resp fsadmin.GoogleFirestoreAdminV1ExportDocumentsResponse
		if err := json.Unmarshal(lro.Response, &resp); err != nil {
			return poller.Operation{}, fmt.Errorf("parse operation response: %w", err)
		}
		op.OutputURL = resp.OutputUriPrefix
	}
	if e := lro.Error; e != nil {
		op.ErrorCode, op.ErrorMessage = int(e.Code), e.Message
		if op.ErrorCode == 0 && op.ErrorMessage == "" {
			op.ErrorMessage = "operation ended with an empty error"
		}
	}
	return op.Bounded(), nil
}

// operationState is the poller's State of a Firestore OperationState: the
// same names, but for the unspecified one.
func operationState(s string) poller.State {
	if s == "OPERATION_STATE_UNSPECIFIED" {
		return poller.StateUnspecified
	}
	return poller.State(s)
}

// Database reads the database (projects.databases.get): its uid, which
// backups are listed by, its location, type and point-in-time-recovery
// window. A database that does not exist is an error wrapping
// poller.ErrOperationGone; an answer about another database one wrapping
// poller.ErrForeignAnswer.
func (a *Firestore) Database(ctx context.Context, project, database string) (poller.DatabaseInfo, error) {
	name, err := databaseName(project, database)
	if err != nil {
		return poller.DatabaseInfo{}, err
	}
	var db *fsadmin.GoogleFirestoreAdminV1Database
	err = a.read(ctx, func(ctx context.Context) (err error) {
		db, err = a.svc.Projects.Databases.Get(name).Context(ctx).Do()
		return err
	})
	if err != nil {
		return poller.DatabaseInfo{}, domainError(fmt.Errorf("get database %s: %w", name, err))
	}
	info, err := parseDatabase(db)
	if err != nil {
		return poller.DatabaseInfo{}, fmt.Errorf("get database %s: %w", name, err)
	}
	switch info.Name {
	case "":
		info.Name = name
	case name:
	default:
		return poller.DatabaseInfo{}, fmt.Errorf("get database %s: the API answered with %q: %w", name, info.Name, poller.ErrForeignAnswer)
	}
	return info, nil
}

// uidRE is a database uid as it may go into a filter: Google's are UUID4s;
// at most poller.MaxDatabaseUID bytes, the bound the watch holds it to.
var uidRE = regexp.MustCompile(`^[A-Za-z0-9-]{1,` + strconv.Itoa(poller.MaxDatabaseUID) + `}$`)

func parseDatabase(db *fsadmin.GoogleFirestoreAdminV1Database) (poller.DatabaseInfo, error) {
	if db.Uid != "" && !uidRE.MatchString(db.Uid) {
		return poller.DatabaseInfo{}, fmt.Errorf("parse database: uid %s is not a database uid", quoteBounded(db.Uid))
	}
	info := poller.DatabaseInfo{
		Name:     poller.BoundText(db.Name, poller.MaxName),
		UID:      db.Uid,
		Location: poller.BoundText(db.LocationId, poller.MaxLabel),
		Type:     poller.BoundText(db.Type, poller.MaxLabel),
	}
	var err error
	if info.VersionRetention, err = parseDuration("database versionRetentionPeriod", db.VersionRetentionPeriod); err != nil {
		return poller.DatabaseInfo{}, err
	}
	if info.EarliestVersion, err = parseField("database earliestVersionTime", db.EarliestVersionTime); err != nil {
		return poller.DatabaseInfo{}, err
	}
	return info, nil
}

// BackupSchedules lists the database's backup schedules
// (projects.databases.backupSchedules.list), at most MaxSchedules. A
// schedule of another database in the answer is an error wrapping
// poller.ErrForeignAnswer: taken as this database's, it would hide a
// missing schedule.
func (a *Firestore) BackupSchedules(ctx context.Context, project, database string) ([]poller.BackupSchedule, error) {
	parent, err := databaseName(project, database)
	if err != nil {
		return nil, err
	}
	var resp *fsadmin.GoogleFirestoreAdminV1ListBackupSchedulesResponse
	err = a.read(ctx, func(ctx context.Context) (err error) {
		resp, err = a.svc.Projects.Databases.BackupSchedules.List(parent).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, domainError(fmt.Errorf("list backup schedules of %s: %w", parent, err))
	}
	out, err := parseSchedules(parent, resp.BackupSchedules)
	if err != nil {
		return nil, fmt.Errorf("list backup schedules of %s: %w", parent, err)
	}
	return out, nil
}

func parseSchedules(parent string, list []*fsadmin.GoogleFirestoreAdminV1BackupSchedule) ([]poller.BackupSchedule, error) {
	out := make([]poller.BackupSchedule, 0, min(len(list), MaxSchedules))
	for i, s := range list[:min(len(list), MaxSchedules)] {
		if s == nil {
			return nil, fmt.Errorf("parse backupSchedules[%d]: null", i)
		}
		if s.Name != "" && !strings.HasPrefix(s.Name, parent+"/backupSchedules/") {
			return nil, fmt.Errorf("parse backupSchedules[%d]: schedule %s is not one of %s: %w", i, quoteBounded(s.Name), parent, poller.ErrForeignAnswer)
		}
		bs := poller.BackupSchedule{Name: poller.BoundText(s.Name, poller.MaxName)}
		switch {
		case s.DailyRecurrence != nil && s.WeeklyRecurrence != nil:
			return nil, fmt.Errorf("parse backupSchedules[%d]: both dailyRecurrence and weeklyRecurrence", i)
		case s.DailyRecurrence != nil:
			bs.Recurrence = poller.Daily
		case s.WeeklyRecurrence != nil:
			bs.Recurrence, bs.Weekday = poller.Weekly, poller.BoundText(s.WeeklyRecurrence.Day, poller.MaxLabel)
		}
		field := func(f string) string { return "backupSchedules[" + strconv.Itoa(i) + "] " + f }
		var err error
		if bs.Retention, err = parseDuration(field("retention"), s.Retention); err != nil {
			return nil, err
		}
		if bs.CreateTime, err = parseField(field("createTime"), s.CreateTime); err != nil {
			return nil, err
		}
		if bs.UpdateTime, err = parseField(field("updateTime"), s.UpdateTime); err != nil {
			return nil, err
		}
		out = append(out, bs)
	}
	return out, nil
}

// Backups lists the backups of the database whose uid is databaseUID in
// every location of project (projects.locations.backups.list of location
// "-", filter database_uid="…"), newest snapshot first, at most
// MaxBackups of them: the newest. unreachable names the locations that did
// not answer (at most MaxUnreachable). A backup the answer holds of another
// database uid (a filter not applied) is left out; one without a uid is
// taken as the database's.
func (a *Firestore) Backups(ctx context.Context, project, databaseUID string) ([]poller.Backup, []string, error) {
	if err := poller.ValidateProject(project); err != nil {
		return nil, nil, err
	}
	if !uidRE.MatchString(databaseUID) {
		return nil, nil, fmt.Errorf("list backups: database uid %s is not a database uid", quoteBounded(databaseUID))
	}
	parent := "projects/" + project + "/locations/-"
	var resp *fsadmin.GoogleFirestoreAdminV1ListBackupsResponse
	err := a.read(ctx, func(ctx context.Context) (err error) {
		resp, err = a.svc.Projects.Locations.Backups.List(parent).Filter(`database_uid="` + databaseUID + `"`).Context(ctx).Do()
		return err
	})
	if err != nil {
		return nil, nil, domainError(fmt.Errorf("list backups of database uid %s in %s: %w", databaseUID, project, err))
	}
	backups, unreachable, err := parseBackups(databaseUID, resp)
	if err != nil {
		return nil, nil, fmt.Errorf("list backups of database uid %s in %s: %w", databaseUID, project, err)
	}
	return backups, unreachable, nil
}

// backupNameRE is projects/{project}/locations/{location}/backups/{id}.
var backupNameRE = regexp.MustCompile(`^projects/[a-z0-9.:-]{1,100}/locations/[a-z0-9-]{1,63}/backups/[A-Za-z0-9_-]{1,500}$`)

func parseBackups(uid string, resp *fsadmin.GoogleFirestoreAdminV1ListBackupsResponse) ([]poller.Backup, []string, error) {
	var out []poller.Backup
	for i, b := range resp.Backups {
		if b == nil {
			return nil, nil, fmt.Errorf("parse backups[%d]: null", i)
		}
		if b.DatabaseUid != "" && b.DatabaseUid != uid {
			continue
		}
		if !backupNameRE.MatchString(b.Name) {
			return nil, nil, fmt.Errorf("parse backups[%d]: name %s is not projects/{project}/locations/{location}/backups/{backup}", i, quoteBounded(b.Name))
		}
		bk := poller.Backup{
			Name:        b.Name,
			Database:    poller.BoundText(b.Database, poller.MaxName),
			DatabaseUID: uid,
			State:       poller.BackupState(poller.BoundText(b.State, poller.MaxLabel)),
		}
		field := func(f string) string { return "backups[" + strconv.Itoa(i) + "] " + f }
		if s := b.Stats; s != nil {
			// Counts: a negative one is a broken answer, which would pass
			// for a shrink or hide one.
			if s.DocumentCount < 0 {
				return nil, nil, fmt.Errorf("parse %s: %d is negative", field("stats.documentCount"), s.DocumentCount)
			}
			if s.SizeBytes < 0 {
				return nil, nil, fmt.Errorf("parse %s: %d is negative", field("stats.sizeBytes"), s.SizeBytes)
			}
			bk.Documents, bk.Bytes = s.DocumentCount, s.SizeBytes
		}
		var err error
		if bk.SnapshotTime, err = parseField(field("snapshotTime"), b.SnapshotTime); err != nil {
			return nil, nil, err
		}
		if bk.ExpireTime, err = parseField(field("expireTime"), b.ExpireTime); err != nil {
			return nil, nil, err
		}
		out = append(out, bk)
	}
	slices.SortFunc(out, func(x, y poller.Backup) int {
		if c := y.SnapshotTime.Compare(x.SnapshotTime); c != 0 {
			return c
		}
		return cmp.Compare(x.Name, y.Name)
	})
	if len(out) > MaxBackups {
		out = slices.Clip(out[:MaxBackups])
	}
	var unreachable []string
	for _, loc := range resp.Unreachable[:min(len(resp.Unreachable), MaxUnreachable)] {
		unreachable = append(unreachable, poller.BoundText(loc, poller.MaxName))
	}
	if n := len(resp.Unreachable); n > MaxUnreachable {
		unreachable[len(unreachable)-1] = fmt.Sprintf("… [cut: %d locations in all]", n)
	}
	return out, unreachable, nil
}

// databaseName is projects/{project}/databases/{database}, database ""
// being "(default)", once both are valid ids.
func databaseName(project, database string) (string, error) {
	if err := poller.ValidateProject(project); err != nil {
		return "", err
	}
	if err := poller.ValidateDatabase(database); err != nil {
		return "", err
	}
	return "projects/" + project + "/databases/" + dbID(database), nil
}

// dbID is database with "" spelled "(default)".
func dbID(database string) string {
	if database == "" {
		return poller.DefaultDatabase
	}
	return database
}

// parseField is parseTime for a field of a resource other than an
// operation.
func parseField(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse %s: %s is not an RFC 3339 time", field, quoteBounded(s))
	}
	return t.UTC(), nil
}

// maxDurationSeconds is the most whole seconds a time.Duration holds.
const maxDurationSeconds = int64(1<<63-1)/int64(time.Second) - 1

// parseDuration reads a google.protobuf.Duration as JSON has it: seconds
// with up to nine fractional digits and the suffix "s" ("3600s",
// "1.5s"). A negative one, or one beyond a time.Duration, is an error.
func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("parse %s: %s is not a duration in seconds (%s)", field, quoteBounded(s), why)
	}
	num, ok := strings.CutSuffix(s, "s")
	if !ok {
		return 0, bad(`no "s"`)
	}
	whole, frac, _ := strings.Cut(num, ".")
	if whole == "" || !digits(whole) || !digits(frac) || len(frac) > 9 {
		return 0, bad("not a decimal number of seconds ≥ 0 with at most nine fractional digits")
	}
	sec, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || sec > maxDurationSeconds {
		return 0, bad("too long")
	}
	nanos := int64(0)
	if frac != "" {
		nanos, _ = strconv.ParseInt(frac+strings.Repeat("0", 9-len(frac)), 10, 64)
	}
	return time.Duration(sec)*time.Second + time.Duration(nanos), nil
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// quoteBounded is s quoted for an error message, bounded first.
func quoteBounded(s string) string { return strconv.Quote(poller.BoundText(s, 256)) }

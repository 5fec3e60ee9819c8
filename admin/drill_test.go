package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/poller"
)

// The Router is what a restore drill calls.
var _ poller.DrillAdmin = admin.Router{}

const (
	drillDB     = "dsexport-drill-20261124t041000z"
	drillInput  = "gs://example-backups/2026-11-23T03:00:04_43519/2026-11-23T03:00:04_43519.overall_export_metadata"
	drillFolder = "gs://example-backups/2026-11-23T03:00:04_43519"
)

// TestImportWireSample parses a Datastore Admin API import operation:
// ImportEntitiesMetadata has the export's fields but for inputUrl, and its
// response is empty.
func TestImportWireSample(t *testing.T) {
	got := readWire(t, "import-successful.json")
	want := poller.Operation{
		Name:    "projects/example-proj/operations/AiA4NjUwODQ5NzUJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
		Project: "example-proj", Done: true, State: poller.StateSuccessful, Trigger: poller.TriggerCron,
		Kinds: []string{"User", "Order"}, Namespaces: []string{""},
		EntitiesCompleted: 21933027, EntitiesEstimated: 21933027, BytesCompleted: 12421772610, BytesEstimated: 12421772610,
		StartTime: mustTime(t, "2026-11-24T04:10:12.118Z"), EndTime: mustTime(t, "2026-11-24T05:31:40.662Z"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseOperationJSON(import-successful.json) =\n%+v\nwant\n%+v", got, want)
	}
	if got := poller.Classify(got); got != poller.OutcomeSuccess {
		t.Errorf("Classify = %q; want success", got)
	}
}

// TestDrillFirestoreSamples parses the recorded creation and import
// operations as they are, through the adapter from the fake answering
// them as they are, and the fake's own answers for the same calls, which
// must parse alike (but for their times, which are the fake's clock) and
// hold the same fields.
func TestDrillFirestoreSamples(t *testing.T) {
	ctx := context.Background()
	start, end := mustTime(t, "2026-11-24T04:10:12.118Z"), mustTime(t, "2026-11-24T05:31:40.662Z")
	const importName = "projects/example-proj/databases/" + drillDB + "/operations/ASAyNjYxOTk5MTUJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
	req := poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput,
		Kinds: []string{"User", "Order"}, Namespaces: []string{""}, Trigger: poller.TriggerCron}
	tests := []struct {
		file    string
		create  bool
		steps   []firestorefake.Step
		want    poller.Operation
		outcome poller.Outcome
	}{
		{"create-database.json", true, nil,
			poller.Operation{Name: "projects/example-proj/databases/" + drillDB + "/operations/ASA4ZDNhMTIzYjQtNWM2ZC00ZTdmLThhOWItMGMxZDJlM2Y0YTViEgoSAHMQ",
				Project: "example-proj", Database: drillDB, Done: true},
			// A creation has no state: done without an error is what
			// tells it succeeded, not Classify.
			poller.OutcomeUnexpected},
		{"import-running.json", false,
			[]firestorefake.Step{firestorefake.Running("PROCESSING", 8512344, 21933027, 4811250312, 12421772610)},
			poller.Operation{Name: importName, Project: "example-proj", Database: drillDB, State: poller.StateProcessing,
				Kinds: []string{"User", "Order"}, Namespaces: []string{""},
				EntitiesCompleted: 8512344, EntitiesEstimated: 21933027, BytesCompleted: 4811250312, BytesEstimated: 12421772610,
				StartTime: start},
			poller.OutcomeNone},
		{"import-successful.json", false,
			[]firestorefake.Step{firestorefake.Successful(21933027, 12421772610)},
			poller.Operation{Name: importName, Project: "example-proj", Database: drillDB, Done: true, State: poller.StateSuccessful,
				Kinds: []string{"User", "Order"}, Namespaces: []string{""},
				EntitiesCompleted: 21933027, EntitiesEstimated: 21933027, BytesCompleted: 12421772610, BytesEstimated: 12421772610,
				StartTime: start, EndTime: end},
			poller.OutcomeSuccess},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sample := readSample(t, tt.file)
			got, err := admin.ParseFirestoreOperationJSON(sample)
			if err != nil {
				t.Fatalf("ParseFirestoreOperationJSON: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseFirestoreOperationJSON(%s) =\n%+v\nwant\n%+v", tt.file, got, tt.want)
			}
			if got, want := poller.Classify(got), tt.outcome; got != want {
				t.Errorf("Classify = %q; want %q", got, want)
			}

			fake := firestorefake.New(t)
			api := newFirestore(t, fake.URL())
			fake.Override(firestorefake.GetOperation, 1, firestorefake.Answer{Body: string(sample)})
			if got, err := api.Get(ctx, tt.want.Name); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Get of the sample = %+v, %v; want %+v", got, err, tt.want)
			}

			// The fake's own answer.
			var op poller.Operation
			if tt.create {
				op, err = api.CreateDatabase(ctx, "example-proj", drillDB, "nam5")
			} else {
				fake.AddDatabase("example-proj", drillDB)
				fake.ScriptImports(tt.steps...)
				op, err = api.Import(ctx, req)
			}
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			got, err = api.Get(ctx, op.Name)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if tt.want.EndTime.IsZero() != got.EndTime.IsZero() || tt.want.StartTime.IsZero() != got.StartTime.IsZero() {
				t.Errorf("fake's times %v to %v; want them where the sample has them", got.StartTime, got.EndTime)
			}
			want := tt.want
			want.Name, want.Trigger = op.Name, ""
			got.StartTime, got.EndTime, want.StartTime, want.EndTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get from the fake =\n%+v\nwant\n%+v", got, want)
			}
			sameKeys(t, tt.file, rawGet(t, fake.URL()+"v1/"+op.Name), sample)
		})
	}
}

// TestFirestoreDrillCalls creates a scratch database, imports into it and
// deletes it through the fake, checking what goes on the wire.
func TestFirestoreDrillCalls(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	api := newFirestore(t, fake.URL())

	op, err := api.CreateDatabase(ctx, "example-proj", drillDB, "eur3")
	if err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	if want := "projects/example-proj/databases/" + drillDB + "/operations/"; !strings.HasPrefix(op.Name, want) || !op.Done ||
		op.Project != "example-proj" || op.Database != drillDB || op.ErrorCode != 0 {
		t.Errorf("creation = %+v; want done, named %s…", op, want)
	}
	creates := fake.Creates()
	if len(creates) != 1 || creates[0].DatabaseID != drillDB || creates[0].Type != "DATASTORE_MODE" || creates[0].LocationID != "eur3" ||
		!reflect.DeepEqual(creates[0].Fields, []string{"locationId", "type"}) {
		t.Errorf("create calls = %+v", creates)
	}
	info, err := api.Database(ctx, "example-proj", drillDB)
	if err != nil || info.Type != "DATASTORE_MODE" || info.Location != "eur3" {
		t.Errorf("created database = %+v, %v", info, err)
	}

	imp, err := api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput,
		Kinds: []string{"User"}, Trigger: poller.TriggerManual})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !imp.Done || poller.Classify(imp) != poller.OutcomeSuccess || imp.Trigger != poller.TriggerManual || imp.Database != drillDB ||
		imp.EntitiesCompleted != 1000 || imp.EndTime.Before(imp.StartTime) {
		t.Errorf("import = %+v; want done and successful at once", imp)
	}
	imports := fake.Imports()
	if len(imports) != 1 || imports[0].InputURIPrefix != drillFolder || !reflect.DeepEqual(imports[0].CollectionIDs, []string{"User"}) ||
		!reflect.DeepEqual(imports[0].Fields, []string{"collectionIds", "inputUriPrefix"}) {
		t.Errorf("import calls = %+v; want one of %s", imports, drillFolder)
	}
	if got, err := api.Get(ctx, imp.Name); err != nil || !got.Done {
		t.Errorf("Get(import) = %+v, %v", got, err)
	}

	// A scripted import runs until its script ends.
	fake.ScriptImports(firestorefake.Running("PROCESSING", 1, 2, 3, 4), firestorefake.Failed(9, "The export is of another format."))
	imp, err = api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput, Trigger: poller.TriggerCron})
	if err != nil || imp.Done || imp.State != poller.StateProcessing {
		t.Fatalf("scripted Import = %+v, %v; want PROCESSING", imp, err)
	}
	for _, want := range []poller.Outcome{poller.OutcomeNone, poller.OutcomeFailure} {
		got, err := api.Get(ctx, imp.Name)
		if err != nil || poller.Classify(got) != want {
			t.Errorf("Get = %+v, %v; want outcome %q", got, err, want)
		}
	}

	for i := range 2 { // the second finds it gone: no error
		if err := api.DeleteDatabase(ctx, "example-proj", drillDB); err != nil {
			t.Errorf("DeleteDatabase #%d: %v", i+1, err)
		}
	}
	if _, err := api.Database(ctx, "example-proj", drillDB); !errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("Database after delete = %v; want gone", err)
	}
	var paths []string
	for _, r := range fake.Requests() {
		if r.Method == firestorefake.CreateDatabase || r.Method == firestorefake.DeleteDatabase {
			paths = append(paths, r.HTTPMethod+" "+r.Path+" "+r.Query.Get("databaseId"))
		}
	}
	want := []string{"POST /v1/projects/example-proj/databases " + drillDB,
		"DELETE /v1/projects/example-proj/databases/" + drillDB + " ", "DELETE /v1/projects/example-proj/databases/" + drillDB + " "}
	if !reflect.DeepEqual(paths, want) {
		t.Errorf("requests = %q; want %q", paths, want)
	}
	if fake.Calls(firestorefake.DeleteDatabase) != 2 || fake.Calls(firestorefake.ImportDocuments) != 2 || fake.Calls(firestorefake.CreateDatabase) != 1 {
		t.Errorf("calls: %d creations, %d imports, %d deletions", fake.Calls(firestorefake.CreateDatabase),
			fake.Calls(firestorefake.ImportDocuments), fake.Calls(firestorefake.DeleteDatabase))
	}
}

// TestDrillRefusals: the API's refusals map to RefusedErrors with their
// google.rpc codes, and what the adapters refuse themselves is never sent.
func TestDrillRefusals(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	api := newFirestore(t, fake.URL())
	code := func(err error) int {
		var re *poller.RefusedError
		if !errors.As(err, &re) {
			return -1
		}
		return re.Code
	}
	fake.AddDatabase("example-proj", drillDB)
	if _, err := api.CreateDatabase(ctx, "example-proj", drillDB, "nam5"); code(err) != 6 || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CreateDatabase of an existing database = %v; want a RefusedError ALREADY_EXISTS (6)", err)
	}
	forbidden := firestorefake.Answer{Status: http.StatusForbidden, Message: "Missing or insufficient permissions."}
	fake.Override(firestorefake.CreateDatabase, 1, forbidden)
	if _, err := api.CreateDatabase(ctx, "example-proj", "other-db", "nam5"); code(err) != 7 {
		t.Errorf("CreateDatabase refused = %v; want a RefusedError PERMISSION_DENIED (7)", err)
	}
	fake.Override(firestorefake.ImportDocuments, 1, forbidden)
	if _, err := api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput}); code(err) != 7 {
		t.Errorf("Import refused = %v; want a RefusedError PERMISSION_DENIED (7)", err)
	}
	if _, err := api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: "gone-db", InputURL: drillInput}); code(err) != 5 {
		t.Errorf("Import into a missing database = %v; want a RefusedError NOT_FOUND (5)", err)
	}
	fake.Override(firestorefake.DeleteDatabase, 1, forbidden)
	if err := api.DeleteDatabase(ctx, "example-proj", drillDB); err == nil || admin.StatusCode(err) != http.StatusForbidden || errors.Is(err, poller.ErrTransient) {
		t.Errorf("DeleteDatabase refused = %v; want the 403, not transient", err)
	}
	fake.Override(firestorefake.DeleteDatabase, 0, firestorefake.Answer{Status: http.StatusServiceUnavailable})
	fast, _ := fastFirestore(t, fake.URL())
	if err := fast.DeleteDatabase(ctx, "example-proj", drillDB); !errors.Is(err, poller.ErrTransient) {
		t.Errorf("DeleteDatabase unavailable = %v; want ErrTransient", err)
	}
	fake.Override(firestorefake.DeleteDatabase, 0, firestorefake.Answer{})
	sent := len(fake.Requests())

	// Refused without a call.
	ds := newAdmin(t, adminfake.New(t).URL())
	for name, err := range map[string]error{
		"delete (default)":          api.DeleteDatabase(ctx, "example-proj", "(default)"),
		"delete \"\"":               api.DeleteDatabase(ctx, "example-proj", ""),
		"create (default)":          second(api.CreateDatabase(ctx, "example-proj", "(default)", "nam5")),
		"create bad id":             second(api.CreateDatabase(ctx, "example-proj", "Bad_DB", "nam5")),
		"create bad project":        second(api.CreateDatabase(ctx, "example-proj/databases/x", "db-one", "nam5")),
		"create bad location":       second(api.CreateDatabase(ctx, "example-proj", "db-one", "nam5/../x")),
		"create no location":        second(api.CreateDatabase(ctx, "example-proj", "db-one", "")),
		"import local input":        second(api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: "/tmp/x/x.overall_export_metadata"})),
		"import no metadata":        second(api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillFolder})),
		"import bad database":       second(api.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: "x:y", InputURL: drillInput})),
		"datastore named database":  second(ds.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput})),
		"datastore bad project":     second(ds.Import(ctx, poller.ImportRequest{Project: "Example", InputURL: drillInput})),
		"datastore no gs:// (fake)": second(ds.Import(ctx, poller.ImportRequest{Project: "example-proj", InputURL: "http://x/x.overall_export_metadata"})),
	} {
		if code(err) != 3 {
			t.Errorf("%s = %v; want a RefusedError INVALID_ARGUMENT (3)", name, err)
		}
	}
	if got := len(fake.Requests()); got != sent {
		t.Errorf("%d refused calls were sent", got-sent)
	}
}

func second[T any](_ T, err error) error { return err }

// TestRouterDrill: databases are managed through Firestore, imports go
// where the database says (or the router's FirestoreDefault).
func TestRouterDrill(t *testing.T) {
	ctx := context.Background()
	r, ds, fs := routerRig(t)
	if _, err := r.CreateDatabase(ctx, "example-proj", drillDB, "nam5"); err != nil || fs.Calls(firestorefake.CreateDatabase) != 1 {
		t.Fatalf("CreateDatabase: %v (%d Firestore calls)", err, fs.Calls(firestorefake.CreateDatabase))
	}
	op, err := r.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput, Trigger: poller.TriggerCron})
	if err != nil || !poller.IsFirestoreName(op.Name) || fs.Calls(firestorefake.ImportDocuments) != 1 {
		t.Fatalf("Import into a named database = %+v, %v; want it through Firestore", op, err)
	}
	if _, err := r.Get(ctx, op.Name); err != nil {
		t.Errorf("Get(%s): %v", op.Name, err)
	}
	// (default) goes to Datastore (the fake serves no import: it answers
	// 404, which the Router passes on as the refusal it is).
	var re *poller.RefusedError
	if _, err := r.Import(ctx, poller.ImportRequest{Project: "example-proj", InputURL: drillInput}); !errors.As(err, &re) || re.Code != 5 ||
		fs.Calls(firestorefake.ImportDocuments) != 1 || len(ds.Exports()) != 0 {
		t.Errorf("Import into (default) = %v; want it sent to Datastore", err)
	}
	r.FirestoreDefault = true
	if op, err := r.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: "(default)", InputURL: drillInput}); err != nil ||
		op.Database != "(default)" || fs.Calls(firestorefake.ImportDocuments) != 2 {
		t.Errorf("Import into (default) with FirestoreDefault = %+v, %v; want it through Firestore", op, err)
	}
	if err := r.DeleteDatabase(ctx, "example-proj", drillDB); err != nil || fs.Calls(firestorefake.DeleteDatabase) != 1 {
		t.Errorf("DeleteDatabase: %v", err)
	}

	// A missing side, or one that cannot: FAILED_PRECONDITION, not sent.
	only := admin.Router{Datastore: r.Datastore}
	stub := admin.Router{Datastore: r.Datastore, Firestore: exportOnly{}}
	for name, err := range map[string]error{
		"create without Firestore": second(only.CreateDatabase(ctx, "example-proj", drillDB, "nam5")),
		"delete without Firestore": only.DeleteDatabase(ctx, "example-proj", drillDB),
		"import without Firestore": second(only.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput})),
		"import without Datastore": second(admin.Router{Firestore: r.Firestore}.Import(ctx, poller.ImportRequest{Project: "example-proj", InputURL: drillInput})),
		"create by an export-only": second(stub.CreateDatabase(ctx, "example-proj", drillDB, "nam5")),
		"import by an export-only": second(stub.Import(ctx, poller.ImportRequest{Project: "example-proj", Database: drillDB, InputURL: drillInput})),
	} {
		if !errors.As(err, &re) || re.Code != 9 {
			t.Errorf("%s = %v; want a RefusedError FAILED_PRECONDITION (9)", name, err)
		}
	}
}

// exportOnly is a poller.Admin that can do nothing of a drill.
type exportOnly struct{}

func (exportOnly) Export(context.Context, poller.ExportRequest) (poller.Operation, error) {
	return poller.Operation{}, errors.New("not here")
}
func (exportOnly) Get(context.Context, string) (poller.Operation, error) {
	return poller.Operation{}, errors.New("not here")
}

// TestEmulatorExportFile finds the export's folder by its time, and says
// why when it cannot.
func TestEmulatorExportFile(t *testing.T) {
	dir := t.TempDir()
	mk := func(folder string, file bool) string {
		t.Helper()
		p := filepath.Join(dir, folder)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(p, folder+".overall_export_metadata")
		if file {
			if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	want := mk("2026-12-02T09:52:13_345", true)
	mk("2026-12-02T09:52:20_101", false) // no metadata: not an export
	mk("2026-12-02T09:40:00_999", true)  // another export, long before
	mk("not-a-time_1", true)
	start, end := time.Date(2026, 12, 2, 9, 52, 13, 312e6, time.UTC), time.Date(2026, 12, 2, 9, 52, 13, 374e6, time.UTC)
	if got, err := admin.EmulatorExportFile(dir, start, end); err != nil || got != want {
		t.Errorf("EmulatorExportFile = %q, %v; want %q", got, err, want)
	}
	// The name's time is to the second: an export that began just after
	// the folder's second, or ended in the next, still finds it.
	if got, err := admin.EmulatorExportFile(dir, start.Add(900*time.Millisecond), end.Add(time.Second)); err != nil || got != want {
		t.Errorf("EmulatorExportFile a second later = %q, %v; want %q", got, err, want)
	}
	for name, tt := range map[string]struct {
		dir        string
		start, end time.Time
		why        string
	}{
		"none":     {dir, start.Add(time.Hour), end.Add(time.Hour), "no export folder"},
		"relative": {"gs:/bkt/x", start, end, "absolute local directory"},
		"gs://":    {"gs://bkt/x", start, end, "absolute local directory"},
		"no times": {dir, time.Time{}, time.Time{}, "no start and end"},
		"missing":  {filepath.Join(dir, "nope"), start, end, "no such file"},
	} {
		if got, err := admin.EmulatorExportFile(tt.dir, tt.start, tt.end); err == nil || !strings.Contains(err.Error(), tt.why) {
			t.Errorf("%s: EmulatorExportFile = %q, %v; want an error saying %q", name, got, err, tt.why)
		}
	}
	mk("2026-12-02T09:52:14_002", true)
	if got, err := admin.EmulatorExportFile(dir, start, end); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Errorf("two exports within the seconds: EmulatorExportFile = %q, %v; want ambiguous", got, err)
	}
}

// TestGetResolvesEmulatorOutput: Get of an operation the emulator's way
// (a local directory as outputUrl) answers its file; a gs:// outputUrl is
// left as it is.
func TestGetResolvesEmulatorOutput(t *testing.T) {
	dir := t.TempDir()
	folder := "2026-12-02T09:52:13_345"
	if err := os.MkdirAll(filepath.Join(dir, folder), 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, folder, folder+".overall_export_metadata")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	answer := func(out string) string {
		b, _ := json.Marshal(map[string]any{
			"name": "projects/example-proj/operations/ASAx", "done": true,
			"metadata": map[string]any{"@type": "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesMetadata",
				"common": map[string]any{"startTime": "2026-12-02T09:52:13.312Z", "endTime": "2026-12-02T09:52:13.374Z",
					"operationType": "EXPORT_ENTITIES", "state": "SUCCESSFUL"}, "outputUrlPrefix": "gs://bkt/x"},
			"response": map[string]any{"@type": "type.googleapis.com/google.datastore.admin.v1.ExportEntitiesResponse", "outputUrl": out},
		})
		return string(b)
	}
	srv := newRecorded(t)
	api := newAdmin(t, srv.url)
	for _, tt := range []struct{ out, want string }{
		{dir, file},
		{filepath.Join(dir, "other"), filepath.Join(dir, "other")},
		{"gs://bkt/x", "gs://bkt/x"},
	} {
		srv.body = answer(tt.out)
		op, err := api.Get(context.Background(), "projects/example-proj/operations/ASAx")
		if err != nil || op.OutputURL != tt.want {
			t.Errorf("Get with outputUrl %q = %q, %v; want %q", tt.out, op.OutputURL, err, tt.want)
		}
	}
}

// recorded answers every request with body, as the emulator answers.
type recorded struct {
	url  string
	body string
}

func newRecorded(t *testing.T) *recorded {
	r := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, r.body)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// TestDrillAgainstEmulator exports a few entities from the Datastore
// emulator, finds the export's file, imports it into a scratch project
// through the Router and counts the entities there.
func TestDrillAgainstEmulator(t *testing.T) {
	host := emulatortest.Host(t)
	ctx := context.Background()
	project, scratch := emulatortest.Project(t), emulatortest.Project(t)
	emu := func(path string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		resp, err := http.Post("http://"+host+"/v1/projects/"+path, "application/json", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s = %d %.500s", path, resp.StatusCode, data)
		}
		var out map[string]any
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("POST %s: %v", path, err)
		}
		return out
	}
	var muts []any
	for i := range 3 {
		muts = append(muts, map[string]any{"insert": map[string]any{"key": map[string]any{"path": []any{map[string]any{"kind": "User", "name": fmt.Sprint("u", i)}}}}})
	}
	muts = append(muts, map[string]any{"insert": map[string]any{"key": map[string]any{"path": []any{map[string]any{"kind": "Order", "name": "o1"}}}}})
	emu(project+":commit", map[string]any{"mode": "NON_TRANSACTIONAL", "mutations": muts})

	api := newAdmin(t, "http://"+host)
	op, err := api.Export(ctx, poller.ExportRequest{Project: project, OutputURLPrefix: "gs://emulated-bucket/" + project, Trigger: poller.TriggerCron})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if !strings.HasSuffix(op.OutputURL, ".overall_export_metadata") {
		t.Fatalf("export's OutputURL = %q; want its .overall_export_metadata", op.OutputURL)
	}
	if fi, err := os.Stat(op.OutputURL); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("export's file %s: %v", op.OutputURL, err)
	}

	fs := firestorefake.New(t)
	r := admin.Router{Datastore: api, Firestore: newFirestore(t, fs.URL())}
	imp, err := r.Import(ctx, poller.ImportRequest{Project: scratch, InputURL: op.OutputURL, Trigger: poller.TriggerManual})
	if err != nil {
		t.Fatalf("Import: %v", err)
	}
	if !imp.Done || poller.Classify(imp) != poller.OutcomeSuccess || imp.Project != scratch || imp.StartTime.IsZero() ||
		!strings.HasPrefix(imp.Name, "projects/"+scratch+"/operations/") || len(fs.Requests()) != 0 {
		t.Errorf("import = %+v (%d Firestore requests); want done, successful, named in %s, through Datastore", imp, len(fs.Requests()), scratch)
	}
	for kind, want := range map[string]int{"User": 3, "Order": 1} {
		res := emu(scratch+":runQuery", map[string]any{"query": map[string]any{"kind": []any{map[string]any{"name": kind}}}})
		batch, _ := res["batch"].(map[string]any)
		got, _ := batch["entityResults"].([]any)
		if len(got) != want {
			t.Errorf("%s entities in %s after the import = %d; want %d", kind, scratch, len(got), want)
		}
	}
}

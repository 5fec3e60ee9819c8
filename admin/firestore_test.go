package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/admin/firestorefake"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

const (
	sampleUID   = "5f1c2b1e-8a5d-4c7e-9b2f-3d6a7e8f9a01"
	sampleStart = "2026-11-23T03:00:04.837Z"
)

func readSample(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "firestore", file))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func newFirestore(t *testing.T, endpoint string, opts ...admin.Option) *admin.Firestore {
	t.Helper()
	a, err := admin.NewFirestore(context.Background(), endpoint, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v.UTC()
}

// keyPaths are the object keys of a JSON document, as paths
// ("metadata.progressBytes.completedWork", "backups[].stats.sizeBytes").
func keyPaths(t *testing.T, data []byte) map[string]bool {
	t.Helper()
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %.200s: %v", data, err)
	}
	out := map[string]bool{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, c := range v {
				p := strings.TrimPrefix(prefix+"."+k, ".")
				out[p] = true
				walk(p, c)
			}
		case []any:
			for _, c := range v {
				walk(prefix+"[]", c)
			}
		}
	}
	walk("", v)
	return out
}

// sameKeys fails t unless the fake's answer has the keys of the sample,
// but for sampleOnly: the fake says nothing the documentation does not.
func sameKeys(t *testing.T, what string, fake, sample []byte, sampleOnly ...string) {
	t.Helper()
	f, s := keyPaths(t, fake), keyPaths(t, sample)
	for k := range f {
		if !s[k] {
			t.Errorf("%s: the fake answers %q, which the sample does not have", what, k)
		}
	}
	for k := range s {
		if !f[k] && !slices.Contains(sampleOnly, k) {
			t.Errorf("%s: the sample has %q, which the fake does not answer", what, k)
		}
	}
}

// rawGet is the body of GET url.
func rawGet(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d %s", url, resp.StatusCode, body)
	}
	return body
}

// TestFirestoreOperationSamples parses each recorded export operation
// three ways: as it is, read through the adapter from the fake answering
// it as it is, and the fake's own answer for the same export, which must
// parse to the same snapshot and hold the same fields.
func TestFirestoreOperationSamples(t *testing.T) {
	start := mustTime(t, sampleStart)
	end := start.Add(53 * time.Minute)
	snap := mustTime(t, "2026-11-23T03:00:00Z")
	const (
		okName     = "projects/example-proj/databases/analytics/operations/ASA3NDEwOTg1NzcJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
		failedName = "projects/example-proj/databases/analytics/operations/ASAyMDcxNzIzNTMJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ"
		folder     = "gs://example-backups/2026-11-23T03:00:04_43519"
	)
	consistent := poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://example-backups",
		Kinds: []string{"User", "Order"}, Namespaces: []string{""}, SnapshotTime: snap, Trigger: poller.TriggerCron}
	tests := []struct {
		file    string
		req     poller.ExportRequest
		step    firestorefake.Step
		want    poller.Operation
		outcome poller.Outcome
	}{
		{"export-running.json", consistent,
			firestorefake.Running("PROCESSING", 8512344, 21898182, 4811250312, 12395423718),
			poller.Operation{Name: okName, Project: "example-proj", Database: "analytics", State: poller.StateProcessing,
				Kinds: []string{"User", "Order"}, Namespaces: []string{""}, OutputURLPrefix: folder,
				EntitiesCompleted: 8512344, EntitiesEstimated: 21898182, BytesCompleted: 4811250312, BytesEstimated: 12395423718,
				StartTime: start, SnapshotTime: snap},
			poller.OutcomeNone},
		{"export-successful.json", consistent,
			firestorefake.Progress(firestorefake.Successful(0, 0), 21933027, 21898182, 12421772610, 12395423718),
			poller.Operation{Name: okName, Project: "example-proj", Database: "analytics", Done: true, State: poller.StateSuccessful,
				Kinds: []string{"User", "Order"}, Namespaces: []string{""}, OutputURLPrefix: folder, OutputURL: folder,
				EntitiesCompleted: 21933027, EntitiesEstimated: 21898182, BytesCompleted: 12421772610, BytesEstimated: 12395423718,
				StartTime: start, EndTime: end, SnapshotTime: snap},
			poller.OutcomeSuccess},
		{"export-failed.json",
			poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://example-backups", Trigger: poller.TriggerCron},
			firestorefake.Progress(firestorefake.Failed(7, "Service account service-123456789@gcp-sa-firestore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."), 0, 21898182, 0, 12395423718),
			poller.Operation{Name: failedName, Project: "example-proj", Database: "analytics", Done: true, State: poller.StateFailed,
				OutputURLPrefix: folder, EntitiesEstimated: 21898182, BytesEstimated: 12395423718, StartTime: start, EndTime: end,
				ErrorCode: 7, ErrorMessage: "Service account service-123456789@gcp-sa-firestore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object."},
			poller.OutcomeFailure},
	}
	ctx := context.Background()
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

			// The sample as the API's answer, through the adapter.
			fake := firestorefake.New(t)
			api := newFirestore(t, fake.URL())
			fake.Override(firestorefake.GetOperation, 1, firestorefake.Answer{Body: string(sample)})
			if got, err := api.Get(ctx, tt.want.Name); err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Get of the sample = %+v, %v; want %+v", got, err, tt.want)
			}

			// The fake's own answer for the same export.
			fake.AddDatabase("example-proj", "analytics")
			fake.Script(tt.step)
			op, err := api.Export(ctx, tt.req)
			if err != nil {
				t.Fatalf("Export: %v", err)
			}
			got, err = api.Get(ctx, op.Name)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			want := tt.want
			want.Name = op.Name
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Get from the fake =\n%+v\nwant\n%+v", got, want)
			}
			sameKeys(t, tt.file, rawGet(t, fake.URL()+"v1/"+op.Name), sample)
		})
	}
}

func TestFirestoreExportRequest(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	fake.AddDatabase("example-proj", "analytics")
	fake.AddDatabase("example-proj", "(default)")
	api := newFirestore(t, fake.URL())
	snap := time.Date(2026, 11, 23, 3, 0, 0, 0, time.FixedZone("CET", 3600))

	op, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://b/daily",
		Kinds: []string{"User", "Order"}, Namespaces: []string{"", "tenant"}, SnapshotTime: snap, Trigger: poller.TriggerManual})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if !poller.IsFirestoreName(op.Name) || op.Project != "example-proj" || op.Database != "analytics" ||
		op.Trigger != poller.TriggerManual || !op.SnapshotTime.Equal(snap) || op.State != poller.StateProcessing || op.Done {
		t.Errorf("started operation = %+v", op)
	}
	// Without a snapshot time, the field is not sent; nil lists neither.
	if _, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron}); err != nil {
		t.Fatalf("Export of (default): %v", err)
	}

	calls := fake.Exports()
	if len(calls) != 2 {
		t.Fatalf("fake got %d exports; want 2", len(calls))
	}
	c := calls[0]
	if c.Project != "example-proj" || c.Database != "analytics" || !exportFolderRE.MatchString(c.OutputURIPrefix) ||
		!reflect.DeepEqual(c.CollectionIDs, []string{"User", "Order"}) || !reflect.DeepEqual(c.NamespaceIDs, []string{"", "tenant"}) ||
		c.SnapshotTime != "2026-11-23T02:00:00Z" {
		t.Errorf("export request = %+v", c)
	}
	if got, want := c.Fields, []string{"collectionIds", "namespaceIds", "outputUriPrefix", "snapshotTime"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fields sent = %v; want %v", got, want)
	}
	c = calls[1]
	if got, want := c.Fields, []string{"outputUriPrefix"}; !reflect.DeepEqual(got, want) || c.Database != "(default)" {
		t.Errorf("export of (default) without filter sent %v to database %q; want %v to (default)", got, c.Database, want)
	}
	var paths []string
	for _, r := range fake.Requests() {
		paths = append(paths, r.HTTPMethod+" "+r.Path)
	}
	if want := []string{"POST /v1/projects/example-proj/databases/analytics:exportDocuments", "POST /v1/projects/example-proj/databases/(default):exportDocuments"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("requests = %q; want %q", paths, want)
	}
	if got := fake.Calls(firestorefake.ExportDocuments); got != 2 {
		t.Errorf("exportDocuments calls = %d; want 2", got)
	}
}

func TestFirestoreOperationStates(t *testing.T) {
	for _, tt := range []struct {
		state   string
		done    bool
		want    poller.State
		outcome poller.Outcome
	}{
		{"INITIALIZING", false, poller.StateInitializing, poller.OutcomeNone},
		{"PROCESSING", false, poller.StateProcessing, poller.OutcomeNone},
		{"CANCELLING", false, poller.StateCancelling, poller.OutcomeNone},
		{"FINALIZING", false, poller.StateFinalizing, poller.OutcomeNone},
		{"SUCCESSFUL", true, poller.StateSuccessful, poller.OutcomeSuccess},
		{"FAILED", true, poller.StateFailed, poller.OutcomeFailure},
		{"CANCELLED", true, poller.StateCancelled, poller.OutcomeFailure},
		{"OPERATION_STATE_UNSPECIFIED", true, poller.StateUnspecified, poller.OutcomeUnexpected},
	} {
		body := fmt.Sprintf(`{"name": "projects/p-1/databases/db-one/operations/x1", "done": %v, "metadata": {"operationState": %q}}`, tt.done, tt.state)
		op, err := admin.ParseFirestoreOperationJSON([]byte(body))
		if err != nil {
			t.Fatalf("ParseFirestoreOperationJSON(%s): %v", body, err)
		}
		if op.State != tt.want || op.Done != tt.done || poller.Classify(op) != tt.outcome {
			t.Errorf("%s: state %q done %v outcome %q; want %q %v %q", tt.state, op.State, op.Done, poller.Classify(op), tt.want, tt.done, tt.outcome)
		}
		// Progress is absent until known.
		if op.EntitiesCompleted != 0 || op.EntitiesEstimated != 0 || op.BytesCompleted != 0 || op.BytesEstimated != 0 {
			t.Errorf("%s: progress without progressDocuments = %+v", tt.state, op)
		}
	}

	for _, tt := range []struct{ body, why string }{
		{`{`, "malformed"},
		{`{"name": "projects/p-1/operations/x"}`, "a Datastore Admin API name"},
		{`{"name": "projects/p-1/databases/db-one/operations/../x"}`, "a traversing name"},
		{`{"metadata": {"progressDocuments": {"completedWork": 12}}}`, "an int64 not as a string"},
		{`{"metadata": {"progressBytes": {"estimatedWork": "many"}}}`, "an int64 not a number"},
		{`{"metadata": {"progressBytes": {"estimatedWork": "9223372036854775808"}}}`, "an int64 overflowing"},
		{`{"metadata": {"startTime": "yesterday"}}`, "a bad time"},
		{`{"metadata": {"snapshotTime": 5}}`, "a time of the wrong type"},
		{`{"metadata": {"collectionIds": "User"}}`, "a list of the wrong type"},
		{`{"metadata": "x"}`, "metadata of the wrong type"},
		{`{"response": {"outputUriPrefix": ["gs://b"]}}`, "a response of the wrong type"},
		{`{"done": "yes"}`, "done of the wrong type"},
		{`{"error": {"code": "seven"}}`, "an error code of the wrong type"},
	} {
		if op, err := admin.ParseFirestoreOperationJSON([]byte(tt.body)); err == nil {
			t.Errorf("ParseFirestoreOperationJSON(%s) (%s) = %+v, nil; want an error", tt.body, tt.why, op)
		}
	}

	// A hostile answer is bounded.
	huge := fmt.Sprintf(`{"done": true, "error": {"code": 13, "message": %q}, "metadata": {"collectionIds": [%s]}}`,
		strings.Repeat("x", 1<<20), strings.TrimSuffix(strings.Repeat(`"K",`, 5000), ","))
	op, err := admin.ParseFirestoreOperationJSON([]byte(huge))
	if err != nil {
		t.Fatal(err)
	}
	if len(op.ErrorMessage) > poller.MaxErrorText || len(op.Kinds) > poller.MaxListItems || poller.Classify(op) != poller.OutcomeFailure {
		t.Errorf("a huge answer gave a message of %d bytes, %d kinds, outcome %q", len(op.ErrorMessage), len(op.Kinds), poller.Classify(op))
	}
}

func fastFirestore(t *testing.T, url string) (*admin.Firestore, *testrig.Sleeps) {
	var s testrig.Sleeps
	p := admin.DefaultRetry()
	p.Sleep = s.Sleep
	return newFirestore(t, url, admin.WithRetry(p)), &s
}

func TestFirestoreErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		status    int
		gets      int
		transient bool
		gone      bool
	}{
		{http.StatusTooManyRequests, 3, true, false},
		{http.StatusServiceUnavailable, 3, true, false},
		{http.StatusForbidden, 1, false, false},
		{http.StatusNotFound, 1, false, true},
	} {
		t.Run(fmt.Sprint("get ", tt.status), func(t *testing.T) {
			fake := firestorefake.New(t)
			api, _ := fastFirestore(t, fake.URL())
			name := fake.AddOperation("example-proj", "analytics", firestorefake.HTTPError(tt.status, "1"))
			_, err := api.Get(ctx, name)
			if got := admin.StatusCode(err); got != tt.status {
				t.Fatalf("Get status = %d (%v); want %d", got, err, tt.status)
			}
			if got := errors.Is(err, poller.ErrTransient); got != tt.transient {
				t.Errorf("errors.Is(%v, ErrTransient) = %v; want %v", err, got, tt.transient)
			}
			if got := errors.Is(err, poller.ErrOperationGone); got != tt.gone {
				t.Errorf("errors.Is(%v, ErrOperationGone) = %v; want %v", err, got, tt.gone)
			}
			if got := fake.Gets(name); got != tt.gets {
				t.Errorf("reads = %d; want %d", got, tt.gets)
			}
		})
	}
	t.Run("unknown operation", func(t *testing.T) {
		fake := firestorefake.New(t)
		api, _ := fastFirestore(t, fake.URL())
		if _, err := api.Get(ctx, "projects/example-proj/databases/analytics/operations/gone"); !errors.Is(err, poller.ErrOperationGone) {
			t.Errorf("Get(unknown) = %v; want ErrOperationGone", err)
		}
	})
	t.Run("error text bounded", func(t *testing.T) {
		fake := firestorefake.New(t)
		api, _ := fastFirestore(t, fake.URL())
		name := fake.AddOperation("example-proj", "analytics", firestorefake.HTTPBody(http.StatusForbidden, strings.Repeat("denied ", 100000)))
		_, err := api.Get(ctx, name)
		if err == nil || len(err.Error()) > poller.MaxErrorText+len("get "+name+": ") {
			t.Errorf("Get of a 700 KB error page: error of %d bytes; want at most about %d", len(fmt.Sprint(err)), poller.MaxErrorText)
		}
	})

	for _, tt := range []struct {
		status, calls, code int
	}{
		{http.StatusForbidden, 1, 7},
		{http.StatusTooManyRequests, 3, 8},
		{http.StatusServiceUnavailable, 1, 14}, // may have started an export
		{http.StatusInternalServerError, 1, 13},
	} {
		t.Run(fmt.Sprint("export ", tt.status), func(t *testing.T) {
			fake := firestorefake.New(t)
			fake.AddDatabase("example-proj", "analytics")
			api, _ := fastFirestore(t, fake.URL())
			fake.Override(firestorefake.ExportDocuments, 0, firestorefake.Answer{Status: tt.status, Message: "refused"})
			_, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://b"})
			var re *poller.RefusedError
			if !errors.As(err, &re) || re.Code != tt.code || !strings.Contains(err.Error(), "refused") {
				t.Errorf("Export = %v; want a *RefusedError with code %d and the API's message", err, tt.code)
			}
			if got := fake.Calls(firestorefake.ExportDocuments); got != tt.calls {
				t.Errorf("exportDocuments calls = %d; want %d", got, tt.calls)
			}
			if got := len(fake.Exports()); got != tt.calls {
				t.Errorf("exports recorded = %d; want %d", got, tt.calls)
			}
		})
	}
	t.Run("export of an unknown database", func(t *testing.T) {
		fake := firestorefake.New(t)
		api, _ := fastFirestore(t, fake.URL())
		_, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "nowhere", OutputURLPrefix: "gs://b"})
		var re *poller.RefusedError
		if !errors.As(err, &re) || re.Code != 5 {
			t.Errorf("Export to an unknown database = %v; want a *RefusedError NOT_FOUND (5)", err)
		}
	})
	t.Run("network", func(t *testing.T) {
		api, s := fastFirestore(t, "http://127.0.0.1:1/")
		if _, err := api.Get(ctx, "projects/p-1/databases/db-one/operations/x"); !errors.Is(err, poller.ErrTransient) {
			t.Errorf("Get from a closed port = %v; want ErrTransient", err)
		}
		if got := len(s.Waits()); got != 2 {
			t.Errorf("waits = %d; want 2 (three tries)", got)
		}
	})
}

// TestFirestoreNeverSendsBadInput checks that what fails validation never
// becomes a request.
func TestFirestoreNeverSendsBadInput(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	fake.AddDatabase("example-proj", "analytics")
	api := newFirestore(t, fake.URL())
	names := append(slices.Clone(trickyNames),
		"projects/example-proj/operations/x", // the Datastore Admin API's
		"projects/example-proj/databases/Analytics/operations/x",
		"projects/example-proj/databases/analytics/operations/x/../../../backups",
		"projects/example-proj/databases/(default)x/operations/x",
		"projects/example-proj/databases//operations/x",
	)
	for _, name := range names {
		if _, err := api.Get(ctx, name); err == nil {
			t.Errorf("Get(%q) accepted it", name)
		}
	}
	if _, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "Bad_DB", OutputURLPrefix: "gs://b"}); err == nil {
		t.Error("Export accepted database Bad_DB")
	} else if re := (*poller.RefusedError)(nil); !errors.As(err, &re) || re.Code != 3 {
		t.Errorf("Export of database Bad_DB = %v; want a *RefusedError INVALID_ARGUMENT (3)", err)
	}
	if _, err := api.Export(ctx, poller.ExportRequest{Project: "x/../y", OutputURLPrefix: "gs://b"}); err == nil {
		t.Error("Export accepted project x/../y")
	}
	if _, err := api.Database(ctx, "example-proj", "../other"); err == nil {
		t.Error("Database accepted ../other")
	}
	if _, err := api.BackupSchedules(ctx, "Example", "analytics"); err == nil {
		t.Error("BackupSchedules accepted project Example")
	}
	for _, uid := range []string{"", `x" OR database_uid="y`, "a b", "x&filter=", strings.Repeat("a", 65)} {
		if _, _, err := api.Backups(ctx, "example-proj", uid); err == nil {
			t.Errorf("Backups accepted uid %q", uid)
		}
	}
	if got := fake.Requests(); len(got) != 0 {
		t.Errorf("bad input reached the API: %+v", got)
	}
}

// sampleBackups are the values the backup samples hold.
func sampleBackups(t *testing.T) (poller.DatabaseInfo, []poller.BackupSchedule, []poller.Backup) {
	db := poller.DatabaseInfo{Name: "projects/example-proj/databases/analytics", UID: sampleUID, Location: "nam5", Type: "DATASTORE_MODE",
		VersionRetention: time.Hour, EarliestVersion: mustTime(t, "2026-11-23T02:14:00.123456Z")}
	schedules := []poller.BackupSchedule{
		{Name: "projects/example-proj/databases/analytics/backupSchedules/2b8e4f6a-0c1d-4e2f-8a3b-5c6d7e8f9a0b",
			Recurrence: poller.Daily, Retention: 14 * 24 * time.Hour,
			CreateTime: mustTime(t, "2026-06-01T09:30:00.123456Z"), UpdateTime: mustTime(t, "2026-06-01T09:30:00.123456Z")},
		{Name: "projects/example-proj/databases/analytics/backupSchedules/7c9d1e2f-3a4b-4c5d-9e6f-0a1b2c3d4e5f",
			Recurrence: poller.Weekly, Weekday: "SUNDAY", Retention: 14 * 7 * 24 * time.Hour,
			CreateTime: mustTime(t, "2026-06-01T09:31:10.5Z"), UpdateTime: mustTime(t, "2026-07-14T16:02:45.250Z")},
	}
	backup := func(id, snapshot, expire string, state poller.BackupState, docs, bytes int64) poller.Backup {
		return poller.Backup{Name: "projects/example-proj/locations/nam5/backups/" + id, Database: db.Name, DatabaseUID: sampleUID,
			State: state, SnapshotTime: mustTime(t, snapshot), ExpireTime: mustTime(t, expire), Documents: docs, Bytes: bytes}
	}
	// Newest first, as Backups returns them.
	backups := []poller.Backup{
		backup("e1f3b5d7-9a2c-4e6f-8b0d-1c3e5f7a9b2d", "2026-11-23T05:02:10.117402Z", "2026-12-07T05:02:10.117402Z", poller.BackupCreating, 0, 0),
		backup("c0d6a8e2-5b1f-4a3c-9d7e-2f4a6b8c0d1e", "2026-11-22T04:17:33.904113Z", "2026-12-06T04:17:33.904113Z", poller.BackupReady, 21898182, 12395423718),
		backup("a9b7c5d3-1e2f-4a6b-8c0d-3e5f7a9b1c2d", "2026-11-21T03:48:51.660020Z", "2026-12-05T03:48:51.660020Z", poller.BackupReady, 21790413, 12301117322),
	}
	return db, schedules, backups
}

// TestFirestoreBackupSamples reads the database, schedule and backup
// samples through the adapter, and the fake's answers for the same
// values, which must parse alike and hold the same fields.
func TestFirestoreBackupSamples(t *testing.T) {
	ctx := context.Background()
	db, schedules, backups := sampleBackups(t)
	unreachable := []string{"europe-west3"}

	check := func(t *testing.T, api *admin.Firestore) {
		t.Helper()
		if got, err := api.Database(ctx, "example-proj", "analytics"); err != nil || !reflect.DeepEqual(got, db) {
			t.Errorf("Database = %+v, %v; want %+v", got, err, db)
		}
		if got, err := api.BackupSchedules(ctx, "example-proj", "analytics"); err != nil || !reflect.DeepEqual(got, schedules) {
			t.Errorf("BackupSchedules = %+v, %v; want %+v", got, err, schedules)
		}
		got, gotUnreachable, err := api.Backups(ctx, "example-proj", sampleUID)
		if err != nil || !reflect.DeepEqual(got, backups) || !reflect.DeepEqual(gotUnreachable, unreachable) {
			t.Errorf("Backups = %+v, %q, %v; want %+v, %q", got, gotUnreachable, err, backups, unreachable)
		}
	}

	t.Run("samples", func(t *testing.T) {
		fake := firestorefake.New(t)
		for m, file := range map[firestorefake.Method]string{
			firestorefake.GetDatabase: "database.json", firestorefake.ListBackupSchedules: "backupSchedules.json", firestorefake.ListBackups: "backups.json",
		} {
			fake.Override(m, 0, firestorefake.Answer{Body: string(readSample(t, file))})
		}
		check(t, newFirestore(t, fake.URL()))
	})

	t.Run("fake", func(t *testing.T) {
		fake := firestorefake.New(t)
		fake.SetDatabase(db)
		fake.SetSchedules("example-proj", "analytics", schedules...)
		// Another database's backup, which the filter leaves out.
		other := poller.Backup{Name: "projects/example-proj/locations/nam5/backups/other", Database: "projects/example-proj/databases/(default)",
			DatabaseUID: "0b0b0b0b-0000-4000-8000-000000000000", State: poller.BackupReady, SnapshotTime: time.Now()}
		fake.SetBackups("example-proj", append([]poller.Backup{other}, backups...)...)
		fake.SetUnreachable("example-proj", unreachable...)
		check(t, newFirestore(t, fake.URL()))

		base := fake.URL() + "v1/projects/example-proj/"
		sameKeys(t, "database.json", rawGet(t, base+"databases/analytics"), readSample(t, "database.json"))
		sameKeys(t, "backupSchedules.json", rawGet(t, base+"databases/analytics/backupSchedules"), readSample(t, "backupSchedules.json"))
		sameKeys(t, "backups.json", rawGet(t, base+"locations/-/backups?filter=database_uid%3D%22"+sampleUID+"%22"), readSample(t, "backups.json"),
			"backups[].stats.indexCount")

		var sent []string
		for _, r := range fake.Requests() {
			if r.Method == firestorefake.ListBackups {
				sent = append(sent, r.Path+"?filter="+r.Query.Get("filter"))
			}
		}
		if want := `/v1/projects/example-proj/locations/-/backups?filter=database_uid="` + sampleUID + `"`; len(sent) == 0 || sent[0] != want {
			t.Errorf("backups.list requests = %q; want first %q", sent, want)
		}
		for m, want := range map[firestorefake.Method]int{firestorefake.GetDatabase: 2, firestorefake.ListBackupSchedules: 2, firestorefake.ListBackups: 2} {
			if got := fake.Calls(m); got != want {
				t.Errorf("calls of %s = %d; want %d", m, got, want)
			}
		}
	})
}

func TestFirestoreBackupsAdminChanges(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	api, _ := fastFirestore(t, fake.URL())

	if _, err := api.Database(ctx, "example-proj", "analytics"); !errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("Database of an unknown database = %v; want ErrOperationGone", err)
	}
	if _, err := api.BackupSchedules(ctx, "example-proj", "analytics"); !errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("BackupSchedules of an unknown database = %v; want ErrOperationGone", err)
	}
	db := fake.AddDatabase("example-proj", "analytics")
	info, err := api.Database(ctx, "example-proj", "") // (default) is not analytics
	if !errors.Is(err, poller.ErrOperationGone) {
		t.Errorf("Database((default)) = %+v, %v; want ErrOperationGone", info, err)
	}
	info, err = api.Database(ctx, "example-proj", "analytics")
	if err != nil || info.UID != db.UID || info.VersionRetention != time.Hour || time.Since(info.EarliestVersion) < 59*time.Minute {
		t.Errorf("Database = %+v, %v; want uid %s, an hour of retention, the earliest version an hour ago", info, err, db.UID)
	}

	fake.SetSchedules("example-proj", "analytics", poller.BackupSchedule{Recurrence: poller.Daily, Retention: 7 * 24 * time.Hour})
	got, err := api.BackupSchedules(ctx, "example-proj", "analytics")
	if err != nil || len(got) != 1 || got[0].Recurrence != poller.Daily || got[0].Retention != 7*24*time.Hour ||
		!strings.HasPrefix(got[0].Name, db.Name+"/backupSchedules/") {
		t.Errorf("BackupSchedules = %+v, %v; want one daily schedule of a week", got, err)
	}
	fake.DeleteSchedules("example-proj", "analytics")
	if got, err := api.BackupSchedules(ctx, "example-proj", "analytics"); err != nil || len(got) != 0 {
		t.Errorf("BackupSchedules after DeleteSchedules = %+v, %v; want none", got, err)
	}

	name := "projects/example-proj/locations/nam5/backups/b1"
	fake.AddBackup(poller.Backup{Name: name, Database: db.Name, DatabaseUID: db.UID, State: poller.BackupCreating, SnapshotTime: time.Now()})
	fake.AddBackup(poller.Backup{Name: name, Database: db.Name, DatabaseUID: db.UID, State: poller.BackupReady, SnapshotTime: time.Now(), Documents: 5, Bytes: 50})
	backups, unreachable, err := api.Backups(ctx, "example-proj", db.UID)
	if err != nil || len(backups) != 1 || backups[0].State != poller.BackupReady || backups[0].Documents != 5 || backups[0].Bytes != 50 || unreachable != nil {
		t.Errorf("Backups = %+v, %q, %v; want the one backup READY with 5 documents and 50 bytes", backups, unreachable, err)
	}
	fake.SetUnreachable("example-proj", "nam5")
	backups, unreachable, err = api.Backups(ctx, "example-proj", db.UID)
	if err != nil || len(backups) != 0 || !reflect.DeepEqual(unreachable, []string{"nam5"}) {
		t.Errorf("Backups with nam5 unreachable = %+v, %q, %v; want none and nam5 unreachable", backups, unreachable, err)
	}

	fake.Override(firestorefake.ListBackups, 2, firestorefake.Answer{Status: http.StatusServiceUnavailable})
	if _, _, err := api.Backups(ctx, "example-proj", db.UID); err != nil {
		t.Errorf("Backups after two 503s = %v; want the retry to succeed", err)
	}
	fake.Override(firestorefake.GetDatabase, 0, firestorefake.Answer{Status: http.StatusTooManyRequests})
	if _, err := api.Database(ctx, "example-proj", "analytics"); !errors.Is(err, poller.ErrTransient) {
		t.Errorf("Database answered 429 = %v; want ErrTransient", err)
	}
}

// TestFirestoreHostileLists checks the bounds of what the backup calls
// keep, and that answers of the wrong shape are errors.
func TestFirestoreHostileLists(t *testing.T) {
	ctx := context.Background()
	fake := firestorefake.New(t)
	api := newFirestore(t, fake.URL(), admin.WithRetry(admin.DefaultRetry()))
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

	const n = 5000
	var b strings.Builder
	b.WriteString(`{"backups": [`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		// Not in time order, so that keeping the newest takes a sort.
		k := (i * 7919) % n
		fmt.Fprintf(&b, `{"name": "projects/example-proj/locations/nam5/backups/b%d", "databaseUid": %q, "state": "READY", "snapshotTime": %q, "stats": {"documentCount": "%d"}}`,
			k, sampleUID, base.Add(time.Duration(k)*time.Hour).Format(time.RFC3339), k)
	}
	b.WriteString(`], "unreachable": [`)
	for i := range 500 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"loc-%d-%s"`, i, strings.Repeat("x", 5000))
	}
	b.WriteString(`]}`)
	fake.Override(firestorefake.ListBackups, 1, firestorefake.Answer{Body: b.String()})
	backups, unreachable, err := api.Backups(ctx, "example-proj", sampleUID)
	if err != nil {
		t.Fatal(err)
	}
	if len(backups) != admin.MaxBackups {
		t.Fatalf("Backups kept %d of %d; want %d", len(backups), n, admin.MaxBackups)
	}
	for i, bk := range backups {
		if want := int64(n - 1 - i); bk.Documents != want {
			t.Fatalf("backups[%d] holds %d documents; want %d, the newest kept, newest first", i, bk.Documents, want)
		}
	}
	if len(unreachable) != admin.MaxUnreachable || !strings.Contains(unreachable[len(unreachable)-1], "500 locations") {
		t.Errorf("unreachable: %d kept, last %.80q; want %d, the last saying how many there were", len(unreachable), unreachable[len(unreachable)-1], admin.MaxUnreachable)
	}
	for _, u := range unreachable {
		if len(u) > poller.MaxName {
			t.Errorf("an unreachable location of %d bytes kept", len(u))
		}
	}

	var s strings.Builder
	s.WriteString(`{"backupSchedules": [`)
	for i := range 300 {
		if i > 0 {
			s.WriteString(",")
		}
		fmt.Fprintf(&s, `{"name": "projects/example-proj/databases/analytics/backupSchedules/s%d", "dailyRecurrence": {}}`, i)
	}
	s.WriteString(`]}`)
	fake.Override(firestorefake.ListBackupSchedules, 1, firestorefake.Answer{Body: s.String()})
	if got, err := api.BackupSchedules(ctx, "example-proj", "analytics"); err != nil || len(got) != admin.MaxSchedules {
		t.Errorf("BackupSchedules of 300 = %d, %v; want %d", len(got), err, admin.MaxSchedules)
	}

	for _, tt := range []struct {
		m    firestorefake.Method
		body string
		want error // nil: any error
	}{
		{firestorefake.ListBackups, `{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"sizeBytes": 12}}]}`, nil},
		{firestorefake.ListBackups, `{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"sizeBytes": "-1"}}]}`, nil},
		{firestorefake.ListBackups, `{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"documentCount": "-5", "sizeBytes": "10"}}]}`, nil},
		{firestorefake.ListBackups, `{"backups": [{"name": "projects/p/locations/nam5/backups/x", "snapshotTime": "today"}]}`, nil},
		{firestorefake.ListBackups, `{"backups": [{"name": "../../x"}]}`, nil},
		{firestorefake.ListBackups, `{"backups": [null]}`, nil},
		{firestorefake.ListBackups, `{"backups": {}}`, nil},
		{firestorefake.ListBackups, `{"unreachable": "nam5"}`, nil},
		{firestorefake.ListBackups, `<html>`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"retention": "two weeks"}]}`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"retention": "-5s"}]}`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"retention": "99999999999999999999s"}]}`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"retention": "1.0000000001s"}]}`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"dailyRecurrence": {}, "weeklyRecurrence": {"day": "MONDAY"}}]}`, nil},
		{firestorefake.ListBackupSchedules, `{"backupSchedules": [{"name": "projects/example-proj/databases/other/backupSchedules/x"}]}`, poller.ErrForeignAnswer},
		{firestorefake.GetDatabase, `{"name": "projects/example-proj/databases/other", "uid": "u"}`, poller.ErrForeignAnswer},
		{firestorefake.GetDatabase, `{"uid": "x\" OR 1"}`, nil},
		{firestorefake.GetDatabase, `{"uid": "` + strings.Repeat("a", poller.MaxDatabaseUID+1) + `"}`, nil},
		{firestorefake.GetDatabase, `{"versionRetentionPeriod": "1h"}`, nil},
		{firestorefake.GetDatabase, `{"versionRetentionPeriod": 3600}`, nil},
		{firestorefake.GetDatabase, `{"earliestVersionTime": "2026-13-01T00:00:00Z"}`, nil},
	} {
		fake.Override(tt.m, 1, firestorefake.Answer{Body: tt.body})
		var err error
		switch tt.m {
		case firestorefake.ListBackups:
			_, _, err = api.Backups(ctx, "example-proj", sampleUID)
		case firestorefake.ListBackupSchedules:
			_, err = api.BackupSchedules(ctx, "example-proj", "analytics")
		case firestorefake.GetDatabase:
			_, err = api.Database(ctx, "example-proj", "analytics")
		}
		if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s answering %s: err = %v; want an error (%v)", tt.m, tt.body, err, tt.want)
		}
	}

	// Negative stats name their field; a uid of MaxDatabaseUID bytes is one.
	for field, body := range map[string]string{
		"backups[0] stats.sizeBytes":     `{"backups": [{"name": "projects/p/locations/nam5/backups/x", "stats": {"sizeBytes": "-1"}}]}`,
		"backups[1] stats.documentCount": `{"backups": [{"name": "projects/p/locations/nam5/backups/x"}, {"name": "projects/p/locations/nam5/backups/y", "stats": {"documentCount": "-5"}}]}`,
	} {
		fake.Override(firestorefake.ListBackups, 1, firestorefake.Answer{Body: body})
		if _, _, err := api.Backups(ctx, "example-proj", sampleUID); err == nil || !strings.Contains(err.Error(), field+": -") || !strings.Contains(err.Error(), "negative") {
			t.Errorf("Backups answering %s: err = %v; want %s said to be negative", body, err, field)
		}
	}
	uid := strings.Repeat("a", poller.MaxDatabaseUID)
	fake.Override(firestorefake.GetDatabase, 1, firestorefake.Answer{Body: `{"uid": "` + uid + `"}`})
	if info, err := api.Database(ctx, "example-proj", "analytics"); err != nil || info.UID != uid {
		t.Errorf("Database with a uid of %d bytes = %+v, %v; want it whole", len(uid), info, err)
	}

	// A body over MaxAnswer is not parsed.
	huge := `{"backups": [], "unreachable": ["` + strings.Repeat("x", admin.MaxAnswer) + `"]}`
	fake.Override(firestorefake.ListBackups, 1, firestorefake.Answer{Body: huge})
	if _, _, err := api.Backups(ctx, "example-proj", sampleUID); err == nil || !strings.Contains(err.Error(), "cut") {
		t.Errorf("Backups of a body over MaxAnswer = %v; want an error saying it was cut", err)
	}
}

func TestDatastoreRefusesNamedDatabase(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL())
	_, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron})
	var re *poller.RefusedError
	if !errors.As(err, &re) || re.Code != 3 || !strings.Contains(err.Error(), "Firestore Admin API") {
		t.Errorf("Datastore.Export of a named database = %v; want a *RefusedError INVALID_ARGUMENT (3) pointing to the Firestore Admin API", err)
	}
	if got := len(fake.Exports()); got != 0 {
		t.Errorf("the refused export reached the API (%d calls)", got)
	}
	if _, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "(default)", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron}); err != nil {
		t.Errorf("Datastore.Export of (default): %v", err)
	}
	if got := len(fake.Exports()); got != 1 {
		t.Errorf("export calls = %d; want 1", got)
	}
}

// exportFolderRE is a folder ExportFolder names under gs://b/daily.
var exportFolderRE = regexp.MustCompile(`^gs://b/daily/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d_\d{5}$`)

// TestExportFolder: under a prefix with a path, where the Firestore Admin
// API would write every export into the same place, each export has a
// folder of its own; under a bare bucket the API names it.
func TestExportFolder(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	if got := admin.ExportFolder("gs://b", at); got != "gs://b" {
		t.Errorf("ExportFolder(gs://b) = %q; want the bare bucket as it is", got)
	}
	for _, p := range []string{"gs://b/daily", "gs://b/daily/"} {
		if got := admin.ExportFolder(p, at); !strings.HasPrefix(got, "gs://b/daily/2026-12-02T03:00:00_") || !exportFolderRE.MatchString(got) {
			t.Errorf("ExportFolder(%s) = %q; want a folder of its own under gs://b/daily", p, got)
		}
	}
	ctx := context.Background()
	fake := firestorefake.New(t)
	fake.AddDatabase("example-proj", "analytics")
	api := newFirestore(t, fake.URL())
	for range 2 {
		if _, err := api.Export(ctx, poller.ExportRequest{Project: "example-proj", Database: "analytics", OutputURLPrefix: "gs://b/daily"}); err != nil {
			t.Fatal(err)
		}
	}
	calls := fake.Exports()
	if len(calls) != 2 || calls[0].OutputURIPrefix == calls[1].OutputURIPrefix {
		t.Errorf("two exports to gs://b/daily were sent %+v; want two folders", calls)
	}
}

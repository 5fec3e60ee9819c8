package admin_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/admin/adminfake"
	"github.com/dsexport/dsexport/internal/emulatortest"
	"github.com/dsexport/dsexport/internal/testrig"
	"github.com/dsexport/dsexport/poller"
)

func TestMain(m *testing.M) { os.Exit(emulatortest.Main(m)) }

func readWire(t *testing.T, file string) poller.Operation {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "wire", file))
	if err != nil {
		t.Fatal(err)
	}
	op, err := admin.ParseOperationJSON(data)
	if err != nil {
		t.Fatalf("ParseOperationJSON(%s): %v", file, err)
	}
	return op
}

func TestParseWireSamples(t *testing.T) {
	start := time.Date(2026, 11, 23, 3, 0, 4, 837e6, time.UTC)
	tests := []struct {
		file    string
		want    poller.Operation
		outcome poller.Outcome
	}{
		{"running.json", poller.Operation{
			Name:    "projects/example-proj/operations/ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
			Project: "example-proj", State: poller.StateProcessing, Trigger: poller.TriggerCron,
			Kinds: []string{"User", "Order"}, Namespaces: []string{""}, OutputURLPrefix: "gs://example-backups/daily",
			EntitiesCompleted: 8512344, EntitiesEstimated: 21898182, BytesCompleted: 4811250312, BytesEstimated: 12395423718,
			StartTime: start,
		}, poller.OutcomeNone},
		{"successful.json", poller.Operation{
			Name:    "projects/example-proj/operations/ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
			Project: "example-proj", Done: true, State: poller.StateSuccessful, Trigger: poller.TriggerCron,
			Kinds: []string{"User", "Order"}, Namespaces: []string{""}, OutputURLPrefix: "gs://example-backups/daily",
			OutputURL:         "gs://example-backups/daily/2026-11-23T03:00:04_43519/2026-11-23T03:00:04_43519.overall_export_metadata",
			EntitiesCompleted: 21933027, EntitiesEstimated: 21898182, BytesCompleted: 12421772610, BytesEstimated: 12395423718,
			StartTime: start, EndTime: time.Date(2026, 11, 23, 3, 53, 11, 204e6, time.UTC),
		}, poller.OutcomeSuccess},
		{"failed.json", poller.Operation{
			Name:    "projects/example-proj/operations/ASAyMDcxNzIzNTMJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
			Project: "example-proj", Done: true, State: poller.StateFailed, OutputURLPrefix: "gs://example-backups/daily",
			EntitiesEstimated: 21898182, BytesEstimated: 12395423718,
			StartTime: start, EndTime: time.Date(2026, 11, 23, 3, 2, 40, 17e6, time.UTC),
			ErrorCode: 7, ErrorMessage: "Service account service-123456789@gcp-sa-datastore.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object.",
		}, poller.OutcomeFailure},
		{"cancelled.json", poller.Operation{
			Name:    "projects/example-proj/operations/ASAzNTE4OTI0MTgJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ",
			Project: "example-proj", Done: true, State: poller.StateCancelled, OutputURLPrefix: "gs://example-backups/daily",
			EntitiesCompleted: 1203344, BytesCompleted: 611250312,
			StartTime: start, EndTime: time.Date(2026, 11, 23, 3, 11, 52, 550e6, time.UTC),
			ErrorCode: 1, ErrorMessage: "The operation was cancelled.",
		}, poller.OutcomeFailure},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := readWire(t, tt.file)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseOperationJSON(%s) =\n%+v\nwant\n%+v", tt.file, got, tt.want)
			}
			if got, want := poller.Classify(got), tt.outcome; got != want {
				t.Fatalf("Classify(%s) = %q; want %q", tt.file, got, want)
			}
		})
	}
}

func TestParseOperationRejects(t *testing.T) {
	for _, body := range []string{
		`{`,
		`{"name": "projects/p/operations/../../v1/x"}`,
		`{"name": "x", "done": true}`,
		`{"metadata": {"common": {"startTime": "yesterday"}}}`,
		`{"metadata": {"progressEntities": {"workCompleted": "many"}}}`,
		`{"done": "yes"}`,
	} {
		if op, err := admin.ParseOperationJSON([]byte(body)); err == nil {
			t.Errorf("ParseOperationJSON(%s) = %+v, nil; want an error", body, op)
		}
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		op   poller.Operation
		want poller.Outcome
	}{
		{"running", poller.Operation{State: poller.StateProcessing}, poller.OutcomeNone},
		{"successful state without done waits", poller.Operation{State: poller.StateSuccessful}, poller.OutcomeNone},
		{"successful", poller.Operation{Done: true, State: poller.StateSuccessful}, poller.OutcomeSuccess},
		{"failed", poller.Operation{Done: true, State: poller.StateFailed}, poller.OutcomeFailure},
		{"cancelled", poller.Operation{Done: true, State: poller.StateCancelled, ErrorCode: 1}, poller.OutcomeFailure},
		{"successful state with error", poller.Operation{Done: true, State: poller.StateSuccessful, ErrorCode: 13}, poller.OutcomeFailure},
		{"done while processing", poller.Operation{Done: true, State: poller.StateProcessing}, poller.OutcomeUnexpected},
		{"done without state", poller.Operation{Done: true}, poller.OutcomeUnexpected},
	}
	for _, tt := range tests {
		if got := poller.Classify(tt.op); got != tt.want {
			t.Errorf("Classify(%s) = %q; want %q", tt.name, got, tt.want)
		}
	}
}

func TestParseName(t *testing.T) {
	good := map[string]string{
		"projects/example-proj/operations/ASA1MTAwNDQxNjAJGnRsdWFmZWQHEmxhcnRuZWNzdS1zYm9qLW5pbWRhEgoSAHMQ": "example-proj",
		"projects/example.com:proj/operations/abc_-1":                                                       "example.com:proj",
	}
	for name, want := range good {
		if got, err := poller.ParseName(name); err != nil || got != want {
			t.Errorf("ParseName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{
		"", "ASA1MTAw", "projects/p/operations/", "projects//operations/x",
		"projects/example-proj/operations/x/../../../v1/projects/other:export",
		"projects/example-proj/operations/x?alt=media", "projects/example-proj/operations/x#y",
		"https://evil.example/projects/p/operations/x", "//evil.example/projects/p/operations/x",
		"projects/Example/operations/x", "projects/p/operations/x%2F..", "projects/p/databases/x",
		"projects/example-proj/operations/x\n",
	} {
		if _, err := poller.ParseName(name); err == nil {
			t.Errorf("ParseName(%q) accepted it; want an error", name)
		}
	}
	if got, err := poller.QualifyName("example-proj", "ASA1MTAw"); err != nil || got != "projects/example-proj/operations/ASA1MTAw" {
		t.Errorf("QualifyName(example-proj, ASA1MTAw) = %q, %v", got, err)
	}
}

func newAdmin(t *testing.T, endpoint string, opts ...admin.Option) *admin.Datastore {
	t.Helper()
	a, err := admin.NewDatastore(context.Background(), endpoint, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAdminAgainstFake(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL())
	fake.Script(adminfake.Running("PROCESSING", 10, 20, 100, 200), adminfake.Successful(21, 210))

	op, err := api.Export(ctx, poller.ExportRequest{
		Project: "example-proj", OutputURLPrefix: "gs://example-backups/daily",
		Kinds: []string{"User"}, Namespaces: []string{"", "tenant"}, Trigger: poller.TriggerManual,
	})
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	if got, want := op.State, poller.StateInitializing; got != want {
		t.Errorf("started state = %q; want %q", got, want)
	}
	if got, want := op.Trigger, poller.TriggerManual; got != want {
		t.Errorf("started trigger = %q; want %q", got, want)
	}
	calls := fake.Exports()
	if len(calls) != 1 {
		t.Fatalf("fake got %d export calls; want 1", len(calls))
	}
	c := calls[0]
	if c.Project != "example-proj" || c.OutputURLPrefix != "gs://example-backups/daily" || c.Labels["trigger"] != "manual" ||
		!reflect.DeepEqual(c.EntityFilter.Kinds, []string{"User"}) || !reflect.DeepEqual(c.EntityFilter.NamespaceIds, []string{"", "tenant"}) {
		t.Errorf("export request = %+v", c)
	}

	running, err := api.Get(ctx, op.Name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if running.Done || running.State != poller.StateProcessing || running.EntitiesCompleted != 10 || running.BytesEstimated != 200 {
		t.Errorf("first Get = %+v; want PROCESSING 10/20 entities, 200 bytes estimated", running)
	}
	done, err := api.Get(ctx, op.Name)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !done.Done || poller.Classify(done) != poller.OutcomeSuccess || !strings.HasSuffix(done.OutputURL, ".overall_export_metadata") {
		t.Errorf("second Get = %+v; want a successful export with its output URL", done)
	}
}

// fastRetry is the default policy with the waits recorded in s, not slept.
func fastRetry(s *testrig.Sleeps) admin.Option {
	p := admin.DefaultRetry()
	p.Sleep = s.Sleep
	return admin.WithRetry(p)
}

func TestAdminErrors(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	// Errors keep their status and transience through the retries.
	api := newAdmin(t, fake.URL(), fastRetry(&testrig.Sleeps{}))
	tests := []struct {
		status    int
		transient bool
	}{
		{http.StatusTooManyRequests, true},
		{http.StatusServiceUnavailable, true},
		{http.StatusInternalServerError, true},
		{http.StatusForbidden, false},
	}
	for _, tt := range tests {
		name := fake.AddOperation("example-proj", adminfake.HTTPError(tt.status, "1"))
		_, err := api.Get(ctx, name)
		if err == nil {
			t.Fatalf("Get answered %d: no error", tt.status)
		}
		if got := admin.IsTransient(err); got != tt.transient {
			t.Errorf("IsTransient(%d) = %v; want %v (err %v)", tt.status, got, tt.transient, err)
		}
		if got := admin.StatusCode(err); got != tt.status {
			t.Errorf("StatusCode = %d; want %d", got, tt.status)
		}
	}

	_, err := api.Get(ctx, "projects/example-proj/operations/unknown")
	if got, want := admin.StatusCode(err), http.StatusNotFound; got != want {
		t.Errorf("Get(unknown) status = %d (%v); want %d", got, err, want)
	}
	if admin.IsTransient(err) {
		t.Errorf("IsTransient(404) = true; want false")
	}

	// A name that is not projects/{project}/operations/{id} never leaves the process.
	before := len(fake.Names())
	if _, err := api.Get(ctx, "projects/example-proj/operations/x/../../../v1/projects/p:export"); err == nil {
		t.Errorf("Get accepted a path-traversing name")
	}
	if got := len(fake.Exports()); got != 0 || len(fake.Names()) != before {
		t.Errorf("a bad name reached the API")
	}

	// Network failures are transient.
	dead := newAdmin(t, "http://127.0.0.1:1/", fastRetry(&testrig.Sleeps{}))
	if _, err := dead.Get(ctx, "projects/example-proj/operations/x"); !admin.IsTransient(err) {
		t.Errorf("IsTransient(connection refused) = false; err %v", err)
	}
	if admin.IsTransient(context.Canceled) || admin.IsTransient(errors.New("other")) {
		t.Errorf("IsTransient of a cancelled context or a plain error = true")
	}

	fake.RefuseExports(http.StatusForbidden, "The caller does not have permission")
	_, err = api.Export(ctx, poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron})
	if err == nil || !strings.Contains(err.Error(), "The caller does not have permission") {
		t.Errorf("refused Export err = %v; want the API's message", err)
	}
}

func TestAdminExportAgainstEmulator(t *testing.T) {
	host := emulatortest.Host(t)
	api := newAdmin(t, "http://"+host)
	project := emulatortest.Project(t)
	op, err := api.Export(context.Background(), poller.ExportRequest{
		// The emulator writes straight to the prefix and refuses one that exists.
		Project: project, OutputURLPrefix: "gs://emulated-bucket/" + project, Trigger: poller.TriggerCron,
	})
	if err != nil {
		t.Fatalf("Export to the emulator: %v", err)
	}
	// The emulator answers synchronously: done, no name.
	if op.Name != "" || !op.Done || poller.Classify(op) != poller.OutcomeSuccess {
		t.Fatalf("emulator export = %+v; want done and successful without a name", op)
	}
	if got, want := op.Project, project; got != want {
		t.Errorf("project = %q; want %q", got, want)
	}
	if op.OutputURL == "" || op.StartTime.IsZero() || op.EndTime.IsZero() {
		t.Errorf("emulator export lacks output URL or times: %+v", op)
	}
}

func TestAdminGetRetries(t *testing.T) {
	ctx := context.Background()
	fake := adminfake.New(t)
	running := adminfake.Running("PROCESSING", 10, 20, 100, 200)
	tests := []struct {
		name   string
		steps  []adminfake.Step
		gets   int
		status int // 0: success
		// minWait is the least the last wait may be (a Retry-After).
		minWait time.Duration
	}{
		{"success after two transient failures", []adminfake.Step{
			adminfake.HTTPError(http.StatusServiceUnavailable, ""), adminfake.HTTPError(http.StatusTooManyRequests, "2"), running,
		}, 3, 0, 2 * time.Second},
		{"gives up after the attempts", []adminfake.Step{adminfake.HTTPError(http.StatusInternalServerError, "")}, 3, http.StatusInternalServerError, 0},
		{"403 is final", []adminfake.Step{adminfake.HTTPError(http.StatusForbidden, ""), running}, 1, http.StatusForbidden, 0},
		{"404 is final", []adminfake.Step{adminfake.HTTPError(http.StatusNotFound, ""), running}, 1, http.StatusNotFound, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s testrig.Sleeps
			api := newAdmin(t, fake.URL(), fastRetry(&s))
			name := fake.AddOperation("example-proj", tt.steps...)
			op, err := api.Get(ctx, name)
			if got, want := fake.Gets(name), tt.gets; got != want {
				t.Errorf("GETs = %d; want %d", got, want)
			}
			if got, want := len(s.Waits()), tt.gets-1; got != want {
				t.Errorf("waits = %v; want %d of them", s.Waits(), want)
			}
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				if op.State != poller.StateProcessing {
					t.Errorf("Get = %+v; want the running operation", op)
				}
			} else if got, want := admin.StatusCode(err), tt.status; got != want {
				t.Errorf("Get status = %d (%v); want %d", got, err, want)
			}
			if w := s.Waits(); len(w) > 0 && w[len(w)-1] < tt.minWait {
				t.Errorf("last wait = %v; want at least the Retry-After %v", w[len(w)-1], tt.minWait)
			}
		})
	}
}

// TestAdminGetWithinDeadline checks that a Retry-After longer than the
// caller's deadline ends the call at once with the last error.
func TestAdminGetWithinDeadline(t *testing.T) {
	fake := adminfake.New(t)
	api := newAdmin(t, fake.URL()) // the real policy: a real wait if any
	name := fake.AddOperation("example-proj", adminfake.HTTPError(http.StatusTooManyRequests, "30"), adminfake.Successful(1, 1))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err := api.Get(ctx, name)
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Get took %v; want it to give up at once", elapsed)
	}
	if got, want := admin.StatusCode(err), http.StatusTooManyRequests; got != want {
		t.Errorf("Get status = %d (%v); want %d", got, err, want)
	}
	if got, want := fake.Gets(name), 1; got != want {
		t.Errorf("GETs = %d; want %d", got, want)
	}
}

func TestAdminExportRetries(t *testing.T) {
	ctx := context.Background()
	req := poller.ExportRequest{Project: "example-proj", OutputURLPrefix: "gs://b", Trigger: poller.TriggerCron}
	tests := []struct {
		status int
		calls  int
	}{
		// A 5xx may have started the export: a retry could start a second.
		{http.StatusServiceUnavailable, 1},
		{http.StatusInternalServerError, 1},
		{http.StatusForbidden, 1},
		// A 429 started nothing.
		{http.StatusTooManyRequests, 3},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			fake := adminfake.New(t)
			api := newAdmin(t, fake.URL(), fastRetry(&testrig.Sleeps{}))
			fake.RefuseExports(tt.status, "refused")
			_, err := api.Export(ctx, req)
			if got, want := admin.StatusCode(err), tt.status; got != want {
				t.Errorf("Export status = %d (%v); want %d", got, err, want)
			}
			if got, want := len(fake.Exports()), tt.calls; got != want {
				t.Errorf("export calls = %d; want %d", got, want)
			}
		})
	}

	// A refused connection sent nothing, so it is tried again.
	var s testrig.Sleeps
	dead := newAdmin(t, "http://127.0.0.1:1/", fastRetry(&s))
	if _, err := dead.Export(ctx, req); err == nil || !admin.IsTransient(err) {
		t.Errorf("Export to a closed port = %v; want a transient error", err)
	}
	if got, want := len(s.Waits()), 2; got != want {
		t.Errorf("waits = %v; want %d (three tries)", s.Waits(), want)
	}
}

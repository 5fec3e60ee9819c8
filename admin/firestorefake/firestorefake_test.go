package firestorefake

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/poller"
)

// call makes one request of s and returns the status and the decoded body.
func call(t *testing.T, s *Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+strings.TrimPrefix(path, "/"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s %s answered %d %.200q, not JSON: %v", method, path, resp.StatusCode, data, err)
	}
	return resp.StatusCode, v
}

// errorStatus is the status name of Google's error body, or "".
func errorStatus(v map[string]any) string {
	e, _ := v["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

func TestUnknownCallsAnswerGoogleErrors(t *testing.T) {
	s := New(t)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/v1/projects/p/databases/db-one/documents"},
		{"POST", "/v1/projects/p/databases/db-one"},
		{"GET", "/v1/projects/p/databases/db-one:exportDocuments"},
		{"GET", "/v1/projects/p/operations/x"},
	} {
		status, body := call(t, s, tt.method, tt.path, "")
		if status != http.StatusNotFound || errorStatus(body) != "NOT_FOUND" {
			t.Errorf("%s %s = %d %v; want 404 NOT_FOUND", tt.method, tt.path, status, body)
		}
	}
	for _, m := range []Method{ExportDocuments, GetOperation, GetDatabase, ListBackupSchedules, ListBackups} {
		if got := s.Calls(m); got != 0 {
			t.Errorf("Calls(%s) = %d after unsupported calls; want 0", m, got)
		}
	}
	if got := len(s.Requests()); got != 4 {
		t.Errorf("requests recorded = %d; want 4", got)
	}
	// Unknown databases and operations are 404, counted.
	for _, path := range []string{
		"/v1/projects/p/databases/db-one", "/v1/projects/p/databases/db-one/backupSchedules", "/v1/projects/p/databases/db-one/operations/x",
	} {
		if status, body := call(t, s, "GET", path, ""); status != http.StatusNotFound || errorStatus(body) != "NOT_FOUND" {
			t.Errorf("GET %s = %d %v; want 404 NOT_FOUND", path, status, body)
		}
	}
	if status, body := call(t, s, "POST", "/v1/projects/p/databases/db-one:exportDocuments", `{"outputUriPrefix": "gs://b"}`); status != http.StatusNotFound {
		t.Errorf("export of an unknown database = %d %v; want 404", status, body)
	}
	for m, want := range map[Method]int{ExportDocuments: 1, GetOperation: 1, GetDatabase: 1, ListBackupSchedules: 1, ListBackups: 0} {
		if got := s.Calls(m); got != want {
			t.Errorf("Calls(%s) = %d; want %d", m, got, want)
		}
	}
}

func TestExportValidatesAsTheAPI(t *testing.T) {
	s := New(t)
	s.AddDatabase("p", "db-one")
	const path = "/v1/projects/p/databases/db-one:exportDocuments"
	past := time.Now().Add(-time.Hour).Truncate(time.Minute).UTC()
	for _, tt := range []struct {
		body   string
		status int
	}{
		{`{"outputUriPrefix": "gs://b", "kinds": ["K"]}`, 400},
		{`{"outputUriPrefix": "/tmp/x"}`, 400},
		{`{"outputUriPrefix": "gs://b", "snapshotTime": "` + past.Add(30*time.Second).Format(time.RFC3339) + `"}`, 400},
		{`{"outputUriPrefix": "gs://b", "snapshotTime": "` + time.Now().Add(time.Hour).Truncate(time.Minute).Format(time.RFC3339) + `"}`, 400},
		{`{"outputUriPrefix": "gs://b", "snapshotTime": "yesterday"}`, 400},
		{`{`, 400},
		{`{"outputUriPrefix": "gs://b", "snapshotTime": "` + past.Format(time.RFC3339) + `"}`, 200},
	} {
		if status, body := call(t, s, "POST", path, tt.body); status != tt.status {
			t.Errorf("export %s = %d %v; want %d", tt.body, status, body, tt.status)
		}
	}
	if got := len(s.Exports()); got != 5 {
		t.Errorf("exports recorded = %d; want 5 (the two bodies it could not decode are not)", got)
	}
}

func TestExportOutputFolder(t *testing.T) {
	s := New(t)
	s.AddDatabase("p", "db-one")
	s.Script(Successful(3, 30))
	for _, tt := range []struct{ prefix, folder string }{
		{"gs://b", "gs://b/2026-11-23T03:00:04_43519"},
		{"gs://b/", "gs://b/2026-11-23T03:00:04_43519"},
		{"gs://b/daily/run-1", "gs://b/daily/run-1"},
	} {
		_, started := call(t, s, "POST", "/v1/projects/p/databases/db-one:exportDocuments", `{"outputUriPrefix": "`+tt.prefix+`", "collectionIds": ["K"]}`)
		md := started["metadata"].(map[string]any)
		if md["operationState"] != "PROCESSING" || md["progressDocuments"] != nil || started["done"] != nil {
			t.Errorf("start answer = %v; want PROCESSING, no progress, done absent", started)
		}
		name := started["name"].(string)
		if !strings.HasPrefix(name, "projects/p/databases/db-one/operations/") {
			t.Errorf("operation name %q", name)
		}
		_, done := call(t, s, "GET", "/v1/"+name, "")
		resp, _ := done["response"].(map[string]any)
		if done["done"] != true || resp["outputUriPrefix"] != tt.folder {
			t.Errorf("prefix %s: done answer %v; want done with the folder %s", tt.prefix, done, tt.folder)
		}
		progress := done["metadata"].(map[string]any)["progressDocuments"]
		if !reflect.DeepEqual(progress, map[string]any{"completedWork": "3", "estimatedWork": "3"}) {
			t.Errorf("progressDocuments = %v; want int64s as strings", progress)
		}
	}
}

func TestScriptsAndOverrides(t *testing.T) {
	s := New(t)
	name := s.AddOperation("p", "db-one", HTTPError(503, "7"), Until(150*time.Millisecond, Running("PROCESSING", 1, 2, 0, 0), Cancelled()))
	get := func() (int, map[string]any) { return call(t, s, "GET", "/v1/"+name, "") }

	if status, body := get(); status != 503 || errorStatus(body) != "UNAVAILABLE" {
		t.Errorf("first read = %d %v; want 503 UNAVAILABLE", status, body)
	}
	s.Override(GetOperation, 2, Answer{Status: 429})
	for range 2 {
		if status, _ := get(); status != 429 {
			t.Errorf("overridden read = %d; want 429", status)
		}
	}
	_, body := get()
	md := body["metadata"].(map[string]any)
	if body["done"] != nil || md["operationState"] != "PROCESSING" || md["progressBytes"] != nil {
		t.Errorf("read after the overrides = %v; want the script's running step (the overrides did not move it), no progressBytes", body)
	}
	time.Sleep(200 * time.Millisecond)
	_, body = get()
	if body["done"] != true || body["error"].(map[string]any)["code"] != float64(1) {
		t.Errorf("read after its time = %v; want cancelled", body)
	}
	if got, want := s.Gets(name), 5; got != want {
		t.Errorf("Gets = %d; want %d", got, want)
	}
	if got, want := s.Calls(GetOperation), 5; got != want {
		t.Errorf("Calls = %d; want %d", got, want)
	}

	s.Override(GetOperation, 0, Answer{Status: 200, Body: `{"name": "x"}`})
	for range 3 {
		if _, body := get(); body["name"] != "x" {
			t.Errorf("raw answer = %v", body)
		}
	}
	s.Override(GetOperation, 0, Answer{})
	if _, body := get(); body["name"] != name {
		t.Errorf("after clearing the override: %v", body)
	}
}

func TestBackupsList(t *testing.T) {
	s := New(t)
	db := s.AddDatabase("p", "db-one")
	mk := func(loc, id, uid string, state poller.BackupState) poller.Backup {
		return poller.Backup{Name: "projects/p/locations/" + loc + "/backups/" + id, Database: db.Name, DatabaseUID: uid, State: state,
			SnapshotTime: time.Date(2026, 11, 22, 4, 0, 0, 0, time.UTC), Documents: 10, Bytes: 100}
	}
	s.SetBackups("p", mk("nam5", "a", db.UID, poller.BackupReady), mk("eur3", "b", db.UID, poller.BackupReady), mk("nam5", "c", "other-uid", poller.BackupReady))
	s.AddBackup(mk("nam5", "a", db.UID, poller.BackupNotAvailable)) // replaces a

	names := func(path string) []string {
		t.Helper()
		status, body := call(t, s, "GET", path, "")
		if status != 200 {
			t.Fatalf("GET %s = %d %v", path, status, body)
		}
		var out []string
		list, _ := body["backups"].([]any)
		for _, b := range list {
			b := b.(map[string]any)
			out = append(out, b["name"].(string)[len("projects/p/locations/"):]+" "+b["state"].(string))
			if stats := b["stats"].(map[string]any); stats["documentCount"] != "10" || stats["sizeBytes"] != "100" {
				t.Errorf("stats = %v; want int64s as strings", stats)
			}
		}
		return out
	}
	filter := "?filter=" + url.QueryEscape(`database_uid="`+db.UID+`"`)
	if got, want := names("/v1/projects/p/locations/-/backups"+filter), []string{"nam5/backups/a NOT_AVAILABLE", "eur3/backups/b READY"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backups of the uid everywhere = %q; want %q", got, want)
	}
	if got, want := names("/v1/projects/p/locations/nam5/backups"), []string{"nam5/backups/a NOT_AVAILABLE", "nam5/backups/c READY"}; !reflect.DeepEqual(got, want) {
		t.Errorf("backups in nam5 = %q; want %q", got, want)
	}
	if got := names("/v1/projects/q/locations/-/backups"); got != nil {
		t.Errorf("backups of another project = %q; want none", got)
	}
	s.SetUnreachable("p", "eur3")
	status, body := call(t, s, "GET", "/v1/projects/p/locations/-/backups"+filter, "")
	if list := body["backups"].([]any); status != 200 || len(list) != 1 || !reflect.DeepEqual(body["unreachable"], []any{"eur3"}) {
		t.Errorf("with eur3 unreachable: %d %v; want nam5's backup and eur3 unreachable", status, body)
	}
	if status, body := call(t, s, "GET", "/v1/projects/p/locations/-/backups?filter="+url.QueryEscape(`state="READY"`), ""); status != 400 || errorStatus(body) != "INVALID_ARGUMENT" {
		t.Errorf("an unsupported filter = %d %v; want 400 INVALID_ARGUMENT", status, body)
	}
}

func TestDatabaseAndSchedules(t *testing.T) {
	s := New(t)
	s.SetDatabase(poller.DatabaseInfo{Name: "projects/p/databases/db-one", UID: "u-1", Location: "eur3", Type: "DATASTORE_MODE",
		VersionRetention: 7 * 24 * time.Hour, EarliestVersion: time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC)})
	s.SetSchedules("p", "db-one",
		poller.BackupSchedule{Recurrence: poller.Daily, Retention: 1500 * time.Millisecond},
		poller.BackupSchedule{Recurrence: poller.Weekly, Weekday: "MONDAY", Retention: 14 * 24 * time.Hour})

	_, db := call(t, s, "GET", "/v1/projects/p/databases/db-one", "")
	if db["uid"] != "u-1" || db["versionRetentionPeriod"] != "604800s" || db["earliestVersionTime"] != "2026-11-16T00:00:00Z" ||
		db["pointInTimeRecoveryEnablement"] != "POINT_IN_TIME_RECOVERY_ENABLED" || db["locationId"] != "eur3" {
		t.Errorf("database = %v", db)
	}
	_, body := call(t, s, "GET", "/v1/projects/p/databases/db-one/backupSchedules", "")
	list := body["backupSchedules"].([]any)
	daily, weekly := list[0].(map[string]any), list[1].(map[string]any)
	if daily["retention"] != "1.500s" || !reflect.DeepEqual(daily["dailyRecurrence"], map[string]any{}) || daily["weeklyRecurrence"] != nil ||
		!strings.HasPrefix(daily["name"].(string), "projects/p/databases/db-one/backupSchedules/") {
		t.Errorf("daily schedule = %v", daily)
	}
	if weekly["retention"] != "1209600s" || !reflect.DeepEqual(weekly["weeklyRecurrence"], map[string]any{"day": "MONDAY"}) || weekly["name"] == daily["name"] {
		t.Errorf("weekly schedule = %v", weekly)
	}
	s.DeleteSchedules("p", "db-one")
	if _, body := call(t, s, "GET", "/v1/projects/p/databases/db-one/backupSchedules", ""); len(body) != 0 {
		t.Errorf("schedules after DeleteSchedules = %v; want {}", body)
	}
	s.DeleteDatabase("p", "db-one")
	if status, _ := call(t, s, "GET", "/v1/projects/p/databases/db-one/backupSchedules", ""); status != 404 {
		t.Errorf("schedules of a deleted database = %d; want 404", status)
	}
}

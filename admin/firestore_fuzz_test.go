package admin_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dsexport/dsexport/admin"
	"github.com/dsexport/dsexport/poller"
)

// FuzzParseFirestoreOperationJSON checks what the Firestore adapter takes
// from an answer, as FuzzParseOperationJSON does for the Datastore one.
// Run it with
//
//	go test ./admin -run '^$' -fuzz '^FuzzParseFirestoreOperationJSON$' -fuzztime 20s
func FuzzParseFirestoreOperationJSON(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "firestore", "export-*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no export samples in testdata/firestore (%v)", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		`{}`, `null`, `{"done": true}`, `{"done": true, "error": {}}`,
		`{"done": true, "metadata": {"operationState": "SUCCESSFUL"}}`,
		`{"done": true, "metadata": {"operationState": "OPERATION_STATE_UNSPECIFIED"}}`,
		`{"name": "projects/p-1/operations/x"}`,
		`{"name": "projects/p-1/databases/(default)/operations/x"}`,
		`{"name": "projects/p-1/databases/db-one/operations/x/../y"}`,
		`{"name": "projects/p-1/databases/DB/operations/x"}`,
		`{"metadata": {"progressDocuments": {"completedWork": "-9223372036854775808", "estimatedWork": "9223372036854775807"}}}`,
		`{"metadata": {"progressBytes": {"completedWork": 1}}}`,
		`{"metadata": {"snapshotTime": "2026-11-23T03:00:00+14:00", "startTime": "0000-01-01T00:00:00+01:00"}}`,
		`{"metadata": {"collectionIds": ["\ud800"], "namespaceIds": null}}`,
		`{"response": {"outputUriPrefix": "gs://b\u0000"}}`,
		`{"error": {"code": 1}, "error": null, "done": true}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		op, err := admin.ParseFirestoreOperationJSON(data)
		if err != nil {
			return
		}
		if op.Name != "" {
			project, db, err := poller.ParseNameIn(op.Name)
			if err != nil || db == "" {
				t.Fatalf("accepted name %q, which is no Firestore operation name (%v)", op.Name, err)
			}
			checkSafeFirestoreName(t, op.Name)
			if project != op.Project || db != op.Database {
				t.Fatalf("project %q, database %q; the name %q says %q, %q", op.Project, op.Database, op.Name, project, db)
			}
		} else if op.Project != "" || op.Database != "" {
			t.Fatalf("project %q, database %q without a name", op.Project, op.Database)
		}
		if b := op.Bounded(); !reflect.DeepEqual(b, op) {
			t.Fatalf("ParseFirestoreOperationJSON(%q) = %+v, beyond the bounds", data, op)
		}
		outcome := poller.Classify(op)
		hasError := op.ErrorCode != 0 || op.ErrorMessage != ""
		switch {
		case !op.Done && outcome != poller.OutcomeNone:
			t.Fatalf("Classify of a running operation = %q", outcome)
		case op.Done && hasError && outcome != poller.OutcomeFailure:
			t.Fatalf("Classify of a done operation with an error = %q", outcome)
		case outcome == poller.OutcomeSuccess && op.State != poller.StateSuccessful:
			t.Fatalf("Classify = success for state %q", op.State)
		}
		var raw struct {
			Error *json.RawMessage `json:"error"`
		}
		if json.Unmarshal(data, &raw) == nil && raw.Error != nil && !hasError {
			t.Fatalf("ParseFirestoreOperationJSON(%q) dropped the error object %s", data, *raw.Error)
		}

		wire, ok := firestoreOperationWire(op)
		if !ok {
			return
		}
		again, err := admin.ParseFirestoreOperationJSON(wire)
		if err != nil {
			t.Fatalf("ParseFirestoreOperationJSON(%s) (written back from %+v): %v", wire, op, err)
		}
		if !reflect.DeepEqual(again, op) {
			t.Fatalf("round trip changed the operation:\nfirst  %+v\nagain  %+v\nwire   %s", op, again, wire)
		}
	})
}

// checkSafeFirestoreName fails t unless name is plainly
// projects/{project}/databases/{database}/operations/{id}.
func checkSafeFirestoreName(t *testing.T, name string) {
	t.Helper()
	if n := strings.Count(name, "/"); n != 5 {
		t.Fatalf("accepted %q, which has %d slashes; want 5", name, n)
	}
	for _, bad := range []string{"..", "//", "?", "#", "%", "\\", "@", " ", "\n"} {
		if strings.Contains(name, bad) {
			t.Fatalf("accepted %q, which contains %q", name, bad)
		}
	}
}

// firestoreOperationWire writes op in the Firestore Admin API's wire shape.
// It returns false for a time RFC 3339 cannot write.
func firestoreOperationWire(op poller.Operation) ([]byte, bool) {
	md := map[string]any{
		"@type":           "type.googleapis.com/google.firestore.admin.v1.ExportDocumentsMetadata",
		"operationState":  string(op.State),
		"outputUriPrefix": op.OutputURLPrefix,
		"collectionIds":   op.Kinds,
		"namespaceIds":    op.Namespaces,
		"progressDocuments": map[string]string{
			"completedWork": strconv.FormatInt(op.EntitiesCompleted, 10), "estimatedWork": strconv.FormatInt(op.EntitiesEstimated, 10)},
		"progressBytes": map[string]string{
			"completedWork": strconv.FormatInt(op.BytesCompleted, 10), "estimatedWork": strconv.FormatInt(op.BytesEstimated, 10)},
	}
	for field, t := range map[string]time.Time{"startTime": op.StartTime, "endTime": op.EndTime, "snapshotTime": op.SnapshotTime} {
		if t.IsZero() {
			continue
		}
		if t.Year() < 0 || t.Year() > 9999 {
			return nil, false
		}
		md[field] = t.Format(time.RFC3339Nano)
	}
	lro := map[string]any{"name": op.Name, "done": op.Done, "metadata": md}
	if op.OutputURL != "" {
		lro["response"] = map[string]any{"outputUriPrefix": op.OutputURL}
	}
	if op.ErrorCode != 0 || op.ErrorMessage != "" {
		lro["error"] = map[string]any{"code": op.ErrorCode, "message": op.ErrorMessage}
	}
	data, err := json.Marshal(lro)
	if err != nil {
		panic(err)
	}
	return data, true
}
